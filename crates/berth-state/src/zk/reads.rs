//! Reads: one node, a node's children, and whole subtrees with pipelined requests.

use super::*;

impl Inner {
    pub(super) async fn get(&self, path: String) -> Result<Option<Vec<u8>>, StateError> {
        let action = format!("reading {path}");
        let (client, _) = self.client(&action, HINT_READ).await?;
        match self.ask(client.get_data(&path)).await {
            Ok((data, _)) => Ok(Some(data)),
            Err(Failure::Zk(zk::Error::NoNode)) => Ok(None),
            Err(f) => Err(self.failure(&action, f, HINT_READ)),
        }
    }

    pub(super) async fn children(&self, path: String) -> Result<Vec<String>, StateError> {
        let action = format!("listing {path}");
        let (client, _) = self.client(&action, HINT_READ).await?;
        match self.ask(client.get_children(&path)).await {
            Ok((mut names, _)) => {
                if path == "/" && self.url.chroot().is_none() {
                    names.retain(|n| n != "zookeeper");
                }
                names.sort_unstable();
                Ok(names)
            }
            Err(Failure::Zk(zk::Error::NoNode)) => Ok(Vec::new()),
            Err(f) => Err(self.failure(&action, f, HINT_READ)),
        }
    }

    /// [`Self::subtree`]; when `path` is the root of the service whose leader lock this
    /// persister holds, the nodes read also fill the existence cache, which is complete from
    /// then on (see [`Writer::complete`]). The writer is held during that read, so no write
    /// of this persister runs meanwhile; a read while a write runs is a plain read.
    pub(super) async fn subtree_learning(
        &self,
        path: String,
    ) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        let Ok(mut writer) = self.writer.try_lock() else {
            return self.subtree(path).await;
        };
        let scope = match &writer.lock {
            LockSlot::Held(held) if held.root == path && writer.complete.is_none() => Scope {
                root: held.root.clone(),
                lock_dir: held.dir.clone(),
            },
            _ => {
                drop(writer);
                return self.subtree(path).await;
            }
        };
        let (_, generation) = self
            .client(&format!("reading the tree below {path}"), HINT_READ)
            .await?;
        let nodes = self.subtree(path).await?;
        writer.known = nodes.iter().map(|(p, _)| p.clone()).collect();
        writer.generation = generation;
        writer.complete = Some(scope);
        Ok(nodes)
    }

    /// Every node at and below `path` with its data: data reads and child listings are
    /// pipelined — a node's children are asked for as soon as its data (whose stat counts
    /// them) arrives, and their data as soon as the listing arrives.
    pub(super) async fn subtree(&self, path: String) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        enum Answer {
            Data(String, Result<(Vec<u8>, zk::Stat), zk::Error>),
            Children(String, Result<(Vec<String>, zk::Stat), zk::Error>),
        }
        let action = format!("reading the tree below {path}");
        let (client, _) = self.client(&action, HINT_READ).await?;
        let hide_zookeeper = self.url.chroot().is_none();
        let data = |path: String| -> BoxFuture<Answer> {
            let f = client.get_data(&path);
            Box::pin(async move { Answer::Data(path, f.await) })
        };
        let children = |path: String| -> BoxFuture<Answer> {
            let f = client.get_children(&path);
            Box::pin(async move { Answer::Children(path, f.await) })
        };
        let mut pending: FuturesUnordered<BoxFuture<Answer>> = FuturesUnordered::new();
        pending.push(data(path.clone()));
        let mut out = Vec::new();
        loop {
            let next = tokio::time::timeout(self.options.request_timeout, pending.next()).await;
            let answer = match next {
                Ok(Some(answer)) => answer,
                Ok(None) => break,
                Err(_) => return Err(self.failure(&action, Failure::Timeout, HINT_READ)),
            };
            match answer {
                Answer::Data(p, Ok((value, stat))) => {
                    if stat.num_children > 0 {
                        pending.push(children(p.clone()));
                    }
                    // The root (or the chroot standing for it) has empty data by contract.
                    out.push((p.clone(), if p == "/" { Vec::new() } else { value }));
                }
                Answer::Children(p, Ok((names, _))) => {
                    for name in names {
                        if p == "/" && hide_zookeeper && name == "zookeeper" {
                            continue;
                        }
                        pending.push(data(child_path(&p, &name)));
                    }
                }
                // Deleted meanwhile (or `path` is missing).
                Answer::Data(_, Err(zk::Error::NoNode))
                | Answer::Children(_, Err(zk::Error::NoNode)) => {}
                Answer::Data(_, Err(e)) | Answer::Children(_, Err(e)) => {
                    return Err(self.failure(&action, Failure::Zk(e), HINT_READ));
                }
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

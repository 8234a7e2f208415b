//! Reads: one node, a node's children, and whole subtrees with pipelined requests.

use std::collections::VecDeque;

use super::*;

/// Reads in one `multiRead` request at most: about half a megabyte of TaskInfos.
const READS_PER_REQUEST: usize = 128;

/// `multiRead` requests of one subtree read in flight at once.
const READS_IN_FLIGHT: usize = 32;

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

    /// Every node at and below `path` with its data: data reads and child listings go out
    /// in `multiRead` requests of up to [`READS_PER_REQUEST`] operations, several in flight —
    /// a node's children are asked for once its data (whose stat counts them) has arrived, and
    /// their data once the listing has. One request per operation made a restart over
    /// 100,000 tasks (half a million nodes) wait on as many round trips.
    pub(super) async fn subtree(&self, path: String) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        let action = format!("reading the tree below {path}");
        let (client, _) = self.client(&action, HINT_READ).await?;
        let hide_zookeeper = self.url.chroot().is_none();
        // Reads waiting to be sent: (path, whether it is a listing).
        let mut waiting: VecDeque<(String, bool)> = VecDeque::from([(path.clone(), false)]);
        type Sent = (
            Vec<(String, bool)>,
            Result<Vec<zk::MultiReadResult>, zk::Error>,
        );
        let mut in_flight: FuturesUnordered<Pin<Box<dyn Future<Output = Sent> + Send + '_>>> =
            FuturesUnordered::new();
        let mut out = Vec::new();
        loop {
            while in_flight.len() < READS_IN_FLIGHT && !waiting.is_empty() {
                let batch: Vec<(String, bool)> = waiting
                    .drain(..waiting.len().min(READS_PER_REQUEST))
                    .collect();
                let mut reader = client.new_multi_reader();
                for (p, listing) in &batch {
                    let added = if *listing {
                        reader.add_get_children(p)
                    } else {
                        reader.add_get_data(p)
                    };
                    if let Err(e) = added {
                        return Err(self.failure(&action, Failure::Zk(e), HINT_READ));
                    }
                }
                let answer = reader.commit();
                in_flight.push(Box::pin(async move { (batch, answer.await) }));
            }
            let next = tokio::time::timeout(self.options.request_timeout, in_flight.next()).await;
            let (batch, answer) = match next {
                Ok(Some(answer)) => answer,
                Ok(None) => break,
                Err(_) => return Err(self.failure(&action, Failure::Timeout, HINT_READ)),
            };
            let results = answer.map_err(|e| self.failure(&action, Failure::Zk(e), HINT_READ))?;
            for ((p, _), result) in batch.into_iter().zip(results) {
                match result {
                    zk::MultiReadResult::Data { data, stat } => {
                        if stat.num_children > 0 {
                            waiting.push_back((p.clone(), true));
                        }
                        // The root (or the chroot standing for it) has empty data by contract.
                        let data = if p == "/" { Vec::new() } else { data };
                        out.push((p, data));
                    }
                    zk::MultiReadResult::Children { children } => {
                        for name in children {
                            if p == "/" && hide_zookeeper && name == "zookeeper" {
                                continue;
                            }
                            waiting.push_back((child_path(&p, &name), false));
                        }
                    }
                    // Deleted meanwhile (or `path` is missing).
                    zk::MultiReadResult::Error {
                        err: zk::Error::NoNode,
                    } => {}
                    zk::MultiReadResult::Error { err } => {
                        return Err(self.failure(&action, Failure::Zk(err), HINT_READ));
                    }
                    other => {
                        return Err(self.failure(
                            &action,
                            Failure::Zk(zk::Error::UnexpectedError(format!(
                                "unexpected answer {other:?}"
                            ))),
                            HINT_READ,
                        ));
                    }
                }
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

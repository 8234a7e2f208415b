//! Batch application: a [`WriteOp`] batch planned against what is stored, split into
//! `multi` requests fenced by the leader lock, and committed in order.

use super::*;

impl Inner {
    /// Answers the planner's [`plan::Queries`], all requests pipelined.
    pub(super) async fn facts(
        &self,
        client: &zk::Client,
        queries: plan::Queries,
    ) -> Result<plan::Facts, Failure> {
        enum Answer {
            Exists(String, Result<Option<zk::Stat>, zk::Error>),
            Listed(usize, String, Result<(Vec<String>, zk::Stat), zk::Error>),
        }
        let listing = |i: usize, path: String| -> BoxFuture<Answer> {
            let f = client.get_children(&path);
            Box::pin(async move { Answer::Listed(i, path, f.await) })
        };
        let mut pending: FuturesUnordered<BoxFuture<Answer>> = FuturesUnordered::new();
        for path in queries.exists {
            let f = client.check_stat(&path);
            pending.push(Box::pin(async move { Answer::Exists(path, f.await) }));
        }
        for (i, root) in queries.subtrees.iter().enumerate() {
            pending.push(listing(i, root.clone()));
        }
        let mut facts = plan::Facts::default();
        let mut lists: Vec<Vec<String>> = vec![Vec::new(); queries.subtrees.len()];
        loop {
            let answer =
                match tokio::time::timeout(self.options.request_timeout, pending.next()).await {
                    Ok(Some(answer)) => answer,
                    Ok(None) => break,
                    Err(_) => return Err(Failure::Timeout),
                };
            match answer {
                Answer::Exists(path, Ok(stat)) => {
                    facts.exists.insert(path, stat.is_some());
                }
                Answer::Listed(i, path, Ok((names, _))) => {
                    for name in names {
                        pending.push(listing(i, child_path(&path, &name)));
                    }
                    lists[i].push(path);
                }
                Answer::Listed(_, _, Err(zk::Error::NoNode)) => {}
                Answer::Exists(_, Err(e)) | Answer::Listed(_, _, Err(e)) => {
                    return Err(Failure::Zk(e));
                }
            }
        }
        facts.subtrees = queries.subtrees.into_iter().zip(lists).collect();
        Ok(facts)
    }

    pub(super) async fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError> {
        let action = format!("committing {} writes", ops.len());
        let Ok(mut writer) =
            tokio::time::timeout(self.options.request_timeout, self.writer.lock()).await
        else {
            return Err(self.unavailable(
                &action,
                "another write of this persister is still running",
                HINT_NOT_APPLIED,
            ));
        };
        let prefix = self.prefix_len();
        'plan: for _ in 0..MAX_PLANS {
            if let LockSlot::Lost { dir, holder } = &writer.lock {
                return Err(StateError::LockLost {
                    location: self.lock_location(dir),
                    holder: holder.clone(),
                });
            }
            let (client, generation) = self.client(&action, HINT_NOT_APPLIED).await?;
            if writer.generation != generation {
                writer.forget();
                writer.generation = generation;
            }
            if let LockSlot::Held(held) = &writer.lock
                && held.session != client.session_id().0
            {
                self.restore_lock(&client, &mut writer).await?;
            }
            let fence = match &writer.lock {
                LockSlot::Held(held) => Some(held.path()),
                _ => None,
            };
            let mut queries = plan::queries(ops, &writer.known);
            let local = writer.answer_locally(&mut queries);
            let mut facts = self
                .facts(&client, queries)
                .await
                .map_err(|f| self.failure(&action, f, HINT_NOT_APPLIED))?;
            facts.exists.extend(local.exists);
            facts.subtrees.extend(local.subtrees);
            let zk_ops = plan::plan(ops, &writer.known, &facts);
            let fence_size = fence.as_ref().map_or(0, |f| OP_OVERHEAD + prefix + f.len());
            let ranges = plan::chunks(&zk_ops, prefix, fence_size);
            let total = ranges.len();
            if client.state() != zk::SessionState::SyncConnected {
                return Err(self.unavailable(&action, "the connection was lost", HINT_NOT_APPLIED));
            }
            // Every `multi` is built first, then all are sent at once and their answers
            // awaited in order: ZooKeeper applies one session's requests in the order they
            // came and syncs its log once for many, so a batch of several requests costs
            // about one round trip and one fsync instead of one of each per request.
            let mut writers = Vec::with_capacity(total);
            for range in &ranges {
                let mut multi = client.new_multi_writer();
                let built = (|| -> Result<(), zk::Error> {
                    if let Some(fence) = &fence {
                        multi.add_check_version(fence, -1)?;
                    }
                    for op in &zk_ops[range.clone()] {
                        match op {
                            ZkOp::Create { path, data } => {
                                multi.add_create(path, data, &persistent())?;
                            }
                            ZkOp::SetData { path, data } => multi.add_set_data(path, data, None)?,
                            ZkOp::Delete { path } => multi.add_delete(path, None)?,
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = built {
                    return Err(self.failure(&action, Failure::Zk(e), HINT_NOT_APPLIED));
                }
                writers.push(multi);
            }
            let commits: Vec<_> = writers.iter_mut().map(|multi| multi.commit()).collect();
            for (k, (commit, range)) in commits.into_iter().zip(ranges).enumerate() {
                let hint = if k == 0 {
                    HINT_UNKNOWN.to_owned()
                } else {
                    format!(
                        "the first {k} of the {total} requests of this batch were applied (later \
                         ones may have been too); retry the same batch (applying it again is safe)"
                    )
                };
                match tokio::time::timeout(self.options.request_timeout, commit).await {
                    Ok(Ok(_)) => remember(&mut writer.known, &zk_ops[range]),
                    Ok(Err(zk::MultiWriteError::OperationFailed { index: 0, source }))
                        if fence.is_some() =>
                    {
                        tracing::warn!(
                            lock = %fence.as_deref().unwrap_or_default(),
                            error = %source,
                            "the leader lock node is gone; looking at the lock again"
                        );
                        writer.forget();
                        self.restore_lock(&client, &mut writer).await?;
                        continue 'plan;
                    }
                    Ok(Err(zk::MultiWriteError::OperationFailed { index, source })) => {
                        // The tree is not as planned: a stale cache entry, or another writer.
                        tracing::debug!(
                            index,
                            error = %source,
                            "a multi was refused; planning the batch again"
                        );
                        writer.forget();
                        continue 'plan;
                    }
                    Ok(Err(zk::MultiWriteError::RequestFailed { source })) => {
                        writer.forget();
                        if matches!(source, zk::Error::SessionExpired) {
                            // Refused, not applied: a new session is made on the next round.
                            continue 'plan;
                        }
                        return Err(self.failure(&action, Failure::Zk(source), &hint));
                    }
                    Err(_) => {
                        writer.forget();
                        return Err(self.failure(&action, Failure::Timeout, &hint));
                    }
                }
            }
            return Ok(());
        }
        Err(StateError::Backend {
            location: self.location.clone(),
            action,
            message: format!(
                "ZooKeeper refused the batch {MAX_PLANS} times because the tree changed under \
                 it; is another process writing to the same nodes?"
            ),
        })
    }
}

impl Writer {
    /// Takes out of `queries` what the complete existence cache answers, and answers it: a
    /// queried path is not in the cache, so it does not exist; a deleted subtree is the
    /// cache's range below it.
    fn answer_locally(&self, queries: &mut plan::Queries) -> plan::Facts {
        let mut local = plan::Facts::default();
        let Some(scope) = &self.complete else {
            return local;
        };
        queries.exists.retain(|path| {
            let covered = scope.covers(path);
            if covered {
                local.exists.insert(path.clone(), false);
            }
            !covered
        });
        queries.subtrees.retain(|path| {
            let covered = scope.covers(path);
            if covered {
                let prefix = descendant_prefix(path);
                let nodes = self
                    .known
                    .get(path)
                    .into_iter()
                    .chain(self.known.range(prefix.clone()..range_end(&prefix)))
                    .cloned()
                    .collect();
                local.subtrees.insert(path.clone(), nodes);
            }
            !covered
        });
        local
    }
}

/// Updates the existence cache after a `multi` succeeded.
pub(super) fn remember(known: &mut BTreeSet<String>, ops: &[ZkOp<'_>]) {
    for op in ops {
        match op {
            ZkOp::Create { path, .. } => {
                known.insert(path.to_string());
            }
            ZkOp::SetData { path, .. } => {
                for ancestor in ancestors(path) {
                    if !known.contains(ancestor) {
                        known.insert(ancestor.to_owned());
                    }
                }
                known.insert((*path).to_owned());
            }
            ZkOp::Delete { path } => {
                known.remove(path);
                let prefix = descendant_prefix(path);
                let below: Vec<String> = known
                    .range(prefix.clone()..range_end(&prefix))
                    .cloned()
                    .collect();
                for k in below {
                    known.remove(&k);
                }
            }
        }
    }
}

//! Batch application: a [`WriteOp`] batch planned against what is stored, split into
//! `multi` requests fenced by the leader lock, and committed in order.

use std::sync::atomic::Ordering;

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

    /// Stores `ops`, submitted with turn `turn`: waits for the turn, sends the batch, hands
    /// the turn on, awaits the answers. `resume`: the caller waits for nothing else, so an
    /// earlier refusal no longer holds this batch back.
    pub(super) async fn apply(
        &self,
        ops: &[WriteOp],
        turn: u64,
        resume: bool,
    ) -> Result<(), StateError> {
        let action = format!("committing {} writes", ops.len());
        // Hands the turn on when this batch is sent or given up, whichever comes first.
        let mut turns = TurnGuard {
            turns: &self.turns,
            turn: Some(turn),
        };
        let _ = self.turns.subscribe().wait_for(|now| *now == turn).await;
        let result = self
            .apply_in_turn(ops, turn, resume, &action, &mut turns)
            .await;
        if result.is_err() {
            // Before the turn is handed on (when this batch was not sent).
            self.refused.store(true, Ordering::SeqCst);
        }
        result
    }

    /// [`Self::apply`], once it is the batch's turn.
    async fn apply_in_turn(
        &self,
        ops: &[WriteOp],
        turn: u64,
        resume: bool,
        action: &str,
        turns: &mut TurnGuard<'_>,
    ) -> Result<(), StateError> {
        let Ok(mut writer) =
            tokio::time::timeout(self.options.request_timeout, self.writer.lock()).await
        else {
            return Err(self.unavailable(
                action,
                "another write of this persister is still running",
                HINT_NOT_APPLIED,
            ));
        };
        if resume {
            self.refused.store(false, Ordering::SeqCst);
        }
        if self.refused.load(Ordering::SeqCst) {
            return Err(self.unavailable(
                action,
                "a batch submitted before this one was not stored, so this one was not sent",
                HINT_NOT_APPLIED,
            ));
        }
        writer.unfinished.insert(turn);
        let (mut writer, result) = self.commit(writer, ops, turn, action, turns).await;
        writer.unfinished.remove(&turn);
        if result.is_err() {
            // Before the writer is let go: a batch waiting for it must see the refusal.
            self.refused.store(true, Ordering::SeqCst);
        }
        drop(writer);
        result
    }

    /// Plans, sends and awaits the batch of turn `turn`, planning again when ZooKeeper
    /// refuses a `multi` while no earlier batch is unanswered; returns the writer locked.
    async fn commit<'w>(
        &'w self,
        mut writer: tokio::sync::MutexGuard<'w, Writer>,
        ops: &[WriteOp],
        turn: u64,
        action: &str,
        turns: &mut TurnGuard<'_>,
    ) -> (tokio::sync::MutexGuard<'w, Writer>, Result<(), StateError>) {
        macro_rules! fail {
            ($e:expr) => {{
                let error = $e;
                return (writer, Err(error));
            }};
        }
        let prefix = self.prefix_len();
        'plan: for attempt in 0..MAX_PLANS {
            if let LockSlot::Lost { dir, holder } = &writer.lock {
                fail!(StateError::LockLost {
                    location: self.lock_location(dir),
                    holder: holder.clone(),
                });
            }
            let (client, generation) = match self.client(action, HINT_NOT_APPLIED).await {
                Ok(c) => c,
                Err(e) => fail!(e),
            };
            if writer.generation != generation {
                writer.forget();
                writer.generation = generation;
            }
            if let LockSlot::Held(held) = &writer.lock
                && held.session != client.session_id().0
                && let Err(e) = self.restore_lock(&client, &mut writer).await
            {
                fail!(e);
            }
            let (fence, chain_dir) = match &writer.lock {
                LockSlot::Held(held) => (Some(held.path()), Some(held.dir.clone())),
                _ => (None, None),
            };
            if let Some(dir) = &chain_dir
                && writer.chain.is_none()
            {
                if writer.unfinished.first() != Some(&turn) {
                    // The chain was cut while an earlier batch is unanswered: this one
                    // cannot be chained to it.
                    fail!(self.unavailable(
                        action,
                        "a batch submitted before this one is still unanswered on a session \
                         or chain that ended",
                        HINT_NOT_APPLIED,
                    ));
                }
                match self.ask(client.check_stat(dir)).await {
                    Ok(Some(stat)) => writer.chain = Some(stat.version),
                    Ok(None) => {
                        // The lock's directory is gone, and with it our lock node.
                        if let Err(e) = self.restore_lock(&client, &mut writer).await {
                            fail!(e);
                        }
                        continue 'plan;
                    }
                    Err(f) => fail!(self.failure(action, f, HINT_NOT_APPLIED)),
                }
            }
            let mut queries = plan::queries(ops, &writer.known);
            let local = writer.answer_locally(&mut queries);
            let mut facts = match self.facts(&client, queries).await {
                Ok(f) => f,
                Err(f) => fail!(self.failure(action, f, HINT_NOT_APPLIED)),
            };
            facts.exists.extend(local.exists);
            facts.subtrees.extend(local.subtrees);
            let zk_ops = plan::plan(ops, &writer.known, &facts);
            let fence_size = fence.as_ref().map_or(0, |f| OP_OVERHEAD + prefix + f.len())
                + chain_dir
                    .as_ref()
                    .map_or(0, |d| OP_OVERHEAD + prefix + d.len());
            let ranges = plan::chunks(&zk_ops, prefix, fence_size);
            let total = ranges.len();
            if client.state() != zk::SessionState::SyncConnected {
                fail!(self.unavailable(action, "the connection was lost", HINT_NOT_APPLIED));
            }
            // Every `multi` is built first, then all are sent at once and their answers
            // awaited in order: ZooKeeper applies one session's requests in the order they
            // came and syncs its log once for many, so a batch of several requests costs
            // about one round trip and one fsync instead of one of each per request. Each
            // sets the lock directory's data expecting the version the one before left, so
            // when one is refused every later one is too: what is stored is a prefix.
            let mut writers = Vec::with_capacity(total);
            let mut chain = writer.chain;
            for range in &ranges {
                let mut multi = client.new_multi_writer();
                let built = (|| -> Result<(), zk::Error> {
                    if let Some(fence) = &fence {
                        multi.add_check_version(fence, -1)?;
                    }
                    if let (Some(dir), Some(version)) = (&chain_dir, chain) {
                        multi.add_set_data(dir, &[], Some(version))?;
                        chain = Some(version.wrapping_add(1));
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
                    fail!(self.failure(action, Failure::Zk(e), HINT_NOT_APPLIED));
                }
                writers.push(multi);
            }
            let commits: Vec<_> = writers.iter_mut().map(|multi| multi.commit()).collect();
            // Sent: the next batch plans as if this one were stored (a refusal drops the
            // cache and the chain), and may be sent before this one is answered.
            writer.chain = chain;
            for range in &ranges {
                remember(&mut writer.known, &zk_ops[range.clone()]);
            }
            turns.hand_on();
            // Without the lock (nothing fences and chains the requests) and on a second
            // attempt, the next batch waits for this one's answers.
            let pipelined = chain_dir.is_some() && attempt == 0;
            let refused = if pipelined {
                let mutex = tokio::sync::MutexGuard::mutex(&writer);
                drop(writer);
                let refused = self.answers(commits, total).await;
                writer = mutex.lock().await;
                refused
            } else {
                self.answers(commits, total).await
            };
            let Some((error, hint)) = refused else {
                return (writer, Ok(()));
            };
            writer.forget();
            // Planning again is for the oldest unanswered batch only: a later one planned
            // again could be stored before an earlier one that is still being retried.
            if writer.unfinished.first() != Some(&turn) {
                fail!(self.unavailable(
                    action,
                    format!(
                        "it followed a batch that was not stored ({})",
                        error.as_ref().map_or_else(|| "no answer in time".to_owned(), describe)
                    ),
                    &hint,
                ));
            }
            let Some(error) = error else {
                fail!(self.failure(action, Failure::Timeout, &hint));
            };
            match error {
                zk::MultiWriteError::OperationFailed { index: 0, source } if fence.is_some() => {
                    tracing::warn!(
                        lock = %fence.as_deref().unwrap_or_default(),
                        error = %source,
                        "the leader lock node is gone; looking at the lock again"
                    );
                    if let Err(e) = self.restore_lock(&client, &mut writer).await {
                        fail!(e);
                    }
                }
                zk::MultiWriteError::OperationFailed { index, source } => {
                    // The tree is not as planned: a stale cache entry, another writer, or a
                    // chain cut by an earlier refusal.
                    tracing::debug!(
                        index,
                        error = %source,
                        "a multi was refused; planning the batch again"
                    );
                }
                zk::MultiWriteError::RequestFailed {
                    source: zk::Error::SessionExpired,
                } => {
                    // Refused, not applied: a new session is made on the next round.
                }
                zk::MultiWriteError::RequestFailed { source } => {
                    fail!(self.failure(action, Failure::Zk(source), &hint));
                }
            }
            continue 'plan;
        }
        fail!(StateError::Backend {
            location: self.location.clone(),
            action: action.to_owned(),
            message: format!(
                "ZooKeeper refused the batch {MAX_PLANS} times because the tree changed under \
                 it; is another process writing to the same nodes?"
            ),
        })
    }
}

impl Inner {
    /// Awaits the answers to a batch's `multi`s in order; the first refusal (`None`: no
    /// answer in time) with the hint for the error, if any.
    async fn answers<F>(
        &self,
        commits: Vec<F>,
        total: usize,
    ) -> Option<(Option<zk::MultiWriteError>, String)>
    where
        F: Future<Output = Result<Vec<zk::MultiWriteResult>, zk::MultiWriteError>>,
    {
        for (k, commit) in commits.into_iter().enumerate() {
            let hint = || {
                if k == 0 {
                    HINT_UNKNOWN.to_owned()
                } else {
                    format!(
                        "the first {k} of the {total} requests of this batch were applied (later \
                         ones only if the next one was); retry the same batch (applying it again \
                         is safe)"
                    )
                }
            };
            match tokio::time::timeout(self.options.request_timeout, commit).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Some((Some(e), hint())),
                Err(_) => return Some((None, hint())),
            }
        }
        None
    }
}

/// A refused `multi`, in words.
fn describe(error: &zk::MultiWriteError) -> String {
    match error {
        zk::MultiWriteError::OperationFailed { index, source } => {
            format!("operation {index} of a request: {source}")
        }
        zk::MultiWriteError::RequestFailed { source } => source.to_string(),
    }
}

/// A batch's turn to be sent; handed on once it is sent or given up.
struct TurnGuard<'a> {
    turns: &'a tokio::sync::watch::Sender<u64>,
    turn: Option<u64>,
}

impl TurnGuard<'_> {
    fn hand_on(&mut self) {
        if let Some(turn) = self.turn.take() {
            self.turns.send_replace(turn + 1);
        }
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.hand_on();
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

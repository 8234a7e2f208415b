//! The leader lock: contenders as ephemeral sequential nodes under `<root>/lock`, the
//! lowest holds it; waiting for a turn, taking it back after a session expiry, releasing it.

use super::*;

impl Inner {
    /// The lock contenders in `dir`, lowest sequence first.
    pub(super) async fn contenders(
        &self,
        client: &zk::Client,
        dir: &str,
    ) -> Result<Vec<String>, Failure> {
        let names = match self.ask(client.get_children(dir)).await {
            Ok((names, _)) => names,
            Err(Failure::Zk(zk::Error::NoNode)) => Vec::new(),
            Err(f) => return Err(f),
        };
        let mut contenders: Vec<(i64, String)> = names
            .into_iter()
            .filter(|n| n.starts_with(LOCK_PREFIX))
            .filter_map(|n| sequence_of(&n).map(|s| (s, n)))
            .collect();
        contenders.sort_unstable();
        Ok(contenders.into_iter().map(|(_, n)| n).collect())
    }

    /// Who holds lock node `dir/name`, for messages.
    pub(super) async fn describe(&self, client: &zk::Client, dir: &str, name: &str) -> String {
        let path = format!("{dir}/{name}");
        match self.ask(client.get_data(&path)).await {
            Ok((data, _)) => match serde_json::from_slice::<LockOwner>(&data) {
                Ok(owner) => owner.to_string(),
                Err(_) => format!(
                    "an unknown process (its lock node {path} does not name it: '{}')",
                    String::from_utf8_lossy(&data)
                ),
            },
            Err(_) => format!("the process of lock node {path}"),
        }
    }

    /// Creates `dir` and its missing ancestors.
    pub(super) async fn mkdirs(&self, client: &zk::Client, dir: &str) -> Result<(), Failure> {
        for path in ancestors(dir).chain(std::iter::once(dir)) {
            match self.ask(client.create(path, &[], &persistent())).await {
                Ok(_) | Err(Failure::Zk(zk::Error::NodeExists)) => {}
                Err(f) => return Err(f),
            }
        }
        Ok(())
    }

    /// Creates this persister's ephemeral sequential node in `dir`; returns its name.
    pub(super) async fn create_lock_node(
        &self,
        client: &zk::Client,
        dir: &str,
        data: &[u8],
    ) -> Result<String, Failure> {
        let prefix = format!("{dir}/{LOCK_PREFIX}{}-", self.id);
        let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let (_, sequence) = self.ask(client.create(&prefix, data, &options)).await?;
        Ok(format!("{LOCK_PREFIX}{}-{sequence}", self.id))
    }

    /// Deletes lock nodes of this persister left in `dir` (of an old session, or of a create
    /// whose answer was lost), except `keep`.
    pub(super) async fn remove_own(
        &self,
        client: &zk::Client,
        dir: &str,
        contenders: &[String],
        keep: Option<&str>,
    ) -> Result<(), Failure> {
        for name in contenders {
            if name.contains(&self.id) && Some(name.as_str()) != keep {
                match self
                    .ask(client.delete(&format!("{dir}/{name}"), None))
                    .await
                {
                    Ok(()) | Err(Failure::Zk(zk::Error::NoNode)) => {}
                    Err(f) => return Err(f),
                }
            }
        }
        Ok(())
    }

    pub(super) async fn acquire(
        &self,
        root: String,
        data: Vec<u8>,
        wait: Duration,
    ) -> Result<(), StateError> {
        let dir = format!("{root}/lock");
        let location = self.lock_location(&dir);
        let action = format!("acquiring the leader lock {location}");
        let deadline = Instant::now() + wait;
        {
            let writer = self.writer.lock().await;
            if let LockSlot::Held(held) = &writer.lock {
                if held.root == root {
                    return Ok(());
                }
                return Err(StateError::invalid_path(
                    &root,
                    format!(
                        "this persister holds the leader lock of {} already; release it first",
                        held.root
                    ),
                ));
            }
        }
        let (client, _) = self.client(&action, HINT_READ).await?;
        let fail = |f: Failure| self.failure(&action, f, HINT_READ);
        let contenders = self.contenders(&client, &dir).await.map_err(fail)?;
        self.remove_own(&client, &dir, &contenders, None)
            .await
            .map_err(fail)?;
        if wait.is_zero()
            && let Some(first) = contenders.iter().find(|n| !n.contains(&self.id))
        {
            return Err(StateError::LockHeld {
                location,
                holder: self.describe(&client, &dir, first).await,
            });
        }
        self.mkdirs(&client, &dir).await.map_err(fail)?;
        let name = self
            .create_lock_node(&client, &dir, &data)
            .await
            .map_err(fail)?;
        match self
            .wait_for_turn(&client, &dir, &name, deadline, &location)
            .await
        {
            Ok(()) => {
                let mut writer = self.writer.lock().await;
                writer.chain = None;
                writer.lock = LockSlot::Held(Held {
                    root,
                    dir,
                    name,
                    data,
                    session: client.session_id().0,
                });
                tracing::info!(lock = %location, "acquired the leader lock");
                Ok(())
            }
            Err(e) => {
                // Leave nothing behind; should this fail too, the node goes with the session.
                let _ = self
                    .ask(client.delete(&format!("{dir}/{name}"), None))
                    .await;
                Err(e)
            }
        }
    }

    /// Waits until `name` is the lowest contender in `dir`, or `deadline`.
    pub(super) async fn wait_for_turn(
        &self,
        client: &zk::Client,
        dir: &str,
        name: &str,
        deadline: Instant,
        location: &str,
    ) -> Result<(), StateError> {
        let action = format!("waiting for the leader lock {location}");
        let fail = |f: Failure| self.failure(&action, f, HINT_READ);
        loop {
            let contenders = self.contenders(client, dir).await.map_err(fail)?;
            let Some(position) = contenders.iter().position(|n| n == name) else {
                return Err(self.unavailable(
                    &action,
                    format!("this process's lock node {dir}/{name} vanished (session expired?)"),
                    HINT_READ,
                ));
            };
            if position == 0 {
                return Ok(());
            }
            let held = || async {
                StateError::LockHeld {
                    location: location.to_owned(),
                    holder: self.describe(client, dir, &contenders[0]).await,
                }
            };
            let before = format!("{dir}/{}", contenders[position - 1]);
            let (stat, watcher) = self
                .ask(client.check_and_watch_stat(&before))
                .await
                .map_err(fail)?;
            if stat.is_none() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(held().await);
            }
            if tokio::time::timeout(deadline - now, watcher.changed())
                .await
                .is_err()
            {
                return Err(held().await);
            }
        }
    }

    /// After a session expiry (or when the lock node vanished): takes the lock again when
    /// nobody else holds or waits for it; otherwise marks it lost.
    pub(super) async fn restore_lock(
        &self,
        client: &zk::Client,
        writer: &mut Writer,
    ) -> Result<(), StateError> {
        let LockSlot::Held(held) = &writer.lock else {
            return Ok(());
        };
        let held = held.clone();
        // Whoever held the lock meanwhile may have written: the cache is not trusted.
        writer.forget();
        let location = self.lock_location(&held.dir);
        let action = format!("re-acquiring the leader lock {location}");
        let fail = |f: Failure| self.failure(&action, f, HINT_NOT_APPLIED);
        let contenders = self.contenders(client, &held.dir).await.map_err(fail)?;
        if let Some(other) = contenders.iter().find(|n| !n.contains(&self.id)) {
            let holder = self.describe(client, &held.dir, other).await;
            tracing::error!(lock = %location, holder = %holder, "lost the leader lock");
            writer.lock = LockSlot::Lost {
                dir: held.dir.clone(),
                holder: Some(holder.clone()),
            };
            return Err(StateError::LockLost {
                location,
                holder: Some(holder),
            });
        }
        // Only our own nodes, if any (the old session's, not expired on the server yet).
        self.remove_own(client, &held.dir, &contenders, None)
            .await
            .map_err(fail)?;
        self.mkdirs(client, &held.dir).await.map_err(fail)?;
        let name = self
            .create_lock_node(client, &held.dir, &held.data)
            .await
            .map_err(fail)?;
        let contenders = self.contenders(client, &held.dir).await.map_err(fail)?;
        if contenders.first() == Some(&name) {
            tracing::warn!(lock = %location, "re-acquired the leader lock after the ZooKeeper session expired");
            writer.lock = LockSlot::Held(Held {
                name,
                session: client.session_id().0,
                ..held
            });
            return Ok(());
        }
        // Someone came in between.
        let _ = self
            .ask(client.delete(&format!("{}/{name}", held.dir), None))
            .await;
        let holder = match contenders.first() {
            Some(first) => Some(self.describe(client, &held.dir, first).await),
            None => None,
        };
        tracing::error!(lock = %location, "lost the leader lock");
        writer.lock = LockSlot::Lost {
            dir: held.dir.clone(),
            holder: holder.clone(),
        };
        Err(StateError::LockLost { location, holder })
    }

    pub(super) async fn holder(&self, root: String) -> Result<Option<LockOwner>, StateError> {
        let dir = format!("{root}/lock");
        let action = format!("reading the leader lock {}", self.lock_location(&dir));
        let (client, _) = self.client(&action, HINT_READ).await?;
        let fail = |f: Failure| self.failure(&action, f, HINT_READ);
        // The lowest node may go between listing and reading it: look again.
        for _ in 0..MAX_PLANS {
            let contenders = self.contenders(&client, &dir).await.map_err(fail)?;
            let Some(first) = contenders.first() else {
                return Ok(None);
            };
            let path = format!("{dir}/{first}");
            match self.ask(client.get_data(&path)).await {
                Ok((data, _)) => {
                    return serde_json::from_slice(&data)
                        .map(Some)
                        .map_err(|e| StateError::corrupt(&path, e));
                }
                Err(Failure::Zk(zk::Error::NoNode)) => {}
                Err(f) => return Err(fail(f)),
            }
        }
        Err(self.unavailable(&action, "the lock kept changing hands", HINT_READ))
    }

    pub(super) async fn release(&self) -> Result<(), StateError> {
        let mut writer = self.writer.lock().await;
        writer.complete = None;
        let LockSlot::Held(held) = std::mem::take(&mut writer.lock) else {
            return Ok(());
        };
        let location = self.lock_location(&held.dir);
        let client = lock(&self.conn).client.clone();
        let Some(client) = client else {
            return Ok(());
        };
        if client.session_id().0 != held.session {
            // The node belonged to an ended session: gone already, or going.
            return Ok(());
        }
        let action = format!("releasing the leader lock {location}");
        match self.ask(client.delete(&held.path(), None)).await {
            Ok(()) | Err(Failure::Zk(zk::Error::NoNode)) => {
                tracing::info!(lock = %location, "released the leader lock");
                Ok(())
            }
            Err(f) => Err(self.failure(
                &action,
                f,
                "the lock node disappears when this process's ZooKeeper session ends",
            )),
        }
    }
}

//! Checks JSON messages against Mesos's own `.proto` files, compiled when the double starts:
//! a field the message type does not have, a value of the wrong type, an enum name that does
//! not exist, or a `required` field left out is a violation.

use std::path::{Path, PathBuf};

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value};

use crate::DoubleError;

/// The compiled scheduler API.
#[derive(Debug, Clone)]
pub struct Schema {
    call: MessageDescriptor,
    event: MessageDescriptor,
    pool: DescriptorPool,
}

/// Where the repository's reference keeps the `.proto` files, relative to a crate directory.
#[must_use]
pub fn default_proto_dir(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join("../../../shared/reference/mesos/proto")
}

impl Schema {
    /// Compiles `mesos.proto` and `scheduler.proto` from `dir`.
    ///
    /// # Errors
    /// The files are missing or do not compile.
    pub fn load(dir: &Path) -> Result<Self, DoubleError> {
        let err = |m: String| DoubleError::Proto(format!("{}: {m}", dir.display()));
        // scheduler.proto imports "mesos/v1/mesos.proto": lay the files out as Mesos does.
        let tree = std::env::temp_dir().join(format!("berth-mesos-proto-{}", std::process::id()));
        let v1 = tree.join("mesos/v1");
        std::fs::create_dir_all(v1.join("scheduler")).map_err(|e| err(e.to_string()))?;
        for (from, to) in [
            ("mesos.proto", v1.join("mesos.proto")),
            ("scheduler.proto", v1.join("scheduler/scheduler.proto")),
        ] {
            std::fs::copy(dir.join(from), &to).map_err(|e| err(format!("{from}: {e}")))?;
        }
        let compiled = protox::Compiler::new([&tree])
            .and_then(|mut c| {
                c.include_imports(true);
                c.open_files(["mesos/v1/scheduler/scheduler.proto"])?;
                Ok(c.descriptor_pool())
            })
            .map_err(|e| err(e.to_string()));
        let _ = std::fs::remove_dir_all(&tree);
        let pool = compiled?;
        let get = |name: &str| {
            pool.get_message_by_name(name)
                .ok_or_else(|| err(format!("no message {name}")))
        };
        Ok(Self {
            call: get("mesos.v1.scheduler.Call")?,
            event: get("mesos.v1.scheduler.Event")?,
            pool: pool.clone(),
        })
    }

    /// Checks a `Call`.
    ///
    /// # Errors
    /// What does not fit `mesos.v1.scheduler.Call`.
    pub fn check_call(&self, json: &[u8]) -> Result<(), String> {
        check(&self.call, json)
    }

    /// Checks an `Event`.
    ///
    /// # Errors
    /// What does not fit `mesos.v1.scheduler.Event`.
    pub fn check_event(&self, json: &[u8]) -> Result<(), String> {
        check(&self.event, json)
    }

    /// The descriptor of a message by its full name (e.g. `mesos.v1.TaskInfo`).
    #[must_use]
    pub fn message(&self, name: &str) -> Option<MessageDescriptor> {
        self.pool.get_message_by_name(name)
    }

    /// Checks any message by its full name (e.g. `mesos.v1.TaskInfo`).
    ///
    /// # Errors
    /// An unknown message name, or what does not fit it.
    pub fn check(&self, message: &str, json: &[u8]) -> Result<(), String> {
        let desc = self
            .pool
            .get_message_by_name(message)
            .ok_or_else(|| format!("no message {message}"))?;
        check(&desc, json)
    }
}

fn check(desc: &MessageDescriptor, json: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(true);
    let message = DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &options)
        .map_err(|e| format!("{}: {e}", desc.full_name()))?;
    de.end().map_err(|e| format!("{}: {e}", desc.full_name()))?;
    let mut missing = Vec::new();
    required(&message, desc.name(), &mut missing);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("required fields missing: {}", missing.join(", ")))
    }
}

/// Collects the paths of `required` fields left out, at any depth.
fn required(message: &DynamicMessage, path: &str, missing: &mut Vec<String>) {
    let desc = message.descriptor();
    for field in desc.fields() {
        if field.cardinality() == prost_reflect::Cardinality::Required && !message.has_field(&field)
        {
            missing.push(format!("{path}.{}", field.name()));
        }
    }
    for (field, value) in message.fields() {
        let here = format!("{path}.{}", field.name());
        match value {
            Value::Message(m) => required(m, &here, missing),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(m) = item {
                        required(m, &format!("{here}[{i}]"), missing);
                    }
                }
            }
            Value::Map(entries) => {
                for (key, item) in entries {
                    if let Value::Message(m) = item {
                        required(m, &format!("{here}[{key:?}]"), missing);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::load(&default_proto_dir(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap()
    }

    #[test]
    fn calls_that_do_not_fit_the_protos_are_refused() {
        let s = schema();
        let ok = br#"{"framework_id":{"value":"f"},"type":"DECLINE","decline":{"offer_ids":[{"value":"o"}],"filters":{"refuse_seconds":5.0}}}"#;
        s.check_call(ok).unwrap();
        // An unknown field, a mistyped field, an enum name that does not exist, a required
        // field left out (OfferID.value), trailing garbage.
        for bad in [
            r#"{"type":"DECLINE","decline":{"offer_ids":[{"value":"o"}]},"extra":1}"#,
            r#"{"type":"DECLINE","decline":{"offer_ids":[{"value":"o"}],"filters":{"refuse_seconds":"soon"}}}"#,
            r#"{"type":"DECLINE_ALL"}"#,
            r#"{"type":"DECLINE","decline":{"offer_ids":[{}]}}"#,
            r#"{"type":"TEARDOWN"} x"#,
        ] {
            assert!(s.check_call(bad.as_bytes()).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn berth_vocabulary_fits_the_protos() {
        let s = schema();
        let status = berth_mesos::TaskStatus {
            task_id: berth_mesos::TaskId::new("t"),
            state: berth_mesos::TaskState::TaskRunning,
            message: None,
            source: Some(berth_mesos::StatusSource::SourceExecutor),
            reason: Some("REASON_RECONCILIATION".into()),
            agent_id: Some(berth_mesos::AgentId::new("a")),
            executor_id: None,
            timestamp: 1.5,
            uuid: Some("AAAAAAAAAAAAAAAAAAAAAQ==".into()),
            healthy: Some(true),
            check_status: None,
        };
        s.check("mesos.v1.TaskStatus", &serde_json::to_vec(&status).unwrap())
            .unwrap();
        let mut bad = status;
        bad.uuid = Some("not base64!".into());
        assert!(
            s.check("mesos.v1.TaskStatus", &serde_json::to_vec(&bad).unwrap())
                .is_err()
        );
    }
}

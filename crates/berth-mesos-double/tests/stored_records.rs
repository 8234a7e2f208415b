//! The protobuf form of stored TaskInfos and TaskStatuses (`berth_mesos::proto`) checked
//! against Mesos's own `.proto` files: what berth encodes decodes with `mesos.v1.TaskInfo` to
//! the same message its JSON describes, and what Mesos's messages encode decodes back to the
//! same berth value.

use std::path::Path;

use berth_mesos::proto::{
    ProtoError, decode_task_info, decode_task_status, encode_task_info, encode_task_status,
};
use berth_mesos::{TaskInfo, TaskStatus};
use berth_mesos_double::Schema;
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::{Value, json};

fn schema() -> Schema {
    let dir = berth_mesos_double::proto::default_proto_dir(Path::new(env!("CARGO_MANIFEST_DIR")));
    Schema::load(&dir).expect("Mesos's .proto files compile")
}

fn descriptor(schema: &Schema, name: &str) -> MessageDescriptor {
    schema.message(name).expect("the message exists")
}

/// A message as JSON (proto field names, enums by name, 64-bit numbers as numbers), with every
/// number as a float so that `1` and `1.0` compare equal.
fn as_json(message: &DynamicMessage) -> Value {
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false);
    let value = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .expect("serializes");
    floats(value)
}

fn floats(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().expect("a number")),
        Value::Array(items) => Value::Array(items.into_iter().map(floats).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, floats(v))).collect()),
        other => other,
    }
}

/// A reserved resource in the refinement format, with the two labels berth puts on it.
fn reserved(name: &str, value: Value, id: &str) -> Value {
    let mut r = json!({
        "name": name,
        "reservations": [{
            "type": "DYNAMIC", "role": "svc-role", "principal": "svc-principal",
            "labels": {"labels": [
                {"key": "resource_id", "value": id},
                {"key": "framework_id", "value": "fw-1"}
            ]}
        }]
    });
    let obj = r.as_object_mut().expect("an object");
    if value.is_number() {
        obj.insert("type".into(), json!("SCALAR"));
        obj.insert("scalar".into(), json!({"value": value}));
    } else {
        obj.insert("type".into(), json!("RANGES"));
        obj.insert("ranges".into(), json!({"range": value}));
    }
    r
}

/// A TaskInfo with every field berth models set.
fn rich_task_info() -> TaskInfo {
    let mut volume = reserved("disk", json!(1024.0), "r-4");
    volume["disk"] = json!({
        "persistence": {"id": "vol-1", "principal": "svc-principal"},
        "volume": {"container_path": "data", "mode": "RW"},
        "source": {"type": "MOUNT", "mount": {"root": "/mnt/disk0"}, "profile": "fast"}
    });
    let command = json!({
        "shell": true,
        "value": "echo hello >> data/out && sleep 1000",
        "uris": [
            {"value": "https://example.com/a.tgz", "extract": true},
            {"value": "https://example.com/tool", "executable": true, "extract": false, "output_file": "bin/tool"}
        ],
        "environment": {"variables": [
            {"name": "TASK_NAME", "value": "hello-0-server"},
            {"name": "EMPTY", "value": ""}
        ]},
        "user": "nobody"
    });
    let info = json!({
        "name": "hello-0-server",
        "task_id": {"value": "svc__hello-0-server__6a2f"},
        "agent_id": {"value": "agent-1"},
        "resources": [
            reserved("cpus", json!(0.5), "r-1"),
            reserved("mem", json!(256.0), "r-2"),
            reserved("ports", json!([{"begin": 8080, "end": 8080}, {"begin": 9000, "end": 9002}]), "r-3"),
            volume,
            {"name": "gpus", "type": "SET", "set": {"item": ["a", "b"]}}
        ],
        "executor": {
            "type": "DEFAULT",
            "executor_id": {"value": "svc__hello__e1"},
            "framework_id": {"value": "fw-1"},
            "name": "hello-0",
            "resources": [reserved("cpus", json!(0.1), "r-5")],
            "container": {
                "type": "MESOS",
                "network_infos": [{
                    "name": "dcos",
                    "labels": {"labels": [{"key": "k", "value": "v"}]},
                    "port_mappings": [{"host_port": 8080, "container_port": 80}]
                }]
            }
        },
        "command": command,
        "health_check": {
            "type": "COMMAND", "command": {"shell": true, "value": "./healthy"},
            "delay_seconds": 0.0, "interval_seconds": 30.0, "timeout_seconds": 20.0,
            "consecutive_failures": 3, "grace_period_seconds": 60.0
        },
        "check": {
            "type": "COMMAND", "command": {"command": {"shell": true, "value": "./ready"}},
            "delay_seconds": 0.0, "interval_seconds": 5.0, "timeout_seconds": 10.0
        },
        "kill_policy": {"grace_period": {"nanoseconds": 3_000_000_000_i64}},
        "labels": {"labels": [
            {"key": "target_configuration", "value": "0b7c"},
            {"key": "task_type", "value": "hello"},
            {"key": "index", "value": "0"},
            {"key": "permanently-failed", "value": "true"},
            {"key": "custom", "value": ""}
        ]},
        "discovery": {
            "visibility": "CLUSTER", "name": "hello-0",
            "ports": {"ports": [{
                "number": 8080, "name": "http", "protocol": "tcp", "visibility": "EXTERNAL",
                "labels": {"labels": [{"key": "VIP_0", "value": "/hello:80"}]}
            }]}
        },
        "container": {
            "type": "MESOS",
            "mesos": {"image": {"type": "DOCKER", "docker": {"name": "library/nginx:1.25"}}}
        }
    });
    serde_json::from_value(info).expect("a TaskInfo")
}

fn rich_task_status() -> TaskStatus {
    serde_json::from_value(json!({
        "task_id": {"value": "svc__hello-0-server__6a2f"},
        "state": "TASK_FAILED",
        "message": "Command exited with status 1",
        "source": "SOURCE_EXECUTOR",
        "reason": "REASON_COMMAND_EXECUTOR_FAILED",
        "agent_id": {"value": "agent-1"},
        "executor_id": {"value": "svc__hello__e1"},
        "timestamp": 1_733_400_000.25,
        "uuid": "AAAAAAAAAAAAAAAAAAAAAQ==",
        "healthy": false,
        "check_status": {"type": "COMMAND", "command": {"exit_code": 1}}
    }))
    .expect("a TaskStatus")
}

/// What berth encodes is, to Mesos's message, what berth's JSON says; and Mesos's encoding
/// of that message decodes to the value berth started from.
fn check_both_ways<T: serde::Serialize + PartialEq + std::fmt::Debug>(
    desc: &MessageDescriptor,
    value: &T,
    encode: impl Fn(&T) -> Result<Vec<u8>, ProtoError>,
    decode: impl Fn(&[u8]) -> Result<T, ProtoError>,
) {
    let ours = encode(value).expect("encodes");
    let from_ours =
        DynamicMessage::decode(desc.clone(), ours.as_slice()).expect("Mesos decodes it");
    let json_text = serde_json::to_string(value).expect("JSON");
    let mut de = serde_json::Deserializer::from_str(&json_text);
    let from_json = DynamicMessage::deserialize(desc.clone(), &mut de).expect("the JSON fits");
    assert_eq!(as_json(&from_ours), as_json(&from_json));
    let theirs = from_json.encode_to_vec();
    assert_eq!(
        &decode(&theirs).expect("berth decodes Mesos's bytes"),
        value
    );
    assert_eq!(&decode(&ours).expect("berth decodes its own bytes"), value);
}

#[test]
fn task_infos_match_mesos_messages_both_ways() {
    let schema = schema();
    let desc = descriptor(&schema, "mesos.v1.TaskInfo");
    let info = rich_task_info();
    check_both_ways(&desc, &info, encode_task_info, decode_task_info);
    // A footprint-only TaskInfo: no command, no executor, nothing optional.
    let bare: TaskInfo = serde_json::from_value(json!({
        "name": "hello-1-server", "task_id": {"value": ""}, "agent_id": {"value": "agent-2"}
    }))
    .expect("a TaskInfo");
    check_both_ways(&desc, &bare, encode_task_info, decode_task_info);
    let bytes = encode_task_info(&info).expect("encodes");
    let json = serde_json::to_vec(&info).expect("JSON");
    assert!(
        bytes.len() * 2 < json.len(),
        "{} protobuf bytes for {} JSON bytes",
        bytes.len(),
        json.len()
    );
}

#[test]
fn task_statuses_match_mesos_messages_both_ways() {
    let schema = schema();
    let desc = descriptor(&schema, "mesos.v1.TaskStatus");
    let status = rich_task_status();
    check_both_ways(&desc, &status, encode_task_status, decode_task_status);
    for (state, reason) in [
        ("TASK_RUNNING", None),
        ("TASK_STAGING", Some("REASON_RECONCILIATION")),
        (
            "TASK_GONE_BY_OPERATOR",
            Some("REASON_AGENT_REMOVED_BY_OPERATOR"),
        ),
        ("TASK_UNKNOWN", Some("REASON_TASK_UNKNOWN")),
    ] {
        let mut s = json!({"task_id": {"value": "t"}, "state": state, "timestamp": 1.5});
        if let Some(reason) = reason {
            s["reason"] = json!(reason);
        }
        let s: TaskStatus = serde_json::from_value(s).expect("a TaskStatus");
        check_both_ways(&desc, &s, encode_task_status, decode_task_status);
    }
}

/// A resource stored in the pre-refinement form (its role on the resource, one reservation
/// beside it), as older schedulers wrote, reads as a one-entry reservation stack.
#[test]
fn pre_refinement_reservations_read_as_a_stack() {
    let schema = schema();
    let desc = descriptor(&schema, "mesos.v1.TaskInfo");
    let old = json!({
        "name": "hello-0-server", "task_id": {"value": "t"}, "agent_id": {"value": "a"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "svc-role",
             "reservation": {"principal": "p", "labels": {"labels": [{"key": "resource_id", "value": "r-1"}]}}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64.0}, "role": "static-role"},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 5.0}, "role": "*"}
        ]
    });
    let old = old.to_string();
    let mut de = serde_json::Deserializer::from_str(&old);
    let bytes = DynamicMessage::deserialize(desc, &mut de)
        .expect("fits")
        .encode_to_vec();
    let info = decode_task_info(&bytes).expect("decodes");
    let cpus = &info.resources[0];
    assert_eq!(cpus.role(), "svc-role");
    assert_eq!(cpus.resource_id(), Some("r-1"));
    assert_eq!(cpus.reservations.len(), 1);
    assert_eq!(info.resources[1].role(), "static-role");
    assert_eq!(
        info.resources[1].reservations[0].kind,
        berth_mesos::ReservationType::Static
    );
    assert!(info.resources[2].reservations.is_empty());
}

#[test]
fn values_without_a_protobuf_number_are_refused_with_the_field_named() {
    let mut status = rich_task_status();
    status.reason = Some("REASON_NEWER_THAN_BERTH".into());
    let err = encode_task_status(&status).expect_err("no number");
    let text = err.to_string();
    assert!(text.contains("TaskStatus.reason"), "{text}");
    assert!(text.contains("REASON_NEWER_THAN_BERTH"), "{text}");
    assert!(text.contains("REASON_TASK_UNKNOWN"), "{text}");
    let mut info = rich_task_info();
    std::sync::Arc::make_mut(info.discovery.as_mut().expect("discovery")).visibility =
        "EVERYWHERE".into();
    let err = encode_task_info(&info).expect_err("no number").to_string();
    assert!(err.contains("DiscoveryInfo.visibility"), "{err}");
    // Bytes that are not a TaskInfo, and an enum number berth does not know.
    assert!(decode_task_info(b"{\"name\": \"x\"}").is_err());
    let unknown_state = [0x0a, 0x03, 0x0a, 0x01, b't', 0x10, 0x63];
    let err = decode_task_status(&unknown_state)
        .expect_err("state 99")
        .to_string();
    assert!(err.contains("TaskStatus.state is 99"), "{err}");
}

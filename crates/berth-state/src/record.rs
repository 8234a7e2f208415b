//! How task records (and the framework id) are stored: a TaskInfo, TaskStatus or FrameworkID
//! is kept as Mesos's protobuf bytes, as the SDK's layout keeps it (about half its JSON, and
//! several times faster to read back at a restart). JSON is read too — what earlier berth
//! versions wrote — and written for the rare record with a value that has no protobuf number
//! (see [`berth_mesos::proto`]).

use berth_mesos::proto;
use berth_mesos::{FrameworkId, TaskInfo, TaskStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StateError;

/// Whether stored bytes are JSON rather than protobuf: a JSON record is an object, and no
/// TaskInfo or TaskStatus message starts with `{` (field 15 as a group).
fn is_json(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{')
}

fn encode<T: Serialize>(
    path: &str,
    value: &T,
    proto: impl Fn(&T) -> Result<Vec<u8>, proto::ProtoError>,
) -> Result<Vec<u8>, StateError> {
    match proto(value) {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            tracing::debug!(path, "stored as JSON: {e}");
            json(path, value, false)
        }
    }
}

/// `value` as JSON (pretty for people), for the node at `path`.
pub(crate) fn json<T: Serialize + ?Sized>(
    path: &str,
    value: &T,
    pretty: bool,
) -> Result<Vec<u8>, StateError> {
    let result = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    result.map_err(|e| StateError::Encode {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn decode<T: DeserializeOwned>(
    path: &str,
    bytes: &[u8],
    proto: impl Fn(&[u8]) -> Result<T, proto::ProtoError>,
) -> Result<T, StateError> {
    if is_json(bytes) {
        serde_json::from_slice(bytes).map_err(|e| StateError::corrupt(path, e))
    } else {
        proto(bytes).map_err(|e| StateError::corrupt(path, e))
    }
}

/// The stored bytes of a TaskInfo at `path`.
pub(crate) fn encode_info(path: &str, info: &TaskInfo) -> Result<Vec<u8>, StateError> {
    encode(path, info, proto::encode_task_info)
}

/// The stored bytes of a TaskStatus at `path`.
pub(crate) fn encode_status(path: &str, status: &TaskStatus) -> Result<Vec<u8>, StateError> {
    encode(path, status, proto::encode_task_status)
}

/// A stored TaskInfo (protobuf or JSON).
pub(crate) fn decode_info(path: &str, bytes: &[u8]) -> Result<TaskInfo, StateError> {
    decode(path, bytes, proto::decode_task_info)
}

/// A stored TaskStatus (protobuf or JSON).
pub(crate) fn decode_status(path: &str, bytes: &[u8]) -> Result<TaskStatus, StateError> {
    decode(path, bytes, proto::decode_task_status)
}

/// The stored bytes of the framework id.
pub(crate) fn encode_framework_id(id: &FrameworkId) -> Vec<u8> {
    proto::encode_framework_id(id)
}

/// The stored framework id (protobuf, or the JSON `{"value": …}` of earlier versions).
pub(crate) fn decode_framework_id(path: &str, bytes: &[u8]) -> Result<FrameworkId, StateError> {
    decode(path, bytes, proto::decode_framework_id)
}

/// A stored node as people read it: a task record's or the framework id's JSON (whichever way
/// it is stored); `None` for any other node, whose bytes are already text.
///
/// # Errors
/// A task record that cannot be decoded.
pub fn readable_record(path: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
    let kind = path.rsplit('/').next().unwrap_or_default();
    if kind == crate::layout::FRAMEWORK_ID && !is_json(bytes) {
        return json(path, &decode_framework_id(path, bytes)?, false).map(Some);
    }
    let parent_is_task = path
        .rsplit('/')
        .nth(2)
        .is_some_and(|tasks| tasks == crate::layout::TASKS);
    if !parent_is_task || is_json(bytes) {
        return Ok(None);
    }
    match kind {
        crate::layout::TASK_INFO => json(path, &decode_info(path, bytes)?, true).map(Some),
        crate::layout::TASK_STATUS => json(path, &decode_status(path, bytes)?, true).map(Some),
        _ => Ok(None),
    }
}

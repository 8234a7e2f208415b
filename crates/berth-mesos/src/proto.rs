//! The protobuf binary form of [`TaskInfo`], [`TaskStatus`] and [`FrameworkId`]: what the state
//! store keeps under `Tasks/<name>/TaskInfo`, `Tasks/<name>/TaskStatus` and `FrameworkID`, as
//! the SDK's layout does.
//!
//! The bytes are those of Mesos's own messages (`mesos.v1.TaskInfo`, `mesos.v1.TaskStatus`;
//! v0's `mesos.TaskInfo` has the same field numbers), so a record written by berth decodes
//! with Mesos's `.proto` files, and a record another scheduler stored decodes here: fields
//! berth does not model are skipped, and the pre-refinement reservation form (`role` and one
//! `reservation`) is read as a one-entry reservation stack.
//!
//! A value berth's types allow but a protobuf enum has no number for (a reason or visibility
//! text a newer master invented) cannot be encoded: [`encode_task_info`] and
//! [`encode_task_status`] say so, and the store keeps that record as JSON instead.

mod messages;

use std::sync::Arc;

use base64::Engine as _;
use prost::Message as _;

use crate::{
    AgentId, CheckCommand, CheckInfo, CheckStatusInfo, CommandCheckStatus, CommandInfo, CommandUri,
    CompactString, ContainerInfo, ContainerType, DiscoveryInfo, DiscoveryPort, DiscoveryPorts,
    DiskInfo, DiskRoot, DiskSource, DiskSourceType, DockerImage, DurationInfo, Environment,
    ExecutorId, ExecutorInfo, ExecutorType, FrameworkId, HealthCheck, Image, ImageType, KillPolicy,
    Label, Labels, LabelsHash, MesosContainer, NetworkInfo, Persistence, PortMapping, Range,
    Ranges, ReservationInfo, ReservationType, Resource, Scalar, Set, StatusSource, TaskId,
    TaskInfo, TaskState, TaskStatus, ValueType, Variable, Volume, VolumeMode, label_key,
    resource_name,
};

/// Why a record cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The bytes are not a protobuf message of the expected type.
    #[error("not a protobuf message of this type: {0}")]
    Decode(#[from] prost::DecodeError),
    /// An enum field holds a number berth does not know.
    #[error("{field} is {number}, not one of {allowed}")]
    UnknownNumber {
        /// The field (`TaskStatus.reason`).
        field: &'static str,
        /// The number found.
        number: i32,
        /// The names berth knows.
        allowed: String,
    },
    /// A text field of berth's types has no number in the protobuf enum.
    #[error("{field} \"{name}\" has no protobuf number (allowed: {allowed})")]
    UnknownName {
        /// The field (`DiscoveryInfo.visibility`).
        field: &'static str,
        /// The text.
        name: String,
        /// The names the enum has.
        allowed: String,
    },
    /// A status update uuid that is not base64 text.
    #[error("TaskStatus.uuid is not base64 text: {0}")]
    Uuid(String),
}

type Result<T> = std::result::Result<T, ProtoError>;

/// An enum of text values and their protobuf numbers.
struct Names {
    field: &'static str,
    pairs: &'static [(&'static str, i32)],
}

impl Names {
    fn number(&self, name: &str) -> Result<i32> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| ProtoError::UnknownName {
                field: self.field,
                name: name.to_owned(),
                allowed: self.allowed(),
            })
    }

    fn name(&self, number: i32) -> Result<&'static str> {
        self.pairs
            .iter()
            .find(|(_, v)| *v == number)
            .map(|(n, _)| *n)
            .ok_or_else(|| ProtoError::UnknownNumber {
                field: self.field,
                number,
                allowed: self.allowed(),
            })
    }

    fn allowed(&self) -> String {
        let names: Vec<&str> = self.pairs.iter().map(|(n, _)| *n).collect();
        names.join(", ")
    }
}

const CHECK_TYPES: &[(&str, i32)] = &[("UNKNOWN", 0), ("COMMAND", 1), ("HTTP", 2), ("TCP", 3)];
const HEALTH_CHECK_TYPE: Names = Names {
    field: "HealthCheck.type",
    pairs: CHECK_TYPES,
};
const CHECK_TYPE: Names = Names {
    field: "CheckInfo.type",
    pairs: CHECK_TYPES,
};
const CHECK_STATUS_TYPE: Names = Names {
    field: "CheckStatusInfo.type",
    pairs: CHECK_TYPES,
};
const VISIBILITIES: &[(&str, i32)] = &[("FRAMEWORK", 0), ("CLUSTER", 1), ("EXTERNAL", 2)];
const DISCOVERY_VISIBILITY: Names = Names {
    field: "DiscoveryInfo.visibility",
    pairs: VISIBILITIES,
};
const PORT_VISIBILITY: Names = Names {
    field: "Port.visibility",
    pairs: VISIBILITIES,
};
const REASON: Names = Names {
    field: "TaskStatus.reason",
    pairs: &[
        ("REASON_COMMAND_EXECUTOR_FAILED", 0),
        ("REASON_CONTAINER_LAUNCH_FAILED", 21),
        ("REASON_CONTAINER_LIMITATION", 19),
        ("REASON_CONTAINER_LIMITATION_DISK", 20),
        ("REASON_CONTAINER_LIMITATION_MEMORY", 8),
        ("REASON_CONTAINER_PREEMPTED", 17),
        ("REASON_CONTAINER_UPDATE_FAILED", 22),
        ("REASON_MAX_COMPLETION_TIME_REACHED", 33),
        ("REASON_EXECUTOR_REGISTRATION_TIMEOUT", 23),
        ("REASON_EXECUTOR_REREGISTRATION_TIMEOUT", 24),
        ("REASON_EXECUTOR_TERMINATED", 1),
        ("REASON_EXECUTOR_UNREGISTERED", 2),
        ("REASON_FRAMEWORK_REMOVED", 3),
        ("REASON_GC_ERROR", 4),
        ("REASON_INVALID_FRAMEWORKID", 5),
        ("REASON_INVALID_OFFERS", 6),
        ("REASON_IO_SWITCHBOARD_EXITED", 27),
        ("REASON_MASTER_DISCONNECTED", 7),
        ("REASON_RECONCILIATION", 9),
        ("REASON_RESOURCES_UNKNOWN", 18),
        ("REASON_AGENT_DISCONNECTED", 10),
        ("REASON_AGENT_DRAINING", 34),
        ("REASON_AGENT_REMOVED", 11),
        ("REASON_AGENT_REMOVED_BY_OPERATOR", 31),
        ("REASON_AGENT_REREGISTERED", 32),
        ("REASON_AGENT_RESTARTED", 12),
        ("REASON_AGENT_UNKNOWN", 13),
        ("REASON_TASK_KILLED_DURING_LAUNCH", 30),
        ("REASON_TASK_CHECK_STATUS_UPDATED", 28),
        ("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED", 29),
        ("REASON_TASK_GROUP_INVALID", 25),
        ("REASON_TASK_GROUP_UNAUTHORIZED", 26),
        ("REASON_TASK_INVALID", 14),
        ("REASON_TASK_UNAUTHORIZED", 15),
        ("REASON_TASK_UNKNOWN", 16),
    ],
};

/// A typed enum's protobuf number and back.
trait Numbered: Sized + Copy + 'static {
    const FIELD: &'static str;
    const ALL: &'static [(Self, &'static str, i32)];

    fn number(self) -> i32 {
        Self::ALL
            .iter()
            .find(|(v, _, _)| std::mem::discriminant(v) == std::mem::discriminant(&self))
            .map_or(0, |(_, _, n)| *n)
    }

    fn from_number(number: i32) -> Result<Self> {
        Self::ALL
            .iter()
            .find(|(_, _, n)| *n == number)
            .map(|(v, _, _)| *v)
            .ok_or_else(|| ProtoError::UnknownNumber {
                field: Self::FIELD,
                number,
                allowed: Self::ALL
                    .iter()
                    .map(|(_, name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

macro_rules! numbered {
    ($ty:ty, $field:literal, [$(($v:expr, $n:literal, $num:literal)),+ $(,)?]) => {
        impl Numbered for $ty {
            const FIELD: &'static str = $field;
            const ALL: &'static [(Self, &'static str, i32)] = &[$(($v, $n, $num)),+];
        }
    };
}

numbered!(
    ValueType,
    "Resource.type",
    [
        (ValueType::Scalar, "SCALAR", 0),
        (ValueType::Ranges, "RANGES", 1),
        (ValueType::Set, "SET", 2),
        (ValueType::Text, "TEXT", 3),
    ]
);
numbered!(
    ReservationType,
    "ReservationInfo.type",
    [
        (ReservationType::Static, "STATIC", 1),
        (ReservationType::Dynamic, "DYNAMIC", 2),
    ]
);
numbered!(
    VolumeMode,
    "Volume.mode",
    [(VolumeMode::Rw, "RW", 1), (VolumeMode::Ro, "RO", 2),]
);
numbered!(
    DiskSourceType,
    "DiskInfo.Source.type",
    [
        (DiskSourceType::Path, "PATH", 1),
        (DiskSourceType::Mount, "MOUNT", 2),
    ]
);
numbered!(ImageType, "Image.type", [(ImageType::Docker, "DOCKER", 2)]);
numbered!(
    ContainerType,
    "ContainerInfo.type",
    [(ContainerType::Mesos, "MESOS", 2)]
);
numbered!(
    ExecutorType,
    "ExecutorInfo.type",
    [
        (ExecutorType::Default, "DEFAULT", 1),
        (ExecutorType::Custom, "CUSTOM", 2),
    ]
);
numbered!(
    StatusSource,
    "TaskStatus.source",
    [
        (StatusSource::SourceMaster, "SOURCE_MASTER", 0),
        (StatusSource::SourceAgent, "SOURCE_AGENT", 1),
        (StatusSource::SourceExecutor, "SOURCE_EXECUTOR", 2),
    ]
);
numbered!(
    TaskState,
    "TaskStatus.state",
    [
        (TaskState::TaskStaging, "TASK_STAGING", 6),
        (TaskState::TaskStarting, "TASK_STARTING", 0),
        (TaskState::TaskRunning, "TASK_RUNNING", 1),
        (TaskState::TaskKilling, "TASK_KILLING", 8),
        (TaskState::TaskFinished, "TASK_FINISHED", 2),
        (TaskState::TaskFailed, "TASK_FAILED", 3),
        (TaskState::TaskKilled, "TASK_KILLED", 4),
        (TaskState::TaskError, "TASK_ERROR", 7),
        (TaskState::TaskLost, "TASK_LOST", 5),
        (TaskState::TaskDropped, "TASK_DROPPED", 9),
        (TaskState::TaskUnreachable, "TASK_UNREACHABLE", 10),
        (TaskState::TaskGone, "TASK_GONE", 11),
        (TaskState::TaskGoneByOperator, "TASK_GONE_BY_OPERATOR", 12),
        (TaskState::TaskUnknown, "TASK_UNKNOWN", 13),
    ]
);

/// A TaskInfo's protobuf bytes.
///
/// # Errors
/// A check type or discovery visibility text with no protobuf number.
pub fn encode_task_info(info: &TaskInfo) -> Result<Vec<u8>> {
    Ok(enc::task_info(info)?.encode_to_vec())
}

/// A TaskInfo from its protobuf bytes.
///
/// # Errors
/// The bytes are not a `TaskInfo`, or an enum holds a number berth does not know.
pub fn decode_task_info(bytes: &[u8]) -> Result<TaskInfo> {
    dec::task_info(messages::TaskInfo::decode(bytes)?)
}

/// A TaskStatus's protobuf bytes.
///
/// # Errors
/// A reason or check type text with no protobuf number, or a uuid that is not base64.
pub fn encode_task_status(status: &TaskStatus) -> Result<Vec<u8>> {
    Ok(enc::task_status(status)?.encode_to_vec())
}

/// A TaskStatus from its protobuf bytes.
///
/// # Errors
/// The bytes are not a `TaskStatus`, or an enum holds a number berth does not know.
pub fn decode_task_status(bytes: &[u8]) -> Result<TaskStatus> {
    dec::task_status(messages::TaskStatus::decode(bytes)?)
}

/// A FrameworkID's protobuf bytes (`mesos.v1.FrameworkID`).
#[must_use]
pub fn encode_framework_id(id: &FrameworkId) -> Vec<u8> {
    messages::Id {
        value: id.value.clone(),
    }
    .encode_to_vec()
}

/// A FrameworkID from its protobuf bytes.
///
/// # Errors
/// The bytes are not a `FrameworkID`.
pub fn decode_framework_id(bytes: &[u8]) -> Result<FrameworkId> {
    Ok(FrameworkId::new(messages::Id::decode(bytes)?.value))
}

/// Berth's types to the messages (copies: encoding is once per write).
mod enc {
    use base64::Engine as _;

    use super::{
        CHECK_STATUS_TYPE, CHECK_TYPE, DISCOVERY_VISIBILITY, HEALTH_CHECK_TYPE, Names, Numbered,
        PORT_VISIBILITY, REASON, Result, messages as m,
    };
    use crate::{
        CommandInfo, ContainerInfo, DiscoveryInfo, DiskInfo, DiskRoot, ExecutorInfo, Label,
        Resource, TaskInfo, TaskStatus,
    };

    fn id(value: &str) -> m::Id {
        m::Id {
            value: value.to_owned(),
        }
    }

    fn labels(l: &[Label]) -> m::Labels {
        m::Labels {
            labels: l
                .iter()
                .map(|l| m::Label {
                    key: l.key.clone().into_owned(),
                    value: Some(l.value.to_string()),
                })
                .collect(),
        }
    }

    fn resource(r: &Resource) -> m::Resource {
        m::Resource {
            name: r.name.clone().into_owned(),
            kind: r.kind.number(),
            scalar: r.scalar.map(|s| m::Scalar { value: s.value }),
            ranges: r.ranges.as_ref().map(|rs| m::Ranges {
                range: rs
                    .range
                    .iter()
                    .map(|x| m::Range {
                        begin: x.begin,
                        end: x.end,
                    })
                    .collect(),
            }),
            set: r.set.as_ref().map(|s| m::Set {
                item: s.item.clone(),
            }),
            role: None,
            reservation: None,
            reservations: r
                .reservations
                .iter()
                .map(|v| m::ReservationInfo {
                    kind: Some(v.kind.number()),
                    role: Some(v.role.to_string()),
                    principal: v.principal.as_ref().map(ToString::to_string),
                    labels: v.labels.as_ref().map(|l| labels(&l.labels)),
                })
                .collect(),
            disk: r.disk.as_deref().map(disk),
        }
    }

    fn disk(d: &DiskInfo) -> m::DiskInfo {
        let root = |r: &DiskRoot| m::DiskRoot {
            root: Some(r.root.clone()),
        };
        m::DiskInfo {
            persistence: d.persistence.as_ref().map(|p| m::Persistence {
                id: p.id.clone(),
                principal: p.principal.clone(),
            }),
            volume: d.volume.as_ref().map(|v| m::Volume {
                mode: v.mode.number(),
                container_path: v.container_path.clone(),
            }),
            source: d.source.as_ref().map(|s| m::DiskSource {
                kind: s.kind.number(),
                path: s.path.as_ref().map(root),
                mount: s.mount.as_ref().map(root),
                profile: s.profile.clone(),
            }),
        }
    }

    fn command(c: &CommandInfo) -> m::CommandInfo {
        m::CommandInfo {
            uris: c
                .uris
                .iter()
                .map(|u| m::CommandUri {
                    value: u.value.clone(),
                    executable: u.executable.then_some(true),
                    extract: Some(u.extract),
                    output_file: u.output_file.clone(),
                })
                .collect(),
            environment: c.environment.as_ref().map(|e| m::Environment {
                variables: e
                    .variables
                    .iter()
                    .map(|v| m::Variable {
                        name: v.name.to_string(),
                        value: Some(v.value.to_string()),
                    })
                    .collect(),
            }),
            shell: Some(c.shell),
            value: Some(c.value.clone()),
            user: c.user.clone(),
        }
    }

    fn container(c: &ContainerInfo) -> m::ContainerInfo {
        m::ContainerInfo {
            kind: c.kind.number(),
            mesos: c.mesos.as_ref().map(|mc| m::MesosContainer {
                image: mc.image.as_ref().map(|i| m::Image {
                    kind: i.kind.number(),
                    docker: i.docker.as_ref().map(|d| m::DockerImage {
                        name: d.name.clone(),
                    }),
                }),
            }),
            network_infos: c
                .network_infos
                .iter()
                .map(|n| m::NetworkInfo {
                    name: n.name.clone(),
                    labels: n.labels.as_ref().map(|l| labels(&l.labels)),
                    port_mappings: n
                        .port_mappings
                        .iter()
                        .map(|p| m::PortMapping {
                            host_port: p.host_port,
                            container_port: p.container_port,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn executor(e: &ExecutorInfo) -> m::ExecutorInfo {
        m::ExecutorInfo {
            kind: Some(e.kind.number()),
            executor_id: id(&e.executor_id.value),
            framework_id: e.framework_id.as_ref().map(|f| id(&f.value)),
            resources: e.resources.iter().map(resource).collect(),
            name: e.name.clone(),
            container: e.container.as_ref().map(container),
        }
    }

    fn optional_name(names: &Names, name: Option<&String>) -> Result<Option<i32>> {
        name.map(|n| names.number(n)).transpose()
    }

    fn discovery(d: &DiscoveryInfo) -> Result<m::DiscoveryInfo> {
        let ports = match &d.ports {
            None => None,
            Some(ports) => Some(m::Ports {
                ports: ports
                    .ports
                    .iter()
                    .map(|p| {
                        Ok(m::Port {
                            number: p.number,
                            name: p.name.clone(),
                            protocol: p.protocol.clone(),
                            visibility: optional_name(&PORT_VISIBILITY, p.visibility.as_ref())?,
                            labels: p.labels.as_ref().map(|l| labels(&l.labels)),
                        })
                    })
                    .collect::<Result<_>>()?,
            }),
        };
        Ok(m::DiscoveryInfo {
            visibility: DISCOVERY_VISIBILITY.number(&d.visibility)?,
            name: d.name.clone(),
            ports,
        })
    }

    pub(super) fn task_info(t: &TaskInfo) -> Result<m::TaskInfo> {
        let health_check = match &t.health_check {
            None => None,
            Some(h) => Some(m::HealthCheck {
                delay_seconds: Some(h.delay_seconds),
                interval_seconds: Some(h.interval_seconds),
                timeout_seconds: Some(h.timeout_seconds),
                consecutive_failures: Some(h.consecutive_failures),
                grace_period_seconds: Some(h.grace_period_seconds),
                kind: Some(HEALTH_CHECK_TYPE.number(&h.kind)?),
                command: Some(command(&h.command)),
            }),
        };
        let check = match &t.check {
            None => None,
            Some(c) => Some(m::CheckInfo {
                kind: Some(CHECK_TYPE.number(&c.kind)?),
                command: Some(m::CheckCommand {
                    command: command(&c.command.command),
                }),
                delay_seconds: Some(c.delay_seconds),
                interval_seconds: Some(c.interval_seconds),
                timeout_seconds: Some(c.timeout_seconds),
            }),
        };
        Ok(m::TaskInfo {
            name: t.name.clone(),
            task_id: id(&t.task_id.value),
            agent_id: id(&t.agent_id.value),
            resources: t.resources.iter().map(resource).collect(),
            executor: t.executor.as_deref().map(executor),
            command: t.command.as_deref().map(command),
            container: t.container.as_deref().map(container),
            health_check,
            check,
            kill_policy: t.kill_policy.map(|k| m::KillPolicy {
                grace_period: k.grace_period.map(|g| m::DurationInfo {
                    nanoseconds: g.nanoseconds,
                }),
            }),
            labels: (!t.labels.is_empty()).then(|| labels(&t.labels.labels)),
            discovery: t.discovery.as_deref().map(discovery).transpose()?,
        })
    }

    pub(super) fn task_status(s: &TaskStatus) -> Result<m::TaskStatus> {
        let uuid = match &s.uuid {
            None => None,
            Some(text) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| super::ProtoError::Uuid(e.to_string()))?,
            ),
        };
        let check_status = match &s.check_status {
            None => None,
            Some(c) => Some(m::CheckStatusInfo {
                kind: Some(CHECK_STATUS_TYPE.number(&c.kind)?),
                command: c.command.map(|x| m::CommandCheckStatus {
                    exit_code: x.exit_code,
                }),
            }),
        };
        Ok(m::TaskStatus {
            task_id: id(&s.task_id.value),
            state: s.state.number(),
            message: s.message.clone(),
            source: s.source.map(Numbered::number),
            reason: optional_name(&REASON, s.reason.as_ref())?,
            agent_id: s.agent_id.as_ref().map(|a| id(&a.value)),
            executor_id: s.executor_id.as_ref().map(|e| id(&e.value)),
            timestamp: Some(s.timestamp),
            uuid,
            healthy: s.healthy,
            check_status,
        })
    }
}

/// The messages to berth's types (moves: decoding runs once per record at a restart).
mod dec {
    use super::*;

    /// A list kept in an allocation of its exact size (a `collect` of fallible items cannot
    /// know it: it starts at room for four).
    fn exact<T>(mut items: Vec<T>) -> Vec<T> {
        items.shrink_to_fit();
        items
    }

    fn labels(l: messages::Labels) -> Vec<Label> {
        exact(
            l.labels
                .into_iter()
                .map(|l| Label {
                    key: label_key(l.key),
                    value: l.value.unwrap_or_default().into(),
                })
                .collect(),
        )
    }

    fn reservation(r: messages::ReservationInfo) -> Result<ReservationInfo> {
        Ok(ReservationInfo {
            kind: r
                .kind
                .map_or(Ok(ReservationType::Dynamic), ReservationType::from_number)?,
            role: r.role.unwrap_or_default().into(),
            principal: r.principal.map(CompactString::from),
            labels: r.labels.map(|l| LabelsHash { labels: labels(l) }),
        })
    }

    fn resource(r: messages::Resource) -> Result<Resource> {
        let mut stack = r
            .reservations
            .into_iter()
            .map(reservation)
            .collect::<Result<Vec<_>>>()?;
        // The pre-refinement form: the role on the resource, a dynamic reservation beside it.
        if let Some(role) = r.role.filter(|role| stack.is_empty() && role != "*") {
            let mut top = match r.reservation {
                Some(v) => reservation(v)?,
                None => ReservationInfo {
                    kind: ReservationType::Static,
                    role: CompactString::default(),
                    principal: None,
                    labels: None,
                },
            };
            top.role = role.into();
            stack.push(top);
        }
        Ok(Resource {
            name: resource_name(&r.name),
            kind: ValueType::from_number(r.kind)?,
            scalar: r.scalar.map(|s| Scalar { value: s.value }),
            ranges: r.ranges.map(|rs| {
                Box::new(Ranges {
                    range: rs
                        .range
                        .into_iter()
                        .map(|x| Range {
                            begin: x.begin,
                            end: x.end,
                        })
                        .collect(),
                })
            }),
            set: r.set.map(|s| Box::new(Set { item: s.item })),
            reservations: stack.into(),
            disk: r.disk.map(disk).transpose()?.map(Box::new),
        })
    }

    fn disk(d: messages::DiskInfo) -> Result<DiskInfo> {
        let root = |r: messages::DiskRoot| DiskRoot {
            root: r.root.unwrap_or_default(),
        };
        Ok(DiskInfo {
            persistence: d.persistence.map(|p| Persistence {
                id: p.id,
                principal: p.principal,
            }),
            volume: d
                .volume
                .map(|v| {
                    Ok::<_, ProtoError>(Volume {
                        mode: VolumeMode::from_number(v.mode)?,
                        container_path: v.container_path,
                    })
                })
                .transpose()?,
            source: d
                .source
                .map(|s| {
                    Ok::<_, ProtoError>(DiskSource {
                        kind: DiskSourceType::from_number(s.kind)?,
                        mount: s.mount.map(root),
                        path: s.path.map(root),
                        profile: s.profile,
                    })
                })
                .transpose()?,
        })
    }

    fn command(c: messages::CommandInfo) -> CommandInfo {
        CommandInfo {
            shell: c.shell.unwrap_or(true),
            value: c.value.unwrap_or_default(),
            uris: c
                .uris
                .into_iter()
                .map(|u| CommandUri {
                    value: u.value,
                    executable: u.executable.unwrap_or(false),
                    extract: u.extract.unwrap_or(true),
                    output_file: u.output_file,
                })
                .collect(),
            environment: c.environment.map(|e| Environment {
                variables: exact(
                    e.variables
                        .into_iter()
                        .map(|v| Variable {
                            name: v.name.into(),
                            value: v.value.unwrap_or_default().into(),
                        })
                        .collect(),
                ),
            }),
            user: c.user,
        }
    }

    fn container(c: messages::ContainerInfo) -> Result<ContainerInfo> {
        let mesos = match c.mesos {
            None => None,
            Some(mc) => Some(MesosContainer {
                image: mc
                    .image
                    .map(|i| {
                        Ok::<_, ProtoError>(Image {
                            kind: ImageType::from_number(i.kind)?,
                            docker: i.docker.map(|d| DockerImage { name: d.name }),
                        })
                    })
                    .transpose()?,
            }),
        };
        Ok(ContainerInfo {
            kind: ContainerType::from_number(c.kind)?,
            mesos,
            network_infos: c
                .network_infos
                .into_iter()
                .map(|n| NetworkInfo {
                    name: n.name,
                    labels: n.labels.map(|l| Labels { labels: labels(l) }),
                    port_mappings: n
                        .port_mappings
                        .into_iter()
                        .map(|p| PortMapping {
                            host_port: p.host_port,
                            container_port: p.container_port,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    fn resources(list: Vec<messages::Resource>) -> Result<Vec<Resource>> {
        Ok(exact(
            list.into_iter().map(resource).collect::<Result<Vec<_>>>()?,
        ))
    }

    fn executor(e: messages::ExecutorInfo) -> Result<ExecutorInfo> {
        Ok(ExecutorInfo {
            kind: e
                .kind
                .map_or(Ok(ExecutorType::Default), ExecutorType::from_number)?,
            executor_id: ExecutorId::new(e.executor_id.value),
            framework_id: e.framework_id.map(|f| FrameworkId::new(f.value)),
            name: e.name,
            resources: resources(e.resources)?,
            container: e.container.map(container).transpose()?,
        })
    }

    fn discovery(d: messages::DiscoveryInfo) -> Result<DiscoveryInfo> {
        let ports = match d.ports {
            None => None,
            Some(p) => Some(DiscoveryPorts {
                ports: exact(
                    p.ports
                        .into_iter()
                        .map(|p| {
                            Ok(DiscoveryPort {
                                number: p.number,
                                name: p.name,
                                protocol: p.protocol,
                                visibility: p
                                    .visibility
                                    .map(|v| PORT_VISIBILITY.name(v).map(str::to_owned))
                                    .transpose()?,
                                labels: p.labels.map(|l| Labels { labels: labels(l) }),
                            })
                        })
                        .collect::<Result<_>>()?,
                ),
            }),
        };
        Ok(DiscoveryInfo {
            visibility: DISCOVERY_VISIBILITY.name(d.visibility)?.to_owned(),
            name: d.name,
            ports,
        })
    }

    pub(super) fn task_info(t: messages::TaskInfo) -> Result<TaskInfo> {
        let health_check = match t.health_check {
            None => None,
            Some(h) => Some(Arc::new(HealthCheck {
                kind: HEALTH_CHECK_TYPE.name(h.kind.unwrap_or(0))?.to_owned(),
                command: h.command.map(command).unwrap_or_default(),
                delay_seconds: h.delay_seconds.unwrap_or(15.0),
                interval_seconds: h.interval_seconds.unwrap_or(10.0),
                timeout_seconds: h.timeout_seconds.unwrap_or(20.0),
                consecutive_failures: h.consecutive_failures.unwrap_or(3),
                grace_period_seconds: h.grace_period_seconds.unwrap_or(10.0),
            })),
        };
        let check = match t.check {
            None => None,
            Some(c) => Some(Arc::new(CheckInfo {
                kind: CHECK_TYPE.name(c.kind.unwrap_or(0))?.to_owned(),
                command: CheckCommand {
                    command: c.command.map(|c| command(c.command)).unwrap_or_default(),
                },
                delay_seconds: c.delay_seconds.unwrap_or(15.0),
                interval_seconds: c.interval_seconds.unwrap_or(10.0),
                timeout_seconds: c.timeout_seconds.unwrap_or(20.0),
            })),
        };
        Ok(TaskInfo {
            name: t.name,
            task_id: TaskId::new(t.task_id.value),
            agent_id: AgentId::new(t.agent_id.value),
            resources: resources(t.resources)?,
            executor: t.executor.map(executor).transpose()?.map(Arc::new),
            command: t.command.map(|c| Arc::new(command(c))),
            health_check,
            check,
            kill_policy: t.kill_policy.map(|k| KillPolicy {
                grace_period: k.grace_period.map(|g| DurationInfo {
                    nanoseconds: g.nanoseconds,
                }),
            }),
            labels: Labels {
                labels: t.labels.map(labels).unwrap_or_default(),
            },
            discovery: t.discovery.map(discovery).transpose()?.map(Arc::new),
            container: t.container.map(container).transpose()?.map(Arc::new),
        })
    }

    pub(super) fn task_status(s: messages::TaskStatus) -> Result<TaskStatus> {
        Ok(TaskStatus {
            task_id: TaskId::new(s.task_id.value),
            state: TaskState::from_number(s.state)?,
            message: s.message,
            source: s.source.map(StatusSource::from_number).transpose()?,
            reason: s
                .reason
                .map(|r| REASON.name(r).map(str::to_owned))
                .transpose()?,
            agent_id: s.agent_id.map(|a| AgentId::new(a.value)),
            executor_id: s.executor_id.map(|e| ExecutorId::new(e.value)),
            timestamp: s.timestamp.unwrap_or_default(),
            uuid: s
                .uuid
                .map(|u| base64::engine::general_purpose::STANDARD.encode(u)),
            healthy: s.healthy,
            check_status: s
                .check_status
                .map(|c| {
                    Ok::<_, ProtoError>(CheckStatusInfo {
                        kind: CHECK_STATUS_TYPE.name(c.kind.unwrap_or(0))?.to_owned(),
                        command: c.command.map(|x| CommandCheckStatus {
                            exit_code: x.exit_code,
                        }),
                    })
                })
                .transpose()?,
        })
    }
}

//! Features a spec may use that berth's local agents cannot provide.
//!
//! berth's local agents run every task as a plain host process in a sandbox directory. That
//! rules out container images, virtual networks, a secret store, TLS artifacts from a
//! certificate authority, Docker external volumes, seccomp profiles and IPC/`/dev/shm`
//! namespaces. Such specs still parse (they are valid specs); whether they can run is decided
//! by the cluster backend, which can use this list to refuse them with a precise reason.

use std::fmt;

use crate::model::{IpcMode, ServiceSpec};

/// One use of a feature the local agents do not support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Dotted path of the field, e.g. `pods.hello.image`.
    pub field: String,
    /// The value used, if it helps (`ubuntu:14.04`).
    pub value: Option<String>,
    /// What is not supported and why.
    pub message: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)?;
        if let Some(v) = &self.value {
            write!(f, " ({})", crate::error::quote(v))?;
        }
        Ok(())
    }
}

fn finding(field: String, value: Option<&str>, message: &str) -> Unsupported {
    Unsupported {
        field,
        value: value.filter(|v| !v.is_empty()).map(str::to_owned),
        message: message.to_owned(),
    }
}

const IMAGE: &str = "container images are not supported: berth runs tasks as host processes";
const NETWORK: &str =
    "virtual networks are not supported: berth's agents run tasks on the host network";
const SECRET: &str = "secrets are not supported: berth's agents have no secret store";
const TLS: &str =
    "TLS artifacts are not supported: berth's agents have no certificate authority to issue them";
const EXTERNAL: &str = "external (Docker) volumes are not supported: berth's agents only provide \
                        local persistent volumes";
const SECCOMP: &str = "seccomp settings are not supported: berth runs tasks as host processes without a seccomp sandbox";
const IPC: &str = "IPC namespaces are not supported: berth runs tasks as host processes in the host IPC namespace";
const SHM: &str = "/dev/shm sizes are not supported: berth runs tasks as host processes sharing \
                   the host's /dev/shm";

/// Lists, per pod and task, the features of `spec` that berth's local agents do not support
/// (in spec order). An empty list means the spec can run on local agents.
#[must_use]
pub fn unsupported_features(spec: &ServiceSpec) -> Vec<Unsupported> {
    let mut out = Vec::new();
    for pod in &spec.pod_specs {
        let base = format!("pods.{}", pod.pod_type);
        if let Some(image) = &pod.image {
            out.push(finding(format!("{base}.image"), Some(image), IMAGE));
        }
        for network in &pod.networks {
            out.push(finding(
                format!("{base}.networks.{}", network.name),
                None,
                NETWORK,
            ));
        }
        for secret in &pod.secrets {
            out.push(finding(
                format!("{base}.secrets"),
                Some(&secret.secret_path),
                SECRET,
            ));
        }
        for volume in &pod.external_volumes {
            out.push(finding(
                format!("{base}.external-volumes.{}", volume.name),
                None,
                EXTERNAL,
            ));
        }
        if pod.seccomp_unconfined {
            out.push(finding(format!("{base}.seccomp-unconfined"), None, SECCOMP));
        }
        if let Some(profile) = &pod.seccomp_profile_name {
            out.push(finding(
                format!("{base}.seccomp-profile-name"),
                Some(profile),
                SECCOMP,
            ));
        }
        if let Some(mode) = pod.ipc_mode {
            out.push(finding(
                format!("{base}.ipc-mode"),
                Some(ipc_name(mode)),
                IPC,
            ));
        }
        if let Some(size) = pod.shm_size {
            out.push(finding(
                format!("{base}.shm-size"),
                Some(&size.to_string()),
                SHM,
            ));
        }
        for task in &pod.task_specs {
            let tbase = format!("{base}.tasks.{}", task.name);
            for tls in &task.transport_encryption {
                out.push(finding(
                    format!("{tbase}.transport-encryption"),
                    Some(&tls.name),
                    TLS,
                ));
            }
            if let Some(mode) = task.ipc_mode {
                out.push(finding(
                    format!("{tbase}.ipc-mode"),
                    Some(ipc_name(mode)),
                    IPC,
                ));
            }
            if let Some(size) = task.shm_size {
                out.push(finding(
                    format!("{tbase}.shm-size"),
                    Some(&size.to_string()),
                    SHM,
                ));
            }
        }
    }
    out
}

fn ipc_name(mode: IpcMode) -> &'static str {
    match mode {
        IpcMode::Private => "PRIVATE",
        IpcMode::ShareParent => "SHARE_PARENT",
    }
}

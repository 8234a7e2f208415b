//! Features a spec may use that a backend cannot provide.
//!
//! berth's local agents run every task as a plain host process in a sandbox directory. That
//! rules out container images, virtual networks, a secret store, TLS artifacts from a
//! certificate authority, Docker external volumes, seccomp profiles and IPC/`/dev/shm`
//! namespaces. On Mesos ([`Backend::Mesos`]) images and virtual networks run (the Mesos
//! containerizer, CNI); the rest stays refused. Such specs still parse (they are valid specs);
//! whether they can run is decided per backend, with a precise reason for each refusal.

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

const IMAGE: &str = "container images are not supported: berth runs tasks as host processes \
                     (they run on Mesos: berth run --master)";
const NETWORK: &str = "virtual networks are not supported: berth's agents run tasks on the host \
                       network (they run on Mesos: berth run --master)";
const SECRET_MESOS: &str =
    "secrets are not supported on Mesos: berth has no secret store to resolve them from";
const TLS_MESOS: &str = "TLS artifacts are not supported on Mesos: berth has no certificate \
                         authority to issue them";
const EXTERNAL_MESOS: &str = "external (Docker) volumes are not supported on Mesos by berth: use \
                              ROOT or MOUNT persistent volumes";
const SECCOMP_MESOS: &str = "seccomp settings are not sent to Mesos by berth yet";
const IPC_MESOS: &str = "IPC namespace settings are not sent to Mesos by berth yet";
const SHM_MESOS: &str = "/dev/shm sizes are not sent to Mesos by berth yet";

/// Where a service is to run: what can run there differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// berth's local agents (host processes, host network).
    Local,
    /// A Mesos cluster (`berth run --master`): the Mesos containerizer runs images and joins
    /// virtual networks.
    Mesos,
}

/// The messages of one backend, by feature.
struct Messages {
    image: Option<&'static str>,
    network: Option<&'static str>,
    secret: &'static str,
    tls: &'static str,
    external: &'static str,
    seccomp: &'static str,
    ipc: &'static str,
    shm: &'static str,
}

impl Backend {
    fn messages(self) -> Messages {
        match self {
            Backend::Local => Messages {
                image: Some(IMAGE),
                network: Some(NETWORK),
                secret: SECRET,
                tls: TLS,
                external: EXTERNAL,
                seccomp: SECCOMP,
                ipc: IPC,
                shm: SHM,
            },
            Backend::Mesos => Messages {
                image: None,
                network: None,
                secret: SECRET_MESOS,
                tls: TLS_MESOS,
                external: EXTERNAL_MESOS,
                seccomp: SECCOMP_MESOS,
                ipc: IPC_MESOS,
                shm: SHM_MESOS,
            },
        }
    }
}
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
    unsupported_on(spec, Backend::Local)
}

/// Lists, per pod and task, the features of `spec` that berth cannot run on `backend` (in
/// spec order). An empty list means the spec can run there.
#[must_use]
pub fn unsupported_on(spec: &ServiceSpec, backend: Backend) -> Vec<Unsupported> {
    let m = backend.messages();
    let mut out = Vec::new();
    for pod in &spec.pod_specs {
        let base = format!("pods.{}", pod.pod_type);
        if let (Some(image), Some(message)) = (&pod.image, m.image) {
            out.push(finding(format!("{base}.image"), Some(image), message));
        }
        for network in pod.networks.iter().filter(|_| m.network.is_some()) {
            out.push(finding(
                format!("{base}.networks.{}", network.name),
                None,
                m.network.unwrap_or_default(),
            ));
        }
        for secret in &pod.secrets {
            out.push(finding(
                format!("{base}.secrets"),
                Some(&secret.secret_path),
                m.secret,
            ));
        }
        for volume in &pod.external_volumes {
            out.push(finding(
                format!("{base}.external-volumes.{}", volume.name),
                None,
                m.external,
            ));
        }
        if pod.seccomp_unconfined {
            out.push(finding(
                format!("{base}.seccomp-unconfined"),
                None,
                m.seccomp,
            ));
        }
        if let Some(profile) = &pod.seccomp_profile_name {
            out.push(finding(
                format!("{base}.seccomp-profile-name"),
                Some(profile),
                m.seccomp,
            ));
        }
        if let Some(mode) = pod.ipc_mode {
            out.push(finding(
                format!("{base}.ipc-mode"),
                Some(ipc_name(mode)),
                m.ipc,
            ));
        }
        if let Some(size) = pod.shm_size {
            out.push(finding(
                format!("{base}.shm-size"),
                Some(&size.to_string()),
                m.shm,
            ));
        }
        for task in &pod.task_specs {
            let tbase = format!("{base}.tasks.{}", task.name);
            for tls in &task.transport_encryption {
                out.push(finding(
                    format!("{tbase}.transport-encryption"),
                    Some(&tls.name),
                    m.tls,
                ));
            }
            if let Some(mode) = task.ipc_mode {
                out.push(finding(
                    format!("{tbase}.ipc-mode"),
                    Some(ipc_name(mode)),
                    m.ipc,
                ));
            }
            if let Some(size) = task.shm_size {
                out.push(finding(
                    format!("{tbase}.shm-size"),
                    Some(&size.to_string()),
                    m.shm,
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

//! `pods`: each pod's count, placement, image, roles, networks, rlimits, URIs, secrets,
//! namespaces and seccomp, its named resource sets, and its tasks (read in `task`).
//!
//! Unlike every other mapping, a pod ignores keys it does not know (see the parent module).

use super::Converter;
use super::fields::{Fields, join};
use super::resources::{MAX_PORT, RESOURCE_KEYS, Roles};
use super::values::{Choice, U32_MAX};
use crate::model::{IpcMode, NetworkSpec, PodSpec, RLimitSpec, ResourceSet, SecretSpec, TaskSpec};
use crate::placement::{PlacementRule, parse_placement};
use crate::yaml::{Node, NodeKind};

/// Keys of a pod.
const POD_KEYS: &[&str] = &[
    "count",
    "allow-decommission",
    "placement",
    "image",
    "networks",
    "rlimits",
    "uris",
    "volume",
    "volumes",
    "pre-reserved-role",
    "secrets",
    "share-pid-namespace",
    "host-volumes",
    "external-volumes",
    "seccomp-unconfined",
    "seccomp-profile-name",
    "ipc-mode",
    "shm-size",
    "resource-sets",
    "tasks",
];
/// Keys of a network.
const NETWORK_KEYS: &[&str] = &["host-ports", "container-ports", "labels"];
/// Keys of a resource limit under `rlimits`.
const RLIMIT_KEYS: &[&str] = &["soft", "hard"];
/// Keys of a secret.
const SECRET_KEYS: &[&str] = &["secret", "env-key", "file"];

/// The resource limit names accepted under `rlimits`.
pub const RLIMIT_NAMES: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

/// The IPC modes of a pod.
const POD_IPC_MODES: Choice<IpcMode> = Choice {
    what: "an IPC mode for a pod",
    options: &[("PRIVATE", IpcMode::Private)],
    extra: " (SHARE_PARENT is only allowed on tasks)",
};

impl Converter<'_> {
    /// The `pods` mapping of the root (required, at least one pod type).
    pub(super) fn pods(
        &mut self,
        root: &Fields<'_>,
        role: &str,
        principal: &str,
        user: &str,
    ) -> Vec<PodSpec> {
        let mut pod_specs = Vec::new();
        if let Some(node) = self.req(root, "pods", "a mapping of pod types")
            && let Some(entries) = self.entries(node, "pods")
        {
            if entries.is_empty() {
                self.err(
                    root.key_line("pods"),
                    "pods",
                    None,
                    "is empty; a service needs at least one pod type",
                );
            }
            for (pod_type, key, value) in entries {
                if let Some(pod) = self.pod(pod_type, key, value, role, principal, user) {
                    pod_specs.push(pod);
                }
            }
        }
        pod_specs
    }

    /// One pod type.
    fn pod(
        &mut self,
        pod_type: &str,
        key: &Node,
        node: &Node,
        role: &str,
        principal: &str,
        user: &str,
    ) -> Option<PodSpec> {
        let path = join("pods", pod_type);
        let f = self.fields(node, &path, key.line, POD_KEYS, false)?;
        let count = self
            .req_int(&f, "count", 0, U32_MAX, "an integer ≥ 0")
            .and_then(|n| u32::try_from(n).ok());
        let allow_decommission = self.opt_bool(&f, "allow-decommission", false);
        let placement_rule = self.placement(&f);
        let image = self.opt_string(&f, "image");
        if image.as_ref().is_some_and(|s| s.trim().is_empty()) {
            self.err_at(
                &f,
                "image",
                Some(""),
                "is empty; name an image (e.g. ubuntu:22.04) or leave `image` out to run on the host",
            );
        }
        let image = image.filter(|s| !s.trim().is_empty());
        let pre_reserved_role = self
            .opt_string(&f, "pre-reserved-role")
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "*".to_owned());
        let roles = Roles {
            role: role.to_owned(),
            pre_reserved_role: pre_reserved_role.clone(),
            principal: principal.to_owned(),
        };

        let networks = self.networks(&f);
        let rlimits = self.rlimits(&f);
        let uris = self.uris(&f);
        let volumes = self.volumes(&f, &roles);
        let secrets = self.secrets(&f);
        let share_pid_namespace = self.opt_bool(&f, "share-pid-namespace", false);
        let host_volumes = self.host_volumes(&f);
        let external_volumes = self.external_volumes(&f);
        let (seccomp_unconfined, seccomp_profile_name) = self.seccomp(&f);
        let ipc_mode = self.opt_choice(&f, "ipc-mode", &POD_IPC_MODES);
        let shm_size = self
            .opt_integer(&f, "shm-size", 0, U32_MAX, "a size in MB ≥ 0")
            .and_then(|n| u32::try_from(n).ok());
        let resource_sets = self.resource_sets(&f, &roles, pod_type);
        let task_specs = self.tasks(&f, pod_type, &roles, &resource_sets);

        Some(PodSpec {
            pod_type: pod_type.to_owned(),
            user: user.to_owned(),
            count: count?,
            allow_decommission,
            image,
            networks,
            rlimits,
            uris,
            volumes,
            pre_reserved_role,
            secrets,
            placement_rule,
            task_specs,
            share_pid_namespace,
            host_volumes,
            external_volumes,
            seccomp_unconfined,
            seccomp_profile_name,
            ipc_mode,
            shm_size,
        })
    }

    /// `placement`: a rule string, or the rule written as a YAML list.
    fn placement(&mut self, f: &Fields<'_>) -> Option<PlacementRule> {
        self.read_opt(f, "placement", |c, n, path| match &n.kind {
            NodeKind::Scalar { text, .. } => parse_placement(text),
            NodeKind::Seq(_) => parse_placement(&n.to_json().to_string()),
            _ => {
                c.wrong_kind(
                    n,
                    path,
                    "a placement string like '[[\"hostname\", \"UNIQUE\"]]'",
                );
                None
            }
        })
        .flatten()
    }

    /// `seccomp-unconfined` and `seccomp-profile-name` (not both).
    fn seccomp(&mut self, f: &Fields<'_>) -> (bool, Option<String>) {
        let unconfined = self.opt_bool(f, "seccomp-unconfined", false);
        let profile_name = self
            .opt_string(f, "seccomp-profile-name")
            .filter(|s| !s.trim().is_empty());
        if unconfined && profile_name.is_some() {
            self.err_at(
                f,
                "seccomp-profile-name",
                profile_name.as_deref(),
                "may not be combined with seccomp-unconfined: true; choose one",
            );
        }
        (unconfined, profile_name)
    }

    /// The pod's named `resource-sets`, by id.
    fn resource_sets(
        &mut self,
        f: &Fields<'_>,
        roles: &Roles,
        pod_type: &str,
    ) -> Vec<(String, ResourceSet)> {
        let mut resource_sets = Vec::new();
        let Some((sets_path, entries)) = self.sub_entries(f, "resource-sets") else {
            return resource_sets;
        };
        for (id, k, v) in entries {
            let set_path = join(&sets_path, id);
            if let Some(sf) = self.fields(v, &set_path, k.line, RESOURCE_KEYS, true)
                && let Some(set) = self.resources(&sf, id.to_owned(), roles, pod_type)
            {
                resource_sets.push((id.to_owned(), set));
            }
        }
        resource_sets
    }

    /// The pod's `tasks` (required, at least one).
    fn tasks(
        &mut self,
        f: &Fields<'_>,
        pod_type: &str,
        roles: &Roles,
        resource_sets: &[(String, ResourceSet)],
    ) -> Vec<TaskSpec> {
        let mut task_specs = Vec::new();
        let Some(node) = self.req(f, "tasks", "a mapping of tasks") else {
            return task_specs;
        };
        let tasks_path = f.path("tasks");
        let Some(entries) = self.entries(node, &tasks_path) else {
            return task_specs;
        };
        if entries.is_empty() {
            self.err_at(f, "tasks", None, "is empty; a pod needs at least one task");
        }
        for (name, k, v) in entries {
            if let Some(task) = self.task(pod_type, name, k, v, roles, resource_sets) {
                task_specs.push(task);
            }
        }
        task_specs
    }

    /// `networks`: each network's port mappings and labels.
    fn networks(&mut self, f: &Fields<'_>) -> Vec<NetworkSpec> {
        let mut out = Vec::new();
        let Some((path, entries)) = self.sub_entries(f, "networks") else {
            return out;
        };
        for (name, k, v) in entries {
            let npath = join(&path, name);
            let Some(nf) = self.fields(v, &npath, k.line, NETWORK_KEYS, true) else {
                continue;
            };
            let host_ports = self.port_list(&nf, "host-ports");
            let container_ports = self.port_list(&nf, "container-ports");
            if !host_ports.is_empty()
                && !container_ports.is_empty()
                && host_ports.len() != container_ports.len()
            {
                self.err_at(
                    &nf,
                    "container-ports",
                    None,
                    format!(
                        "has {} ports but host-ports has {}; each host port maps to one container \
                         port",
                        container_ports.len(),
                        host_ports.len()
                    ),
                );
            }
            let labels = self.opt_labels(&nf, "labels");
            out.push(NetworkSpec {
                name: name.to_owned(),
                host_ports,
                container_ports,
                labels,
            });
        }
        out
    }

    /// A list of port numbers under `key` (invalid entries reported and left out).
    fn port_list(&mut self, f: &Fields<'_>, key: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let Some((path, items)) = self.sub_seq(f, key, "a list of ports") else {
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            if let Some(n) = self.integer(item, &ipath, 0, MAX_PORT, "a port from 0 to 65535") {
                out.push(u32::try_from(n).unwrap_or_default());
            }
        }
        out
    }

    /// `rlimits`: resource limits by name.
    fn rlimits(&mut self, f: &Fields<'_>) -> Vec<RLimitSpec> {
        let mut out = Vec::new();
        let Some((path, entries)) = self.sub_entries(f, "rlimits") else {
            return out;
        };
        for (name, k, v) in entries {
            let rpath = join(&path, name);
            if !RLIMIT_NAMES.contains(&name) {
                self.err(
                    k.line,
                    &rpath,
                    None,
                    format!(
                        "is not a known resource limit; allowed: {}",
                        RLIMIT_NAMES.join(", ")
                    ),
                );
                continue;
            }
            if let Some(rlimit) = self.rlimit(name, k, v, &rpath) {
                out.push(rlimit);
            }
        }
        out
    }

    /// One resource limit: both `soft` and `hard` (soft ≤ hard; -1 = unlimited), or neither.
    fn rlimit(&mut self, name: &str, key: &Node, node: &Node, path: &str) -> Option<RLimitSpec> {
        let rf = self.fields(node, path, key.line, RLIMIT_KEYS, true)?;
        let expect = "an integer ≥ 0, or -1 for unlimited";
        let soft = self.read_opt(&rf, "soft", |c, n, p| c.integer(n, p, -1, i64::MAX, expect));
        let hard = self.read_opt(&rf, "hard", |c, n, p| c.integer(n, p, -1, i64::MAX, expect));
        let (soft, hard) = match (soft, hard) {
            (None, None) => (None, None),
            (Some(Some(s)), Some(Some(h))) => {
                let s = u64::try_from(s).ok();
                let h = u64::try_from(h).ok();
                let too_high = match (s, h) {
                    (None, Some(_)) => true,
                    (Some(s), Some(h)) => s > h,
                    _ => false,
                };
                if too_high {
                    self.err_at(
                        &rf,
                        "soft",
                        None,
                        format!(
                            "is above the hard limit ({} > {}); the soft limit must be ≤ the hard \
                             limit",
                            s.map_or_else(|| "unlimited".to_owned(), |v| v.to_string()),
                            h.map_or_else(|| "unlimited".to_owned(), |v| v.to_string()),
                        ),
                    );
                }
                (s, h)
            }
            (Some(None), _) | (_, Some(None)) => return None,
            (Some(_), None) | (None, Some(_)) => {
                self.err(
                    key.line,
                    path,
                    None,
                    "sets only one of soft and hard; set both, or neither for unlimited",
                );
                return None;
            }
        };
        Some(RLimitSpec {
            name: name.to_owned(),
            soft,
            hard,
        })
    }

    /// `uris`: the URIs fetched into the sandbox (empty entries dropped).
    fn uris(&mut self, f: &Fields<'_>) -> Vec<String> {
        let mut out = Vec::new();
        let Some((path, items)) = self.sub_seq(f, "uris", "a list of URIs") else {
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            match &item.kind {
                NodeKind::Null => {}
                NodeKind::Scalar { text, .. } => {
                    if !text.trim().is_empty() {
                        out.push(text.trim().to_owned());
                    }
                }
                _ => self.wrong_kind(item, &format!("{path}[{i}]"), "a URI"),
            }
        }
        out
    }

    /// `secrets`: each secret's path and where it is exposed (file by default).
    fn secrets(&mut self, f: &Fields<'_>) -> Vec<SecretSpec> {
        let mut out = Vec::new();
        let Some((path, entries)) = self.sub_entries(f, "secrets") else {
            return out;
        };
        for (name, k, v) in entries {
            let spath = join(&path, name);
            let Some(sf) = self.fields(v, &spath, k.line, SECRET_KEYS, true) else {
                continue;
            };
            if !sf.written("secret") {
                self.err(
                    sf.line,
                    &sf.path("secret"),
                    None,
                    "is required; expected a secret path",
                );
                continue;
            }
            // An empty secret path is kept (templates often leave it unset by default).
            let secret_path = self.opt_string(&sf, "secret").unwrap_or_default();
            let env_key = self.opt_string(&sf, "env-key").filter(|s| !s.is_empty());
            let mut file_path = self.opt_string(&sf, "file").filter(|s| !s.is_empty());
            if env_key.is_none() && file_path.is_none() && !secret_path.is_empty() {
                file_path = Some(secret_path.clone());
            }
            out.push(SecretSpec {
                secret_path,
                env_key,
                file_path,
            });
        }
        out
    }
}

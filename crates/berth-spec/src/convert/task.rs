//! A task: goal, command and environment (plus `TASKCFG_*`), labels, config templates, its
//! resources (inline, or a `resource-set` of the pod), discovery, transport encryption, kill
//! grace period and IPC. Resources are read in `resources`, the checks in `checks`.

use super::Converter;
use super::fields::{Fields, join};
use super::resources::{RESOURCE_KEYS, Roles};
use super::rules::PrefixSeen;
use super::values::{Choice, U32_MAX, to_u32};
use crate::model::{
    CommandSpec, ConfigFileSpec, DiscoverySpec, Goal, IpcMode, ResourceSet, StringMap, TaskSpec,
    TransportEncryptionSpec, TransportEncryptionType, Visibility,
};
use crate::yaml::{Node, NodeKind};

/// Keys of a task.
const TASK_KEYS: &[&str] = &[
    "goal",
    "essential",
    "cmd",
    "env",
    "labels",
    "configs",
    "cpus",
    "gpus",
    "memory",
    "ports",
    "volume",
    "volumes",
    "resource-set",
    "resource-limits",
    "health-check",
    "readiness-check",
    "discovery",
    "transport-encryption",
    "kill-grace-period",
    "ipc-mode",
    "shm-size",
];
/// Keys of `discovery`.
const DISCOVERY_KEYS: &[&str] = &["prefix", "visibility"];
/// Keys of one `transport-encryption` entry.
const TLS_KEYS: &[&str] = &["name", "type"];
/// Keys of one of `configs`.
const CONFIG_KEYS: &[&str] = &["template", "dest"];

/// The longest kill grace period, in seconds.
const MAX_KILL_GRACE: i64 = 3_600;

/// The goals of a task.
const GOALS: Choice<Goal> = Choice {
    what: "a goal",
    options: &[
        ("RUNNING", Goal::Running),
        ("FINISH", Goal::Finish),
        ("ONCE", Goal::Once),
    ],
    extra: "",
};
/// The IPC modes of a task.
const TASK_IPC_MODES: Choice<IpcMode> = Choice {
    what: "an IPC mode",
    options: &[
        ("PRIVATE", IpcMode::Private),
        ("SHARE_PARENT", IpcMode::ShareParent),
    ],
    extra: "",
};
/// The visibilities of a discovery entry.
const VISIBILITIES: Choice<Visibility> = Choice {
    what: "a visibility",
    options: &[
        ("FRAMEWORK", Visibility::Framework),
        ("CLUSTER", Visibility::Cluster),
        ("EXTERNAL", Visibility::External),
    ],
    extra: "",
};
/// The kinds of a transport encryption artifact.
const TLS_TYPES: Choice<TransportEncryptionType> = Choice {
    what: "a transport encryption type",
    options: &[
        ("TLS", TransportEncryptionType::Tls),
        ("KEYSTORE", TransportEncryptionType::Keystore),
    ],
    extra: "",
};

impl Converter<'_> {
    /// One task of the pod `pod_type`, whose named resource sets are `resource_sets`.
    pub(super) fn task(
        &mut self,
        pod_type: &str,
        name: &str,
        key: &Node,
        node: &Node,
        roles: &Roles,
        resource_sets: &[(String, ResourceSet)],
    ) -> Option<TaskSpec> {
        let path = join(&join("pods", pod_type), &format!("tasks.{name}"));
        let f = self.fields(node, &path, key.line, TASK_KEYS, true)?;
        let goal = self.req_choice(&f, "goal", "RUNNING, FINISH or ONCE", &GOALS);
        let essential = self.opt_bool(&f, "essential", true);
        let cmd = self.req_string(&f, "cmd", "a shell command");
        let environment = self.environment(&f, pod_type);
        // `labels:` with nothing (an empty template value) is none; a blank string is refused
        // as the reference does.
        if f.get("labels")
            .and_then(Node::as_scalar)
            .is_some_and(|t| t.trim().is_empty())
        {
            self.err_at(
                &f,
                "labels",
                Some(""),
                "is blank; give labels like \"key1:value1,key2:value2\" or leave `labels` out",
            );
        }
        let task_labels = self.opt_labels(&f, "labels");
        let config_files = self.configs(&f);
        let resource_set = if f.written("resource-set") {
            self.named_resource_set(&f, pod_type, resource_sets)
        } else if !RESOURCE_KEYS.iter().any(|k| f.written(k)) {
            self.err(
                f.line,
                &path,
                None,
                "has neither resources nor a resource-set; give cpus and memory (with ports and \
                 volumes as needed), or `resource-set: <id>` naming one of the pod's \
                 resource-sets",
            );
            None
        } else {
            self.resources(&f, format!("{name}-resource-set"), roles, pod_type)
        };
        let health_check_spec = self.health_check(&f);
        let readiness_check_spec = self.readiness_check(&f);
        let discovery_spec = self.discovery(&f, pod_type);
        let transport_encryption = self.transport_encryption(&f);
        let expect = "seconds from 0 to 3600";
        let kill_grace_period = self
            .int_or(&f, "kill-grace-period", 0, MAX_KILL_GRACE, expect, 0)
            .map(to_u32);
        let (ipc_mode, shm_size) = self.ipc(&f);

        Some(TaskSpec {
            name: name.to_owned(),
            goal: goal?,
            essential,
            resource_set: resource_set?,
            command_spec: CommandSpec {
                value: cmd?,
                environment,
            },
            health_check_spec,
            readiness_check_spec,
            config_files,
            discovery_spec,
            task_labels,
            kill_grace_period: kill_grace_period?,
            transport_encryption,
            ipc_mode,
            shm_size,
        })
    }

    /// The task's `env`, then the `TASKCFG_*` entries of the environment for its pod type.
    fn environment(&mut self, f: &Fields<'_>, pod_type: &str) -> StringMap {
        let mut environment = StringMap::new();
        if let Some((env_path, entries)) = self.sub_entries(f, "env") {
            for (k, knode, v) in entries {
                if k.trim().is_empty() {
                    self.err(knode.line, &env_path, None, "has an empty variable name");
                    continue;
                }
                match &v.kind {
                    NodeKind::Null => {
                        environment.insert(k.to_owned(), String::new());
                    }
                    NodeKind::Scalar { text, .. } => {
                        environment.insert(k.to_owned(), text.clone());
                    }
                    _ => self.wrong_kind(v, &join(&env_path, k), "a value (string or number)"),
                }
            }
        }
        for (k, v) in self.taskcfg(pod_type) {
            environment.insert(k, v);
        }
        environment
    }

    /// `TASKCFG_ALL_<K>` and `TASKCFG_<POD>_<K>` entries of the environment for a pod type
    /// (pod-specific ones win).
    fn taskcfg(&self, pod_type: &str) -> Vec<(String, String)> {
        let pod_prefix = format!("TASKCFG_{}_", pod_type.to_uppercase().replace('-', "_"));
        let mut out: Vec<(String, String)> = Vec::new();
        for prefix in ["TASKCFG_ALL_", pod_prefix.as_str()] {
            for (k, v) in self.env {
                if let Some(name) = k.strip_prefix(prefix)
                    && !name.is_empty()
                {
                    out.push((name.to_owned(), v.clone()));
                }
            }
        }
        out
    }

    /// The pod's resource set named by the task's `resource-set`, which may not be combined
    /// with resources declared on the task.
    fn named_resource_set(
        &mut self,
        f: &Fields<'_>,
        pod_type: &str,
        resource_sets: &[(String, ResourceSet)],
    ) -> Option<ResourceSet> {
        let inline: Vec<&str> = RESOURCE_KEYS
            .iter()
            .copied()
            .filter(|k| f.written(k))
            .collect();
        if !inline.is_empty() {
            self.err_at(
                f,
                "resource-set",
                None,
                format!(
                    "may not be combined with resources declared on the task ({}); declare them \
                     in the resource set",
                    inline.join(", ")
                ),
            );
            return None;
        }
        let id = self.req_string(
            f,
            "resource-set",
            "the id of one of the pod's resource-sets",
        )?;
        let found = resource_sets
            .iter()
            .find(|(sid, _)| *sid == id)
            .map(|(_, s)| s.clone());
        if found.is_none() {
            let known: Vec<&str> = resource_sets.iter().map(|(s, _)| s.as_str()).collect();
            let allowed = if known.is_empty() {
                "the pod has no resource-sets".to_owned()
            } else {
                format!("allowed: {}", known.join(", "))
            };
            self.err_at(
                f,
                "resource-set",
                Some(&id),
                format!("is not a resource set of pod {pod_type}; {allowed}"),
            );
        }
        found
    }

    /// The task's `discovery`; its prefix is recorded for the service-wide rules.
    fn discovery(&mut self, f: &Fields<'_>, pod_type: &str) -> Option<DiscoverySpec> {
        let df = self.sub_fields(f, "discovery", DISCOVERY_KEYS)?;
        let prefix = self
            .opt_string(&df, "prefix")
            .filter(|s| !s.trim().is_empty());
        if let Some(p) = &prefix {
            self.discovery.push(PrefixSeen {
                pod: pod_type.to_owned(),
                prefix: p.clone(),
                line: df.key_line("prefix"),
                path: df.path("prefix"),
            });
        }
        let visibility = self.choice_or(&df, "visibility", &VISIBILITIES, Visibility::Cluster)?;
        Some(DiscoverySpec { prefix, visibility })
    }

    /// The task's `ipc-mode` and `shm-size` (no size with SHARE_PARENT).
    fn ipc(&mut self, f: &Fields<'_>) -> (Option<IpcMode>, Option<u32>) {
        let ipc_mode = self.opt_choice(f, "ipc-mode", &TASK_IPC_MODES);
        let shm_size = self
            .opt_integer(f, "shm-size", 0, U32_MAX, "a size in MB ≥ 0")
            .map(to_u32);
        if ipc_mode == Some(IpcMode::ShareParent) && shm_size.is_some() {
            self.err_at(
                f,
                "shm-size",
                None,
                "may not be set with ipc-mode: SHARE_PARENT (the task uses its parent's /dev/shm)",
            );
        }
        (ipc_mode, shm_size)
    }

    /// The task's `configs`: templates read relative to the spec, rendered into the sandbox.
    fn configs(&mut self, f: &Fields<'_>) -> Vec<ConfigFileSpec> {
        let mut out = Vec::new();
        let Some((path, entries)) = self.sub_entries(f, "configs") else {
            return out;
        };
        for (name, k, v) in entries {
            let cpath = join(&path, name);
            let Some(cf) = self.fields(v, &cpath, k.line, CONFIG_KEYS, true) else {
                continue;
            };
            let template = self.req_string(&cf, "template", "a template file relative to the spec");
            let dest = self.req_string(&cf, "dest", "a destination relative to the sandbox");
            let (Some(template), Some(dest)) = (template, dest) else {
                continue;
            };
            let full = if template.starts_with('/') {
                template.clone()
            } else {
                format!("{}{}", self.spec_dir, template.trim_start_matches("./"))
            };
            match self.files.read(&full) {
                Ok(Some(content)) => out.push(ConfigFileSpec {
                    name: name.to_owned(),
                    relative_path: dest,
                    template_content: content,
                }),
                Ok(None) => self.err_at(
                    &cf,
                    "template",
                    Some(&template),
                    format!("was not found (looked for {full})"),
                ),
                Err(e) => self.err_at(
                    &cf,
                    "template",
                    Some(&template),
                    format!("could not be read ({full}): {e}"),
                ),
            }
        }
        out
    }

    /// The task's `transport-encryption`: artifacts with unique names.
    fn transport_encryption(&mut self, f: &Fields<'_>) -> Vec<TransportEncryptionSpec> {
        let mut out: Vec<TransportEncryptionSpec> = Vec::new();
        let expected = "a list of {name, type} entries";
        let Some((path, items)) = self.sub_seq(f, "transport-encryption", expected) else {
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            let Some(tf) = self.fields(item, &ipath, item.line, TLS_KEYS, true) else {
                continue;
            };
            let name = self.req_string(&tf, "name", "an artifact name");
            let kind = self.req_choice(&tf, "type", "TLS or KEYSTORE", &TLS_TYPES);
            if let (Some(name), Some(kind)) = (name, kind) {
                if out.iter().any(|o| o.name == name) {
                    self.err_at(
                        &tf,
                        "name",
                        Some(&name),
                        "is used twice; artifact names must be unique within a task",
                    );
                    continue;
                }
                out.push(TransportEncryptionSpec { name, kind });
            }
        }
        out
    }
}

//! Launch stages and TaskInfo building.
//!
//! Health and readiness checks carry an *empty* command environment: the berth executor runs
//! checks inside the task's own environment (the TaskInfo's command environment, port
//! variables included), so repeating it in each check would only duplicate it.

use std::sync::Arc;

use berth_spec::{Goal, PortSpec, TaskSpec, Visibility};

use super::{LaunchPlan, Pipeline};
use crate::naming;
use crate::outcome::{Outcome, stage};
use crate::placement::offer_attributes_label;
use berth_mesos::{
    CheckInfo, CommandInfo, CommandUri, ContainerInfo, ContainerType, DiscoveryInfo, DiscoveryPort,
    DiscoveryPorts, DockerImage, DurationInfo, Environment, HealthCheck, Image, ImageType,
    KillPolicy, Label, Labels, MesosContainer, Resource, TaskId, TaskInfo, Variable, task_labels,
};

fn visibility(v: Visibility) -> &'static str {
    match v {
        Visibility::Framework => "FRAMEWORK",
        Visibility::Cluster => "CLUSTER",
        Visibility::External => "EXTERNAL",
    }
}

/// Values shared by every TaskInfo built in one evaluation.
pub(super) struct LaunchConsts {
    autoip: String,
    vip: String,
    api_port: String,
    index: String,
    attributes: String,
    references_region: bool,
    references_zone: bool,
}

impl<'a> Pipeline<'a> {
    /// The launch stage of one task: launched, footprint-only, or a stored sibling rewritten.
    pub(super) fn launch_stage(
        &mut self,
        task: &'a TaskSpec,
        set: usize,
        launch: bool,
        stored: Option<&'a TaskInfo>,
    ) {
        let name = naming::task_name(&self.pod.pod_type, self.req.index, &task.name);
        let why = if launch {
            ["Added launch operation for ", &name].concat()
        } else if stored.is_some() {
            [
                "Updated the stored TaskInfo of ",
                &name,
                " with its resource set's new resources (not launched)",
            ]
            .concat()
        } else {
            [
                "Added a footprint-only TaskInfo for ",
                &name,
                " (resources reserved, not launched)",
            ]
            .concat()
        };
        self.stages.push(Outcome::pass(stage::LAUNCH, why));
        self.launches.push(LaunchPlan {
            task,
            set,
            launch,
            stored,
        });
    }

    pub(super) fn launch_consts(&self) -> LaunchConsts {
        let svc = &self.ctx.service.name;
        let rule = self.pod.placement_rule.as_ref();
        LaunchConsts {
            autoip: naming::autoip_domain(svc),
            vip: naming::vip_domain(svc),
            api_port: self.ctx.api_port.to_string(),
            index: self.req.index.to_string(),
            attributes: offer_attributes_label(self.offer),
            references_region: rule.is_some_and(|r| r.references_region()),
            references_zone: rule.is_some_and(|r| r.references_zone()),
        }
    }

    /// Builds the TaskInfo of a task on this offer (without `executor`; the caller sets it).
    pub(super) fn build_task_info(
        &self,
        task: &TaskSpec,
        ports: &[(&PortSpec, u64)],
        resources: Vec<Resource>,
        task_id: TaskId,
        k: &LaunchConsts,
    ) -> TaskInfo {
        let pod = self.pod;
        let ctx = self.ctx;
        let offer = self.offer;
        let name = naming::task_name(&pod.pod_type, self.req.index, &task.name);

        let mut uris: Vec<CommandUri> =
            Vec::with_capacity(pod.uris.len() + task.config_files.len());
        uris.extend(pod.uris.iter().map(|u| CommandUri {
            value: u.clone(),
            executable: false,
            extract: true,
            output_file: None,
        }));
        for cfg in &task.config_files {
            uris.push(CommandUri {
                value: format!(
                    "http://{}:{}/v1/artifacts/template/{}/{}/{}/{}",
                    ctx.api_host,
                    ctx.api_port,
                    ctx.target_config_id,
                    pod.pod_type,
                    task.name,
                    cfg.name
                ),
                executable: false,
                extract: false,
                output_file: Some(format!("config-templates/{}", cfg.name)),
            });
        }

        let mut env = Environment {
            variables: Vec::with_capacity(
                14 + task.config_files.len()
                    + ports.len()
                    + self.req.parameters.len()
                    + task.command_spec.environment.len(),
            ),
        };
        let mut push = |n: &str, v: &str| {
            env.variables.push(Variable {
                name: n.into(),
                value: v.into(),
            });
        };
        push("TASK_NAME", &name);
        push(&name, "true");
        push("POD_INSTANCE_INDEX", &k.index);
        push("FRAMEWORK_NAME", &ctx.service.name);
        push("FRAMEWORK_HOST", &k.autoip);
        push("FRAMEWORK_VIP_HOST", &k.vip);
        push("SCHEDULER_API_HOSTNAME", ctx.api_host);
        push("SCHEDULER_API_PORT", &k.api_port);
        push(
            "PLACEMENT_REFERENCED_REGION",
            if k.references_region { "true" } else { "false" },
        );
        push(
            "PLACEMENT_REFERENCED_ZONE",
            if k.references_zone { "true" } else { "false" },
        );
        if let Some(r) = offer.region() {
            push("REGION", r);
        }
        if let Some(z) = offer.zone() {
            push("ZONE", z);
        }
        for cfg in &task.config_files {
            env.variables.push(Variable {
                name: naming::config_template_env(&cfg.name).into(),
                value: format!("config-templates/{},{}", cfg.name, cfg.relative_path).into(),
            });
        }
        for (p, port) in ports {
            if let Some(key) = &p.env_key {
                env.set(key, port.to_string());
            }
        }
        for (n, v) in self.req.parameters {
            env.set(n, v.clone());
        }
        for (n, v) in &task.command_spec.environment {
            env.set(n, v.clone());
        }

        let command = CommandInfo {
            shell: true,
            value: task.command_spec.value.clone(),
            uris,
            environment: Some(env),
            user: Some(pod.user.clone()),
        };
        let health_check = task.health_check_spec.as_ref().map(|h| {
            Arc::new(HealthCheck {
                kind: "COMMAND".to_owned(),
                command: CommandInfo {
                    shell: true,
                    value: h.command.clone(),
                    ..CommandInfo::default()
                },
                delay_seconds: f64::from(h.delay),
                interval_seconds: f64::from(h.interval),
                timeout_seconds: f64::from(h.timeout),
                consecutive_failures: h.max_consecutive_failures,
                grace_period_seconds: f64::from(h.grace_period),
            })
        });
        let check = task.readiness_check_spec.as_ref().map(|r| {
            Arc::new(CheckInfo::shell(
                &r.command,
                f64::from(r.delay),
                f64::from(r.interval),
                f64::from(r.timeout),
            ))
        });
        let kill_policy = Some(KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: i64::from(task.kill_grace_period).saturating_mul(1_000_000_000),
            }),
        });

        let discovery = (task.discovery_spec.is_some() || !ports.is_empty()).then(|| {
            let spec = task.discovery_spec.as_ref();
            let dname = match spec.and_then(|d| d.prefix.as_deref()) {
                Some(prefix) => format!("{prefix}-{}", self.req.index),
                None => name.clone(),
            };
            let scope = if self.virtual_net {
                "container"
            } else {
                "host"
            };
            let mut vip_n = 0usize;
            let dports: Vec<DiscoveryPort> = ports
                .iter()
                .map(|(p, port)| {
                    let labels = p.vip.as_ref().map(|vip| {
                        let l = Labels {
                            labels: vec![
                                Label {
                                    key: format!("VIP_{vip_n}").into(),
                                    value: format!("{}:{}", vip.prefix, vip.port).into(),
                                },
                                Label {
                                    key: "network-scope".into(),
                                    value: scope.into(),
                                },
                            ],
                        };
                        vip_n += 1;
                        l
                    });
                    DiscoveryPort {
                        number: u32::try_from(*port).unwrap_or(0),
                        name: Some(p.port_name.clone()),
                        protocol: Some("tcp".to_owned()),
                        visibility: Some(visibility(p.visibility).to_owned()),
                        labels,
                    }
                })
                .collect();
            Arc::new(DiscoveryInfo {
                visibility: visibility(spec.map_or(Visibility::Cluster, |d| d.visibility))
                    .to_owned(),
                name: Some(dname),
                ports: (!dports.is_empty()).then_some(DiscoveryPorts { ports: dports }),
            })
        });

        let mut labels = Labels {
            labels: Vec::with_capacity(8 + task.task_labels.len()),
        };
        let mut label = |key: &'static str, value: &str| {
            labels.labels.push(Label {
                key: key.into(),
                value: value.into(),
            });
        };
        label(task_labels::TARGET_CONFIGURATION, ctx.target_config_id);
        label(task_labels::TASK_TYPE, &pod.pod_type);
        label(task_labels::INDEX, &k.index);
        label(task_labels::GOAL_STATE, goal_label(task.goal));
        label(task_labels::OFFER_HOSTNAME, &offer.hostname);
        if !k.attributes.is_empty() {
            label(task_labels::OFFER_ATTRIBUTES, &k.attributes);
        }
        if let Some(z) = offer.zone() {
            label(task_labels::OFFER_ZONE, z);
        }
        if let Some(r) = offer.region() {
            label(task_labels::OFFER_REGION, r);
        }
        for (key, value) in &task.task_labels {
            labels.set(key.clone(), value.clone());
        }

        TaskInfo {
            name,
            task_id,
            agent_id: offer.agent_id.clone(),
            resources,
            executor: None,
            command: Some(Arc::new(command)),
            health_check,
            check,
            kill_policy,
            labels,
            discovery,
            container: self
                .pod
                .image
                .as_ref()
                .map(|name| Arc::new(image_container(name))),
        }
    }
}

/// The container of a task of a pod with `image:` (Mesos containerizer, Docker image).
fn image_container(name: &str) -> ContainerInfo {
    ContainerInfo {
        kind: ContainerType::Mesos,
        mesos: Some(MesosContainer {
            image: Some(Image {
                kind: ImageType::Docker,
                docker: Some(DockerImage {
                    name: name.to_owned(),
                }),
            }),
        }),
        network_infos: Vec::new(),
    }
}

fn goal_label(goal: Goal) -> &'static str {
    goal.as_str()
}

//! What a launch needs on Mesos beyond what the scheduler stored.
//!
//! On the local cluster, berth's own executor renders a task's config templates before
//! starting it. On Mesos the default executor runs the command as given, so a task with config
//! templates (`CONFIG_TEMPLATE_<NAME>=<template>,<dest>` in its environment) also fetches the
//! `berth` executable from the scheduler (`/v1/artifacts/bootstrap`, as `berth-bootstrap`)
//! and runs `./berth-bootstrap bootstrap` before its own command. The templates themselves
//! are fetched by the Mesos fetcher from the scheduler's `/v1/artifacts/template/…`, as the
//! stored TaskInfo says.

use std::sync::Arc;

use berth_mesos::{CommandUri, Operation, TaskInfo};

/// The file name the bootstrap executable is fetched as.
pub const BOOTSTRAP_FILE: &str = "berth-bootstrap";

/// Makes every task of every LAUNCH_GROUP in `operations` that has config templates render
/// them first, fetching the bootstrap executable from `artifacts_url`.
pub fn render_templates_first(operations: &mut [Operation], artifacts_url: &str) {
    for op in operations {
        if let Operation::LaunchGroup { launch_group } = op {
            for task in &mut launch_group.task_group.tasks {
                bootstrap(task, artifacts_url);
            }
        }
    }
}

fn bootstrap(task: &mut TaskInfo, artifacts_url: &str) {
    let Some(command) = task.command.as_mut() else {
        return;
    };
    let has_templates = command.environment.as_ref().is_some_and(|env| {
        env.variables
            .iter()
            .any(|v| v.name.starts_with("CONFIG_TEMPLATE_"))
    });
    if !has_templates {
        return;
    }
    let command = Arc::make_mut(command);
    command.uris.push(CommandUri {
        value: format!(
            "{}/v1/artifacts/bootstrap",
            artifacts_url.trim_end_matches('/')
        ),
        executable: true,
        extract: false,
        output_file: Some(BOOTSTRAP_FILE.to_owned()),
    });
    command.value = format!("./{BOOTSTRAP_FILE} bootstrap && {{\n{}\n}}", command.value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_mesos::{CommandInfo, Environment, Variable};

    fn task(env: &[(&str, &str)]) -> TaskInfo {
        TaskInfo {
            name: "t".into(),
            task_id: berth_mesos::TaskId::new("t"),
            agent_id: berth_mesos::AgentId::new("a"),
            resources: Vec::new(),
            executor: None,
            command: Some(Arc::new(CommandInfo {
                shell: true,
                value: "exec server".into(),
                environment: Some(Environment {
                    variables: env
                        .iter()
                        .map(|(n, v)| Variable {
                            name: (*n).into(),
                            value: (*v).into(),
                        })
                        .collect(),
                }),
                ..CommandInfo::default()
            })),
            health_check: None,
            check: None,
            kill_policy: None,
            labels: berth_mesos::Labels::default(),
            discovery: None,
            container: None,
        }
    }

    #[test]
    fn only_tasks_with_templates_bootstrap() {
        let mut with = task(&[("CONFIG_TEMPLATE_APP", "config-templates/app,app.conf")]);
        bootstrap(&mut with, "http://sched:7070/");
        let c = with.command.unwrap();
        assert_eq!(c.value, "./berth-bootstrap bootstrap && {\nexec server\n}");
        assert_eq!(c.uris[0].value, "http://sched:7070/v1/artifacts/bootstrap");
        assert!(c.uris[0].executable);
        let mut without = task(&[("PORT", "1")]);
        bootstrap(&mut without, "http://sched:7070");
        assert_eq!(without.command.unwrap().value, "exec server");
    }
}

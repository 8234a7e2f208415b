//! `berth update …`: configuration updates of the running service (`POST /v1/update`) and
//! the deploy plan that rolls them out.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Client, Response};
use super::{PlanCmd, out, plan};

/// `berth update …`.
#[derive(Debug, Subcommand)]
pub enum UpdateCmd {
    /// Apply new options (merged into the current ones) or a new svc.yml to the running
    /// service; the deploy plan rolls the change out pod by pod.
    ///
    /// Example: `berth update start --options new-options.json`.
    Start {
        /// A package's options (JSON), merged into the current options.
        #[arg(long, value_name = "FILE", conflicts_with = "spec")]
        options: Option<PathBuf>,
        /// A whole svc.yml, rendered with the service's environment.
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        /// The options replace the current ones instead of being merged into them.
        #[arg(long, requires = "options")]
        replace: bool,
        /// Change nothing: show what the update would do to each pod (keep, restart in place
        /// and why, launch and where, decommission, blocked and why) and in which order.
        #[arg(long)]
        dry_run: bool,
    },
    /// Roll back to an earlier configuration (by default the newest one whose rollout
    /// completed): validated and rolled out as any update; pods still on it stay.
    ///
    /// Example: `berth update rollback`, or `berth update rollback <config-id>` (ids: `berth
    /// config history`).
    Rollback {
        /// The configuration to go back to.
        config_id: Option<String>,
    },
    /// Show the deploy plan (the rollout of the last update).
    ///
    /// Example: `berth update status`.
    #[command(visible_alias = "show")]
    Status,
    /// Pause the rollout (running tasks keep running).
    ///
    /// Example: `berth update pause`.
    #[command(visible_alias = "interrupt")]
    Pause,
    /// Resume a paused rollout.
    ///
    /// Example: `berth update resume`.
    #[command(visible_alias = "continue")]
    Resume,
    /// Mark a step of the rollout complete.
    ///
    /// Example: `berth update force-complete world 'world-1:[server]'`.
    #[command(name = "force-complete", visible_alias = "force")]
    ForceComplete {
        /// Phase name or id.
        phase: String,
        /// Step name or id.
        step: String,
    },
    /// Restart the rollout, a phase or a step.
    ///
    /// Example: `berth update force-restart world`.
    #[command(name = "force-restart", visible_alias = "restart")]
    ForceRestart {
        /// Phase name or id.
        phase: Option<String>,
        /// Step name or id (needs a phase).
        step: Option<String>,
    },
}

const DEPLOY: &str = "deploy";

/// Runs an update command.
pub(super) fn run(client: &Client, cmd: UpdateCmd) -> Result<ExitCode> {
    let deploy = || DEPLOY.to_owned();
    match cmd {
        UpdateCmd::Start {
            options,
            spec,
            replace,
            dry_run,
        } => start(client, options, spec, replace, dry_run),
        UpdateCmd::Rollback { config_id } => {
            let body = config_id.map(|id| json!({ "configId": id }));
            let response = client.post("/v1/update/rollback", body.as_ref())?;
            if client.json {
                out(&response.text());
            }
            if !response.is_success() {
                return Err(refusal(&response));
            }
            if !client.json {
                let v = response.json()?;
                out(&format!(
                    "Rollback started to configuration {}. Please use `berth update status` to \
                     view progress.",
                    v["configId"].as_str().unwrap_or("?")
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        UpdateCmd::Status => plan(client, PlanCmd::Show { plan: deploy() }),
        UpdateCmd::Pause => plan(
            client,
            PlanCmd::Pause {
                plan: deploy(),
                phase: None,
            },
        ),
        UpdateCmd::Resume => plan(
            client,
            PlanCmd::Resume {
                plan: deploy(),
                phase: None,
            },
        ),
        UpdateCmd::ForceComplete { phase, step } => plan(
            client,
            PlanCmd::ForceComplete {
                plan: deploy(),
                phase,
                step,
            },
        ),
        UpdateCmd::ForceRestart { phase, step } => plan(
            client,
            PlanCmd::ForceRestart {
                plan: deploy(),
                phase,
                step,
            },
        ),
    }
}

fn start(
    client: &Client,
    options: Option<PathBuf>,
    spec: Option<PathBuf>,
    replace: bool,
    dry_run: bool,
) -> Result<ExitCode> {
    let body = match (options, spec) {
        (Some(file), None) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read the options file {}", file.display()))?;
            let options: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            json!({"options": options, "replace": replace})
        }
        (None, Some(file)) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read the spec {}", file.display()))?;
            json!({"spec": text})
        }
        _ => bail!(
            "give the change: --options FILE (a package's options) or --spec FILE (a svc.yml)"
        ),
    };
    let path = if dry_run {
        "/v1/update?dryRun=true"
    } else {
        "/v1/update"
    };
    let response = client.post(path, Some(&body))?;
    let value = response.json().ok();
    if dry_run && !client.json && response.status == 200 {
        let v = value.unwrap_or_default();
        out(&preview(&v));
        return Ok(if v["valid"] == true {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if client.json {
        out(&response.text());
        return Ok(if response.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    match (response.status, value) {
        (200, Some(v)) if v["message"] == "Update started" => {
            out(&format!(
                "Update started. Please use `berth update status` to view progress.\n\
                 Target configuration: {}",
                v["configId"].as_str().unwrap_or("?")
            ));
            Ok(ExitCode::SUCCESS)
        }
        (200, Some(v)) => {
            out(v["message"].as_str().unwrap_or("Nothing to update."));
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(refusal(&response)),
    }
}

/// The error of a refused update or rollback: every validation error on a line of its own.
fn refusal(response: &Response) -> anyhow::Error {
    match response.json() {
        Ok(v) if response.status == 400 && v["errors"].is_array() => {
            let what = v["message"].as_str().unwrap_or("The update was refused");
            anyhow::anyhow!("{}:\n{}", what.to_lowercase(), indented(&v["errors"]))
        }
        _ => response.error(),
    }
}

/// The dry run's answer as people read it: the verdict, a table of the pods, the order.
fn preview(v: &Value) -> String {
    let mut text = if v["valid"] == true {
        "Dry run: the update is valid; nothing was changed.\n".to_owned()
    } else {
        format!(
            "Dry run: the update would be refused:\n{}\n",
            indented(&v["errors"])
        )
    };
    let mut rows: Vec<Vec<String>> = vec![
        ["POD", "ACTION", "AGENT", "DETAILS"]
            .iter()
            .map(|h| (*h).to_owned())
            .collect(),
    ];
    for p in v["pods"].as_array().into_iter().flatten() {
        let field = |k: &str| p[k].as_str().unwrap_or("-").to_owned();
        let changes: Vec<&str> = p["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let details = if changes.is_empty() {
            p["reason"].as_str().unwrap_or("").to_owned()
        } else {
            changes.join("; ")
        };
        rows.push(vec![field("pod"), field("action"), field("agent"), details]);
    }
    text.push_str(&super::render::columns(&rows));
    let order: Vec<&str> = v["order"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    text.push_str(&if order.is_empty() {
        "Order: nothing to roll out.".to_owned()
    } else {
        format!("Order: {}.", order.join(", "))
    });
    text
}

/// A JSON list of errors, one indented line each.
fn indented(errors: &Value) -> String {
    errors
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("  {}", e.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

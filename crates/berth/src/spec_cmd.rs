//! `berth spec check|render` and `berth describe --config`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use berth_spec::DirFiles;
use berth_spec::{Env, Goal, Package, validate_update};

use crate::service;

/// `berth spec …`.
#[derive(Debug, clap::Subcommand)]
pub enum SpecCommand {
    /// Renders, parses and validates a svc.yml or a package; prints every error.
    ///
    /// Example: `berth spec check --options opts.json --backend mesos examples/hello-world`.
    Check {
        /// Options for a package (JSON); defaults when absent.
        #[arg(long, value_name = "FILE")]
        options: Option<PathBuf>,
        /// Where the service is to run: `local` (berth's agents) or `mesos` (berth run
        /// --master); what each can run differs (images and virtual networks need Mesos).
        #[arg(long, default_value = "local", value_parser = ["local", "mesos"])]
        backend: String,
        /// Also run the update validators against the target configuration of the service
        /// running at this URL (`http://127.0.0.1:7070`): would it accept this as an update?
        /// (`$BERTH_TOKEN` is sent when set.)
        #[arg(long, value_name = "URL")]
        against: Option<String>,
        /// A svc.yml (rendered with the process environment) or a package directory.
        path: PathBuf,
    },
    /// Prints the rendered YAML of a svc.yml or a package.
    ///
    /// Example: `berth spec render examples/hello-world`.
    Render {
        /// Options for a package (JSON); defaults when absent.
        #[arg(long, value_name = "FILE")]
        options: Option<PathBuf>,
        /// A svc.yml (rendered with the process environment) or a package directory.
        path: PathBuf,
    },
}

/// Runs a spec command.
pub fn main(cmd: SpecCommand) -> ExitCode {
    let result = match cmd {
        SpecCommand::Check {
            options,
            backend,
            against,
            path,
        } => check(&path, options.as_deref(), &backend, against.as_deref()),
        SpecCommand::Render { options, path } => render(&path, options.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The target configuration of the service running at `url`.
fn running_target(url: &str) -> Result<berth_spec::ServiceSpec> {
    let base = url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(anyhow!(
            "--against {url:?}: expected the URL of a running berth, e.g. http://127.0.0.1:7070"
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let token = std::env::var("BERTH_TOKEN").ok().filter(|t| !t.is_empty());
    let (status, body) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let mut request = client.get(format!("{base}/v1/configurations/target"));
        if let Some(token) = token {
            request = request.header("Authorization", format!("token={token}"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| anyhow!("--against {url}: cannot reach the service: {e}"))?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok::<_, anyhow::Error>((status, body))
    })?;
    if !status.is_success() {
        return Err(anyhow!(
            "--against {url}: the target configuration could not be read: {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        anyhow!("--against {url}: the target configuration is not a service spec berth reads: {e}")
    })
}

fn check(path: &Path, options: Option<&Path>, backend: &str, against: Option<&str>) -> Result<()> {
    let (backend, on) = if backend == "mesos" {
        (berth_spec::Backend::Mesos, "on Mesos")
    } else {
        (berth_spec::Backend::Local, "on the local cluster")
    };
    let loaded = service::load(path, options, &Env::default())?;
    for m in &loaded.missing {
        eprintln!(
            "{}: warning: template value {} was not set (line {}); it rendered empty",
            loaded.source, m.name, m.line
        );
    }
    let target = against.map(running_target).transpose()?;
    let mut errors: Vec<String> = validate_update(target.as_ref(), &loaded.spec)
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    if let (Some(url), Some(target)) = (against, &target)
        && target.name != loaded.spec.name
    {
        errors.push(format!(
            "name: the service at {url} is {}; this spec names {}",
            target.name, loaded.spec.name
        ));
    }
    errors.extend(
        service::unsupported(&loaded.spec, backend)
            .into_iter()
            .map(|u| format!("not supported by berth {on}: {u}")),
    );
    if !errors.is_empty() {
        return Err(anyhow!(
            "{}: {} error(s):\n{}",
            loaded.source,
            errors.len(),
            errors
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    let spec = &loaded.spec;
    let pods: Vec<String> = spec
        .pod_specs
        .iter()
        .map(|p| format!("{} ×{}", p.pod_type, p.count))
        .collect();
    let tasks: usize = spec
        .pod_specs
        .iter()
        .map(|p| p.count as usize * p.task_specs.len())
        .sum();
    let running: usize = spec
        .pod_specs
        .iter()
        .map(|p| {
            p.count as usize
                * p.task_specs
                    .iter()
                    .filter(|t| t.goal == Goal::Running)
                    .count()
        })
        .sum();
    let plans: Vec<&str> = if spec.plans.is_empty() {
        vec!["deploy (default)"]
    } else {
        spec.plans.iter().map(|p| p.name.as_str()).collect()
    };
    println!(
        "{}: OK: service {}, pods {}, {} tasks ({} long-running), plans {}",
        loaded.source,
        spec.name,
        pods.join(", "),
        tasks,
        running,
        plans.join(", ")
    );
    Ok(())
}

fn render(path: &Path, options: Option<&Path>) -> Result<()> {
    let loaded = service::load(path, options, &Env::default())?;
    print!("{}", loaded.rendered);
    for m in &loaded.missing {
        eprintln!(
            "{}: warning: template value {} was not set (line {}); it rendered empty",
            loaded.source, m.name, m.line
        );
    }
    Ok(())
}

/// `berth describe --config PACKAGE_DIR`: the options schema with defaults.
pub fn describe(package: &Path) -> ExitCode {
    let result = (|| -> Result<String> {
        if !package.is_dir() {
            return Err(anyhow!("{} is not a package directory", package.display()));
        }
        let name = package
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "package".to_owned());
        let pkg = Package::load(&name, &DirFiles(package.to_path_buf()))
            .map_err(|e| anyhow!("{}: {e}", package.display()))?;
        Ok(serde_json::to_string_pretty(&pkg.describe_config())?)
    })();
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

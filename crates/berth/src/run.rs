//! `berth run`: the scheduler of one service, with the embedded store, the local cluster
//! and the HTTP API.
//!
//! Order matters so that a bad start writes nothing:
//!
//! ```text
//! load + check the spec ─▶ unsupported features? ─▶ bind the API port ─▶ data dir usable?
//!   ─▶ first install: validate before creating anything ─▶ open the store (lock)
//!   ─▶ configuration flow ─▶ local cluster ─▶ API + scheduler loop until SIGINT/SIGTERM
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use berth_cluster::local::{LocalCluster, LocalConfig, default_agents, load_agents_file};
use berth_scheduler::{Core, SchedulerHandle, SchedulerOptions, update_configuration};
use berth_spec::{Env, validate_update};
use berth_state::{EmbeddedPersister, Persister, STATE_FILE, StateStore};

use crate::agents::LocalAgents;
use crate::service;

/// `berth run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Options for a package (JSON); the package's defaults when absent.
    #[arg(long, value_name = "FILE")]
    pub options: Option<PathBuf>,
    /// Where the state, the agents' reservations and volumes, and task sandboxes live.
    #[arg(long, value_name = "DIR", default_value = "berth-data")]
    pub data_dir: PathBuf,
    /// Agents of the local cluster (YAML); three agents in zones a, b, c when absent.
    #[arg(long, value_name = "FILE")]
    pub agents: Option<PathBuf>,
    /// Address of the HTTP API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// A svc.yml (rendered with the process environment) or a package directory.
    pub path: PathBuf,
}

/// Runs the scheduler until interrupted.
pub fn main(args: RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let mut extra = Env::new();
    extra.insert("PORT_API".to_owned(), args.listen.port().to_string());
    let loaded = service::load(&args.path, args.options.as_deref(), &extra)?;
    let spec = loaded.spec.clone();
    for m in &loaded.missing {
        tracing::warn!(
            "{}: template value {} was not set (line {}); it rendered empty",
            loaded.source,
            m.name,
            m.line
        );
    }
    let unsupported = service::unsupported(&spec);
    if !unsupported.is_empty() {
        bail!(
            "{} uses features berth's local agents do not support:\n{}",
            loaded.source,
            unsupported
                .iter()
                .map(|u| format!("  {u}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let mut options = SchedulerOptions::from_env(&loaded.env).map_err(|errors| {
        anyhow!(
            "invalid scheduler settings:\n{}",
            errors
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    options.api_host = args.listen.ip().to_string();
    options.api_port = args.listen.port();
    let agents = match &args.agents {
        Some(file) => load_agents_file(file).map_err(|e| anyhow!("{e}"))?,
        None => default_agents(),
    };

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} for the API", args.listen))?;

    let data_dir = prepare_data_dir(&args.data_dir)?;
    let first_install = !data_dir.join(STATE_FILE).exists();
    if first_install {
        let errors = validate_update(None, &spec);
        if !errors.is_empty() {
            bail!(
                "{} cannot be installed:\n{}",
                loaded.source,
                errors
                    .iter()
                    .map(|e| format!("  {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    let persister: Box<dyn Persister> = Box::new(EmbeddedPersister::open(&data_dir)?);
    let mut store = StateStore::open(persister, &spec.name)?;
    let mut ids = uuids();
    let config = update_configuration(&mut store, spec.clone(), &mut ids)?;
    if !config.errors.is_empty() {
        for e in &config.errors {
            tracing::error!("configuration update refused: {e}");
        }
    }

    let executor = std::env::current_exe().context("cannot find the berth executable")?;
    let mut cluster_config = LocalConfig::new(&data_dir, executor);
    cluster_config.agents = agents;
    let mut cluster = LocalCluster::open(cluster_config).map_err(|e| anyhow!("{e}"))?;
    let control = cluster.control();

    let core = Core::new(
        store,
        &config,
        options,
        Box::new(uuids()),
        berth_scheduler::now_ms(),
    )?;
    let (handle, requests) = SchedulerHandle::channel();
    let router = berth_api::router(handle, Some(Arc::new(LocalAgents(control))));
    println!(
        "berth: {} ({}) — API at http://{}, data in {}",
        spec.name,
        loaded.source,
        args.listen,
        data_dir.display()
    );
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(berth_api::serve(listener, router, async move {
        let _ = api_stopped.await;
    }));
    let result = berth_scheduler::run(core, &mut cluster, requests, shutdown_signal()).await;
    let _ = stop_api.send(());
    let _ = api.await;
    drop(cluster);
    match result {
        Ok(()) => {
            tracing::info!("stopped; tasks keep running and are adopted by the next start");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the data directory and checks it is writable.
fn prepare_data_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve the data directory {}", dir.display()))?;
    let probe = dir.join(".berth-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(dir)
}

/// Random v4 UUIDs for ids.
fn uuids() -> impl FnMut() -> String + Send {
    || uuid::Uuid::new_v4().to_string()
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

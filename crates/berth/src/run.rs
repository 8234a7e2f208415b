//! `berth run`: the scheduler of one service, with its state store (embedded or
//! ZooKeeper), the local cluster and the HTTP API; `berth janitor`: the same scheduler
//! running only the uninstall plan, without a spec or an API.
//!
//! Order matters so that a bad start writes nothing:
//!
//! ```text
//! load + check the spec ─▶ unsupported features? ─▶ bind the API port ─▶ data dir usable?
//!   ─▶ state location valid? ─▶ store reachable, tree ours, leader lock (waits --lock-wait)
//!   ─▶ first install: validate before writing anything ─▶ configuration flow
//!   ─▶ local cluster ─▶ API + scheduler loop until SIGINT/SIGTERM (or the uninstall is done)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use berth_cluster::local::{LocalCluster, LocalConfig, default_agents, load_agents_file};
use berth_scheduler::{
    ConfigOutcome, Core, RunnerOptions, SchedulerHandle, SchedulerOptions, start_configuration,
};
use berth_spec::{Env, ServiceSpec, validate_update};
use berth_state::{Persister, StateStore, root_path};

use crate::agents::LocalAgents;
use crate::service;
use crate::state_access::{self, Location};
use berth_api::AgentControl;

/// `berth run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Options for a package (JSON); the package's defaults when absent.
    #[arg(long, value_name = "FILE")]
    pub options: Option<PathBuf>,
    /// Where the agents' reservations, volumes and task sandboxes live (and the state, unless
    /// --state says otherwise).
    #[arg(long, value_name = "DIR", default_value = "berth-data")]
    pub data_dir: PathBuf,
    /// Where the state lives: zk://HOST:PORT[,HOST:PORT…][/CHROOT] for ZooKeeper, or a
    /// directory for the embedded store (default: the data directory).
    #[arg(long, value_name = "URL|DIR")]
    pub state: Option<String>,
    /// Agents of the local cluster (YAML); three agents in zones a, b, c when absent.
    #[arg(long, value_name = "FILE")]
    pub agents: Option<PathBuf>,
    /// Address of the HTTP API. Anything but a loopback address needs --auth-tokens (or
    /// --insecure-no-auth).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Named API tokens, one per line `NAME ROLE TOKEN` (ROLE read or operate; `#` starts a
    /// comment): every change then needs an operate token, every read a token.
    #[arg(long, value_name = "FILE", env = "BERTH_AUTH_TOKENS_FILE")]
    pub auth_tokens: Option<PathBuf>,
    /// Serve the API over HTTPS with this certificate (PEM; with --tls-key).
    #[arg(
        long,
        value_name = "FILE",
        env = "BERTH_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        env = "BERTH_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// With --auth-tokens: reads need no token (changes still do).
    #[arg(long, requires = "auth_tokens")]
    pub public_read: bool,
    /// Serve a non-loopback --listen address without authentication (anyone who reaches
    /// the port can change or uninstall the service).
    #[arg(long, conflicts_with = "auth_tokens")]
    pub insecure_no_auth: bool,
    /// When another scheduler of this service holds the leader lock, wait this long for it
    /// (a standby) instead of exiting at once.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub lock_wait: u64,
    /// Uninstall the service: kill its tasks, release its reservations and volumes, remove
    /// the framework and the state; exits when done. Irreversible.
    #[arg(long)]
    pub uninstall: bool,
    #[command(flatten)]
    pub mesos: MesosArgs,
    /// A svc.yml (rendered with the process environment) or a package directory.
    pub path: PathBuf,
}

/// `berth run --master …`: run on a Mesos cluster instead of the local one.
#[derive(Debug, Clone, clap::Args)]
pub struct MesosArgs {
    /// The Mesos masters: http://HOST:PORT[,HOST:PORT…] (307s are followed to the leader) or
    /// zk://HOST:PORT[,HOST:PORT…]/PATH (the leader is found in ZooKeeper). Without it, the
    /// service runs on the local cluster.
    #[arg(long, value_name = "URL", env = "BERTH_MESOS_MASTER")]
    pub master: Option<String>,
    /// The role the service reserves with (default: <service>-role).
    #[arg(
        long,
        value_name = "ROLE",
        env = "BERTH_MESOS_ROLE",
        requires = "master"
    )]
    pub role: Option<String>,
    /// The principal (default: the spec's scheduler.principal).
    #[arg(
        long,
        value_name = "PRINCIPAL",
        env = "BERTH_MESOS_PRINCIPAL",
        requires = "master"
    )]
    pub principal: Option<String>,
    /// Certificates (PEM) of the authorities that sign `https://` masters' certificates,
    /// trusted besides the system's.
    #[arg(
        long,
        value_name = "FILE",
        env = "BERTH_MESOS_CA_FILE",
        requires = "master"
    )]
    pub master_ca_file: Option<PathBuf>,
    /// A file holding the principal's secret, sent to the master with HTTP Basic.
    #[arg(
        long,
        value_name = "FILE",
        env = "BERTH_MESOS_SECRET_FILE",
        requires = "master"
    )]
    pub secret_file: Option<PathBuf>,
    /// Seconds Mesos keeps the tasks while the scheduler is away (default: two weeks).
    #[arg(
        long,
        value_name = "SECS",
        env = "BERTH_MESOS_FAILOVER_TIMEOUT",
        requires = "master"
    )]
    pub failover_timeout: Option<f64>,
    /// The scheduler API address agents and people can reach (config templates, web UI).
    #[arg(
        long,
        value_name = "URL",
        env = "BERTH_ADVERTISE_URL",
        requires = "master"
    )]
    pub advertise_url: Option<String>,
    /// The link the Mesos web UI shows for this framework (default: the advertised URL).
    #[arg(long, value_name = "URL", env = "BERTH_WEBUI_URL", requires = "master")]
    pub webui_url: Option<String>,
    /// How maintenance windows (inverse offers) are answered: `decline` keeps the tasks next
    /// to their data (replace pods to move them); `accept` lets the agent go, its pods then
    /// recovered as for any lost agent.
    #[arg(
        long,
        value_name = "POLICY",
        env = "BERTH_MESOS_MAINTENANCE",
        default_value = "decline",
        value_parser = ["decline", "accept"],
        requires = "master"
    )]
    pub maintenance: String,
}

/// `berth janitor` arguments.
#[derive(Debug, clap::Args)]
pub struct JanitorArgs {
    /// The service name.
    #[arg(long)]
    pub name: String,
    /// The data directory of the local cluster (and of the embedded store).
    #[arg(long, value_name = "DIR", default_value = "berth-data")]
    pub data_dir: PathBuf,
    /// Where the state lives (default: the embedded store in the data directory).
    #[arg(long, value_name = "URL|DIR")]
    pub state: Option<String>,
    /// Agents of the local cluster (YAML), as given to `berth run`.
    #[arg(long, value_name = "FILE")]
    pub agents: Option<PathBuf>,
    /// Wait this long for the leader lock.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub lock_wait: u64,
}

/// Runs the scheduler until interrupted.
pub fn main(args: RunArgs) -> ExitCode {
    block_on(run(args))
}

/// Runs `berth janitor`.
pub fn janitor_main(args: JanitorArgs) -> ExitCode {
    block_on(janitor(args))
}

fn block_on(future: impl std::future::Future<Output = Result<()>>) -> ExitCode {
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
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The package options the target was rendered from: those of the last update through the
/// API when the command line is the one it was applied over, else the options file's (`{}`
/// without one); `None` for a plain svc.yml.
fn base_options(
    store: &StateStore<Arc<dyn Persister>>,
    args: &RunArgs,
) -> Result<Option<serde_json::Value>> {
    if !args.path.is_dir() {
        return Ok(None);
    }
    if let Some(stored) = store.property(berth_scheduler::TARGET_OPTIONS) {
        return Ok(serde_json::from_slice(stored).ok());
    }
    match &args.options {
        None => Ok(Some(serde_json::json!({}))),
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the options file {}", file.display()))?;
            Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("the options file {} is not JSON", file.display())
            })?))
        }
    }
}

/// The `--state` location, or the embedded store in the data directory.
fn location(state: Option<&str>, data_dir: &Path) -> Result<Location> {
    state.map_or_else(
        || Ok(state_access::default_location(data_dir)),
        Location::parse,
    )
}

/// Opens the store off the async threads (connecting and waiting for the lock block).
async fn open_store(
    location: Location,
    service: String,
    wait: u64,
    listen: Option<String>,
) -> Result<Arc<dyn Persister>> {
    tokio::task::spawn_blocking(move || {
        state_access::open_for_scheduler(&location, &service, Duration::from_secs(wait), listen)
            .map(Arc::from)
    })
    .await
    .context("opening the state store was interrupted")?
}

/// Runs the scheduler loop on its own thread until it ends or the process is asked to stop
/// (SIGINT, SIGTERM); gives the cluster back with the loop's result.
async fn run_scheduler<C: berth_cluster::Cluster + 'static>(
    core: Core<Arc<dyn Persister>>,
    cluster: C,
    requests: tokio::sync::mpsc::Receiver<berth_scheduler::Envelope>,
    options: RunnerOptions,
) -> Result<(C, Result<(), berth_scheduler::SchedulerError>)> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut finished = berth_scheduler::spawn(core, cluster, requests, stopped, options)
        .context("cannot start the scheduler thread")?;
    let ended = tokio::select! {
        ended = &mut finished => ended,
        () = shutdown_signal() => {
            let _ = stop.send(());
            finished.await
        }
    };
    ended.map_err(|_| anyhow!("the scheduler thread ended abnormally (see the log above)"))
}

/// The API's guard: the tokens of --auth-tokens, or none — refused on a non-loopback
/// address unless --insecure-no-auth.
fn api_guard(args: &RunArgs) -> Result<berth_api::Guard> {
    let tokens = match &args.auth_tokens {
        Some(file) => berth_api::load_tokens(file).map_err(|e| anyhow!("--auth-tokens {e}"))?,
        None => Vec::new(),
    };
    if tokens.is_empty() && !args.listen.ip().is_loopback() && !args.insecure_no_auth {
        bail!(
            "--listen {}: the API would be open to anyone who reaches that address (they could \
             change or uninstall the service); give --auth-tokens FILE, listen on 127.0.0.1, \
             or accept the risk with --insecure-no-auth",
            args.listen
        );
    }
    if !tokens.is_empty() {
        tracing::info!(
            "API authentication on: {} token(s){}",
            tokens.len(),
            if args.public_read {
                "; reads are public"
            } else {
                ""
            }
        );
    }
    Ok(berth_api::Guard {
        tokens,
        public_read: args.public_read,
        audit: Some(args.data_dir.join("audit.log")),
    })
}

async fn run(args: RunArgs) -> Result<()> {
    let guard = api_guard(&args)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(berth_api::load_tls(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut extra = Env::new();
    extra.insert("PORT_API".to_owned(), args.listen.port().to_string());
    let loaded = service::load(&args.path, args.options.as_deref(), &extra)?;
    let mut spec = loaded.spec.clone();
    let mesos = crate::mesos::settings(&args.mesos, &mut spec, args.listen)?;
    for m in &loaded.missing {
        tracing::warn!(
            "{}: template value {} was not set (line {}); it rendered empty",
            loaded.source,
            m.name,
            m.line
        );
    }
    let backend = if mesos.is_some() {
        berth_spec::Backend::Mesos
    } else {
        berth_spec::Backend::Local
    };
    let unsupported = service::unsupported(&spec, backend);
    if !unsupported.is_empty() {
        bail!(
            "{} uses features berth does not support {}:\n{}",
            loaded.source,
            if mesos.is_some() {
                "on Mesos"
            } else {
                "on its local agents"
            },
            unsupported
                .iter()
                .map(|u| format!("  {u}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // A package's rendered environment wins; what it leaves unset may come from the process
    // environment (tuning a package's scheduler without editing the package).
    let mut settings = service::process_env();
    settings.extend(loaded.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut options = SchedulerOptions::from_env(&settings).map_err(|errors| {
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
    if let Some(secs) = args.mesos.failover_timeout {
        options.failover_timeout_secs = secs;
    }
    if let Some((host, port)) = mesos.as_ref().and_then(|m| m.advertised.clone()) {
        options.api_host = host;
        options.api_port = port;
    }
    let agents = match &args.agents {
        Some(file) => load_agents_file(file).map_err(|e| anyhow!("{e}"))?,
        None => default_agents(),
    };
    let location = location(args.state.as_deref(), &args.data_dir)?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} for the API", args.listen))?;

    let data_dir = prepare_data_dir(&args.data_dir)?;
    crate::logfile::start(&data_dir).map_err(|e| anyhow!("{e}"))?;
    let location = match location {
        Location::Embedded(dir) if dir == args.data_dir => Location::Embedded(data_dir.clone()),
        other => other,
    };
    // A first install of an invalid spec is refused before anything is written.
    let check_install = || -> Result<()> {
        let errors = validate_update(None, &spec);
        if errors.is_empty() {
            return Ok(());
        }
        bail!(
            "{} cannot be installed:\n{}",
            loaded.source,
            errors
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    };
    if !args.uninstall && state_access::is_fresh(&location, &spec.name)? == Some(true) {
        check_install()?;
    }
    let persister = open_store(
        location.clone(),
        spec.name.clone(),
        args.lock_wait,
        Some(args.listen.to_string()),
    )
    .await?;
    let root = root_path(&spec.name)?;
    let first_install = persister
        .get(&format!("{root}/{}", berth_state::layout::CONFIG_TARGET))?
        .is_none();
    if first_install && !args.uninstall {
        check_install()?;
    }
    let mut store = StateStore::open(persister, &spec.name)?;
    if store.is_uninstalling()? && !args.uninstall {
        bail!(
            "service {} is being uninstalled (its state in {} says so); finish the uninstall \
             with `berth run --uninstall …` (or `berth janitor --name {}`), then install it again",
            spec.name,
            location.describe(),
            spec.name
        );
    }
    let config = if args.uninstall {
        match stored_config(&store)? {
            Some(config) => config,
            None => return nothing_to_uninstall(store, &location),
        }
    } else {
        let mut ids = uuids();
        let config =
            start_configuration(&mut store, spec.clone(), &mut ids, options.config_history)?;
        for e in &config.errors {
            tracing::error!("configuration update refused: {e}");
        }
        config
    };

    // The cluster, and what serves task sandboxes: the local agents, or the Mesos agents.
    type Sandboxes = (
        Option<Arc<dyn AgentControl>>,
        Option<berth_cluster::mesos::agents::AgentApi>,
    );
    let (cluster, (agent_control, agent_api)): (Box<dyn berth_cluster::Cluster>, Sandboxes) =
        match mesos {
            Some(settings) => {
                let cluster = berth_cluster::mesos::MesosCluster::new(settings.config)
                    .map_err(|e| anyhow!("{e}"))?;
                let agent_api = cluster.agent_api();
                (Box::new(cluster), (None, Some(agent_api)))
            }
            None => {
                let executor =
                    std::env::current_exe().context("cannot find the berth executable")?;
                let mut cluster_config = LocalConfig::new(&data_dir, executor);
                cluster_config.agents = agents;
                housekeeping(&mut cluster_config)?;
                let cluster = LocalCluster::open(cluster_config).map_err(|e| anyhow!("{e}"))?;
                let control: Arc<dyn AgentControl> = Arc::new(LocalAgents(cluster.control()));
                (Box::new(cluster), (Some(control), None))
            }
        };

    let base_options = base_options(&store, &args)?;
    let mut core = Core::new(
        store,
        &config,
        options,
        Box::new(uuids()),
        berth_scheduler::now_ms(),
    )?;
    if args.uninstall {
        let _ = core.start_uninstall(berth_scheduler::now_ms())?;
        core.flush()?;
    }
    let (handle, requests) = SchedulerHandle::channel();
    let renderer = service::renderer(&args.path, loaded.env.clone(), extra.clone(), backend);
    let loop_metrics = berth_scheduler::metrics::LoopMetrics::default();
    let mut router = berth_api::router(handle.clone(), agent_control.clone(), agent_api);
    let handle_for_metrics = handle.clone();
    router = berth_api::with_updates(router, handle, renderer, base_options);
    router = berth_api::with_log(router, data_dir.join(crate::logfile::LOG_FILE));
    if args.mesos.master.is_some() {
        let executable = std::env::current_exe().context("cannot find the berth executable")?;
        router = berth_api::with_bootstrap(router, executable);
    }
    router = berth_api::with_metrics(
        router,
        handle_for_metrics,
        loop_metrics.clone(),
        agent_control,
    );
    // Last: the guard sees every route.
    router = berth_api::with_guard(router, guard);
    println!(
        "berth: {} ({}) — API at {scheme}://{}, data in {}, state in {}",
        spec.name,
        loaded.source,
        args.listen,
        data_dir.display(),
        location.describe()
    );
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = api_stopped.await;
    };
    let api = match tls {
        Some(tls) => tokio::spawn(berth_api::serve_tls(listener, router, tls, stopped)),
        None => tokio::spawn(berth_api::serve(listener, router, stopped)),
    };
    let ran = run_scheduler(
        core,
        cluster,
        requests,
        RunnerOptions {
            exit_after_uninstall: args.uninstall,
            metrics: Some(loop_metrics),
            ..RunnerOptions::default()
        },
    )
    .await;
    let _ = stop_api.send(());
    let _ = api.await;
    let (cluster, result) = ran?;
    drop(cluster);
    match result {
        Ok(()) if args.uninstall => {
            println!("berth: {} uninstalled", spec.name);
            Ok(())
        }
        Ok(()) => {
            tracing::info!("stopped; tasks keep running and are adopted by the next start");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The stored target configuration, to uninstall with (`None`: nothing was ever installed).
fn stored_config<P: Persister>(store: &StateStore<P>) -> Result<Option<ConfigOutcome>> {
    let (Some(id), Some(target)) = (store.config_target(), store.target_config()?) else {
        return Ok(None);
    };
    Ok(Some(ConfigOutcome {
        target_id: id,
        target: target.clone(),
        errors: Vec::new(),
        diff: None,
        changed: false,
    }))
}

/// Uninstalling a service that never registered: only its (partial) state is removed.
fn nothing_to_uninstall<P: Persister>(mut store: StateStore<P>, location: &Location) -> Result<()> {
    if store.framework_id().is_some() {
        bail!(
            "the state in {} has a framework id but no configuration; remove what is left with \
             `berth janitor --name {}`",
            location.describe(),
            store.service_name()
        );
    }
    store.delete_all()?;
    println!(
        "berth: {} never registered with the cluster; its state in {} was removed",
        store.service_name(),
        location.describe()
    );
    Ok(())
}

/// `berth janitor`: uninstall with no spec and no API — from the stored configuration if
/// there is one, else with the service's default role and principal (reservations of the
/// role left behind are released all the same).
async fn janitor(args: JanitorArgs) -> Result<()> {
    let agents = match &args.agents {
        Some(file) => load_agents_file(file).map_err(|e| anyhow!("{e}"))?,
        None => default_agents(),
    };
    let location = location(args.state.as_deref(), &args.data_dir)?;
    if !args.data_dir.is_dir() {
        bail!(
            "the data directory {} does not exist; give the --data-dir the service ran with",
            args.data_dir.display()
        );
    }
    let data_dir = prepare_data_dir(&args.data_dir)?;
    let location = match location {
        Location::Embedded(dir) if dir == args.data_dir => Location::Embedded(data_dir.clone()),
        other => other,
    };
    let persister = open_store(location.clone(), args.name.clone(), args.lock_wait, None).await?;
    let store = StateStore::open(persister, &args.name)?;
    let config = match stored_config(&store)? {
        Some(c) => c,
        None => ConfigOutcome {
            target_id: uuid::Uuid::nil(),
            target: skeleton_spec(&args.name),
            errors: Vec::new(),
            diff: None,
            changed: false,
        },
    };
    let executor = std::env::current_exe().context("cannot find the berth executable")?;
    let mut cluster_config = LocalConfig::new(&data_dir, executor);
    cluster_config.agents = agents;
    let cluster = LocalCluster::open(cluster_config).map_err(|e| anyhow!("{e}"))?;
    let mut core = Core::new(
        store,
        &config,
        SchedulerOptions::default(),
        Box::new(uuids()),
        berth_scheduler::now_ms(),
    )?;
    let _ = core.start_uninstall(berth_scheduler::now_ms())?;
    core.flush()?;
    println!(
        "berth janitor: removing {} (state in {}, cluster in {})",
        args.name,
        location.describe(),
        data_dir.display()
    );
    // No API: the handle stays alive so the request channel stays open and idle.
    let (_handle, requests) = SchedulerHandle::channel();
    let (cluster, result) = run_scheduler(
        core,
        cluster,
        requests,
        RunnerOptions {
            exit_after_uninstall: true,
            ..RunnerOptions::default()
        },
    )
    .await?;
    result?;
    drop(cluster);
    println!(
        "berth janitor: {} removed: tasks killed, reservations and volumes released, framework and state gone",
        args.name
    );
    Ok(())
}

/// A spec with no pods: enough to uninstall a service whose configuration is gone.
fn skeleton_spec(name: &str) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        role: berth_spec::service_role(name),
        principal: format!("{name}-principal"),
        web_url: None,
        zookeeper: "master.mesos:2181".to_owned(),
        user: "root".to_owned(),
        goal: berth_spec::Goal::Running,
        region: None,
        replacement_failure_policy: None,
        pod_specs: Vec::new(),
        plans: Vec::new(),
    }
}

/// Creates the data directory and checks it is writable.
/// The local cluster's housekeeping settings from the environment:
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `BERTH_TASK_LOG_PAGE_KB` | task `stdout`/`stderr` are paged past this size | 2048 |
/// | `BERTH_TASK_LOG_PAGES` | earlier pages kept of each | 5 |
/// | `BERTH_SANDBOXES_PER_TASK` | finished sandboxes kept per task name | 5 |
/// | `BERTH_SANDBOX_BUDGET_MB` | most disk all finished sandboxes may take | 1024 |
/// | `BERTH_SANDBOX_GC_SECS` | time between collections | 60 |
fn housekeeping(config: &mut LocalConfig) -> Result<()> {
    let number = |name: &str| -> Result<Option<u64>> {
        match std::env::var(name) {
            Ok(v) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| anyhow!("{name}: '{v}' is not a whole number")),
            Err(_) => Ok(None),
        }
    };
    if let Some(kb) = number("BERTH_TASK_LOG_PAGE_KB")? {
        config.task_log_page_bytes = kb.max(1).saturating_mul(1024);
    }
    if let Some(pages) = number("BERTH_TASK_LOG_PAGES")? {
        config.task_log_pages = u32::try_from(pages).unwrap_or(u32::MAX);
    }
    if let Some(keep) = number("BERTH_SANDBOXES_PER_TASK")? {
        config.sandboxes_kept_per_task = usize::try_from(keep).unwrap_or(usize::MAX);
    }
    if let Some(mb) = number("BERTH_SANDBOX_BUDGET_MB")? {
        config.sandbox_disk_budget = mb.saturating_mul(1 << 20);
    }
    if let Some(secs) = number("BERTH_SANDBOX_GC_SECS")? {
        config.sandbox_gc_interval = std::time::Duration::from_secs(secs.max(1));
    }
    Ok(())
}

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

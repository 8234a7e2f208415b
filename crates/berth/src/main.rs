//! The `berth` command: run a service, operate it, check specs.
//!
//! ```text
//! berth run [--options FILE] [--data-dir DIR] [--agents FILE] [--listen ADDR] PATH
//! berth spec check|render [--options FILE] PATH      berth describe --config PACKAGE_DIR
//! berth plan …  berth pods …  berth state …  berth config …  berth agents …  (over the API)
//! berth task [log|ls|cat|exec] …  berth log  berth debug offers …            (over the API)
//! berth executor --dir DIR                            (started by the local cluster)
//! ```

mod agents;
mod bench;
mod logfile;
mod mesos;
mod ops;
mod run;
mod service;
mod spec_cmd;
mod state_access;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the scheduler's hot paths (offer evaluation, TaskInfo building) allocate many
/// small strings; with glibc's allocator half of their time went to malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mimalloc.h` (the same in its versions 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory the allocator got back is returned to the system after 10 ms (mimalloc 2's
/// default; mimalloc 3 waits 1 s, and in practice a scheduler that had just loaded and
/// reconciled 50,000 tasks kept ~60 MB it no longer used). `MIMALLOC_PURGE_DELAY` still
/// overrides it.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options; no pointers involved.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
    }
}

/// berth: a scheduler for stateful services.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: ops::Conn,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the scheduler of a service (a svc.yml or a package) on the local cluster, or on a
    /// Mesos cluster with --master.
    ///
    /// Example: `berth run examples/hello-world` (local cluster), `berth run --options opts.json --state zk://127.0.0.1:2181 examples/hello-world`.
    Run(Box<run::RunArgs>),
    /// Removes what a service left behind (tasks, reservations, volumes, framework, state)
    /// with no scheduler running: the uninstall plan, headless.
    ///
    /// Example: `berth janitor --name hello-world --data-dir berth-data`.
    Janitor(run::JanitorArgs),
    /// Renders the config templates named by the environment's CONFIG_TEMPLATE_<NAME>=
    /// <template>,<destination> entries in the sandbox ($MESOS_SANDBOX, else the current
    /// directory): what a task on Mesos runs first (fetched from the scheduler).
    #[command(hide = true)]
    Bootstrap,
    /// Checks or renders a service spec without running it.
    ///
    /// Example: `berth spec check examples/hello-world`.
    #[command(subcommand)]
    Spec(spec_cmd::SpecCommand),
    /// Describes a package.
    ///
    /// Example: `berth describe --config examples/hello-world`.
    Describe {
        /// Print the package's install options with their defaults (JSON Schema).
        #[arg(long, required = true)]
        config: bool,
        /// The package directory.
        package: PathBuf,
    },
    /// Benchmarks of the scheduler on the simulated cluster.
    ///
    /// Example: `berth bench deploy --pods 5000 --agents 2000`.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Operator commands that talk to a running scheduler over its HTTP API.
    #[command(flatten)]
    Ops(ops::OpsCommand),
}

/// Logs to stderr and, once [`logfile::start`]ed, to the data directory's `berth.log`.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(logfile::FileLog);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .try_init();
}

fn main() -> ExitCode {
    tune_allocator();
    // The executor is started by the local cluster with its own argument list.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("executor") {
        return berth_cluster::local::executor::run(&args[2..]);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Run(a) => {
            init_logging();
            run::main(*a)
        }
        Command::Janitor(a) => {
            init_logging();
            run::janitor_main(a)
        }
        Command::Bootstrap => bootstrap(),
        Command::Spec(cmd) => spec_cmd::main(cmd),
        Command::Describe { package, .. } => spec_cmd::describe(&package),
        Command::Bench(cmd) => {
            // Benchmarks are quiet unless asked (RUST_LOG) so logging does not skew them.
            if std::env::var_os("RUST_LOG").is_some() {
                init_logging();
            }
            bench::main(cmd, cli.global.json)
        }
        Command::Ops(cmd) => ops::main(cmd, &cli.global),
    }
}

/// `berth bootstrap`: renders the task's config templates, then exits (0 when all rendered).
fn bootstrap() -> ExitCode {
    let env: indexmap::IndexMap<String, String> = std::env::vars().collect();
    let sandbox = env
        .get("MESOS_SANDBOX")
        .map_or_else(|| std::path::PathBuf::from("."), std::path::PathBuf::from);
    let rendered =
        berth_cluster::local::template::render_config_templates(&env, &sandbox, &mut |line| {
            eprintln!("berth bootstrap: {line}")
        });
    match rendered {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth bootstrap: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    /// Every command a user can see has help with an example.
    #[test]
    fn every_command_has_help_with_an_example() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                if sub.is_hide_set() || sub.get_name() == "help" {
                    continue;
                }
                let name = format!("{path} {}", sub.get_name());
                let about = sub.get_long_about().or(sub.get_about());
                if !about.is_some_and(|a| a.to_string().contains("Example")) {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "berth", &mut missing);
        assert!(
            missing.is_empty(),
            "no example in the help of: {missing:#?}"
        );
    }

    /// `--url`, `--token`, `-v` and `--json` go anywhere on the command line.
    #[test]
    fn global_flags_are_accepted_anywhere() {
        for args in [
            &["berth", "--url", "http://h:1", "pods", "status"][..],
            &["berth", "pods", "--url", "http://h:1", "status"],
            &["berth", "pods", "status", "--url", "http://h:1"],
            &[
                "berth",
                "-v",
                "--json",
                "--token",
                "t",
                "--url",
                "http://h:1",
                "plan",
                "show",
            ],
            &[
                "berth",
                "plan",
                "show",
                "deploy",
                "--json",
                "-v",
                "--url",
                "http://h:1",
            ],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.global.url, "http://h:1", "{args:?}");
            assert!(matches!(cli.command, Command::Ops(_)), "{args:?}");
        }
        let cli =
            Cli::try_parse_from(["berth", "--json", "task", "hello", "--token", "secret"]).unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.token.as_deref(), Some("secret"));
    }
}

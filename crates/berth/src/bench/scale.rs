//! `berth bench scale`: the scale scenarios, each run several times in a process of its own
//! (so that every resident-memory figure is its own), summarised as one table: median, spread
//! and the goal of each.
//!
//! ```text
//!  scale ──▶ private ZooKeeper (unless --zk) ──▶ for each scenario, N times:
//!              berth bench <scenario> --json   (child process)
//!           ──▶ figure of each run ──▶ median, min–max, goal met?
//! ```

use std::process::Command;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};

/// The restart time a `bench restart` child reports, in seconds.
fn restart_seconds(args: &[&str]) -> Result<f64> {
    Ok(number(&child(args)?, "restart_to_first_offer_used_ms")? / 1000.0)
}

/// One row of the table.
struct Row {
    item: &'static str,
    what: String,
    goal: &'static str,
    /// Lower is better (else higher is).
    lower: bool,
    limit: f64,
    unit: &'static str,
    figures: Vec<f64>,
}

impl Row {
    fn median(&self) -> f64 {
        let mut v = self.figures.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }

    fn met(&self) -> bool {
        let m = self.median();
        if self.lower {
            m < self.limit
        } else {
            m >= self.limit
        }
    }

    fn line(&self) -> String {
        let (lo, hi) = self
            .figures
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(*x), hi.max(*x))
            });
        format!(
            "| {} | {} | {} | {} {} | {}–{} | {} | {} |",
            self.item,
            self.what,
            self.goal,
            fmt(self.median()),
            self.unit,
            fmt(lo),
            fmt(hi),
            self.figures.len(),
            if self.goal.starts_with('(') {
                ""
            } else if self.met() {
                "met"
            } else {
                "not met"
            }
        )
    }
}

fn fmt(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Runs `berth bench <args> --json` in a child process.
fn child(args: &[&str]) -> Result<Value> {
    let exe = std::env::current_exe().context("cannot find the berth executable")?;
    let out = Command::new(exe)
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .context("cannot run a bench process")?;
    if !out.status.success() {
        return Err(anyhow!(
            "bench {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("bench {} printed no JSON", args.join(" ")))
}

fn number(v: &Value, key: &str) -> Result<f64> {
    v[key]
        .as_f64()
        .ok_or_else(|| anyhow!("the bench result has no number '{key}': {v}"))
}

/// ZooKeeper for the scenarios that use it: the one given, or a private one started now and
/// stopped when the handle returned is dropped (its JVM is not left running beside the
/// scenarios that do not use it).
fn zookeeper(given: Option<&str>) -> Result<(Option<berth_zk_server::ZkServer>, String)> {
    if let Some(url) = given {
        return Ok((None, url.to_owned()));
    }
    let server = berth_zk_server::ZkServer::start().map_err(|e| {
        anyhow!(
            "cannot start a private ZooKeeper ({e}); pass --zk zk://HOST:PORT to use a running one"
        )
    })?;
    let url = format!("zk://{}", server.connect_string());
    Ok((Some(server), url))
}

/// Deploys a private ZooKeeper takes before its JIT has compiled what a deploy runs.
const ZK_WARM_UP_DEPLOYS: usize = 6;

/// Runs every scale scenario `runs` times (the ones that take minutes `heavy_runs` times)
/// and prints the table.
pub(super) fn scale(runs: u32, heavy_runs: u32, zk: Option<String>) -> Result<Value> {
    let runs = runs.max(1);
    let heavy_runs = heavy_runs.max(1);
    let mut rows = Vec::new();
    let say = |row: &Row| eprintln!("{}", row.line());

    // 1. ZooKeeper-backed deploy, and the embedded one in the same run.
    let mut zk_rate = Row {
        item: "1",
        what: "deploy 5,000 pods / 2,000 agents, ZooKeeper state".to_owned(),
        goal: "≥ 5,000 launches/s",
        lower: false,
        limit: 5_000.0,
        unit: "launches/s",
        figures: Vec::new(),
    };
    let mut ratio = Row {
        item: "1",
        what: "… as a share of the embedded store's rate (pairs run one after the other)"
            .to_owned(),
        goal: "≥ 70 %",
        lower: false,
        limit: 70.0,
        unit: "%",
        figures: Vec::new(),
    };
    let mut embedded = Row {
        item: "1",
        what: "deploy 5,000 pods / 2,000 agents, embedded store".to_owned(),
        goal: "(reference)",
        lower: false,
        limit: 0.0,
        unit: "launches/s",
        figures: Vec::new(),
    };
    let (server, zk_url) = zookeeper(zk.as_deref())?;
    // Deploys first that are not recorded: a ZooKeeper just started runs its first deploys on
    // a cold JVM — each of the first six about 10 % faster than the one before — while an
    // ensemble in production has run for days; and one embedded deploy, so the pairs stay
    // alike.
    for _ in 0..ZK_WARM_UP_DEPLOYS {
        child(&["deploy", "--state", &zk_url])?;
    }
    child(&["deploy"])?;
    for _ in 0..runs {
        let z = number(
            &child(&["deploy", "--state", &zk_url])?,
            "launches_per_second",
        )?;
        let e = number(&child(&["deploy"])?, "launches_per_second")?;
        zk_rate.figures.push(z);
        embedded.figures.push(e);
        ratio.figures.push(z / e * 100.0);
    }
    drop(server);
    say(&zk_rate);
    say(&embedded);
    say(&ratio);
    rows.extend([zk_rate, embedded, ratio]);

    // 2. Memory per task after a 50,000-pod deploy (the simulated cluster's own records of
    //    the tasks included), and 4. its offer cycles.
    let mut memory = Row {
        item: "2",
        what: "resident memory per task after deploying 50,000 pods / 20,000 agents (the simulated cluster included)".to_owned(),
        goal: "≤ 6 KB",
        lower: true,
        limit: 6.0,
        unit: "KB",
        figures: Vec::new(),
    };
    let mut big_rate = Row {
        item: "2",
        what: "… that deploy's rate".to_owned(),
        goal: "(reference)",
        lower: false,
        limit: 0.0,
        unit: "launches/s",
        figures: Vec::new(),
    };
    for _ in 0..heavy_runs {
        let v = child(&["deploy", "--pods", "50000", "--agents", "20000"])?;
        memory.figures.push(number(&v, "memory_per_task_kb")?);
        big_rate.figures.push(number(&v, "launches_per_second")?);
    }
    say(&memory);
    say(&big_rate);
    // … and of a scheduler restarted over such a store: what it allocates to load the tasks,
    // reconcile them and take the first offers (the simulated cluster's records exist
    // before, and what the filling scheduler freed is handed back first).
    let mut restart_memory = Row {
        item: "2",
        what: "resident memory per task of a scheduler restarted over a 50,000-task store (load, reconcile, first offers)".to_owned(),
        goal: "≤ 6 KB",
        lower: true,
        limit: 6.0,
        unit: "KB",
        figures: Vec::new(),
    };
    for _ in 0..heavy_runs {
        let v = child(&["restart", "--tasks", "50000"])?;
        restart_memory
            .figures
            .push(number(&v, "memory_per_task_kb")?);
    }
    say(&restart_memory);
    rows.extend([memory, big_rate, restart_memory]);

    // 3. Restart over 100,000 tasks, from the embedded store and from ZooKeeper.
    let mut restart = Row {
        item: "3",
        what: "restart with 100,000 tasks (embedded): load, reconcile, first offer used (scheduler time)".to_owned(),
        goal: "< 3 s",
        lower: true,
        limit: 3.0,
        unit: "s",
        figures: Vec::new(),
    };
    let mut zk_restart = Row {
        item: "3",
        what: "… the same from ZooKeeper".to_owned(),
        goal: "< 10 s",
        lower: true,
        limit: 10.0,
        unit: "s",
        figures: Vec::new(),
    };
    for _ in 0..heavy_runs {
        restart
            .figures
            .push(restart_seconds(&["restart", "--tasks", "100000"])?);
    }
    say(&restart);
    rows.push(restart);
    // The ZooKeeper restarts come last (below): half a gigabyte through ZooKeeper leaves its
    // JVM collecting and writing snapshots for a while, on the cores the other scenarios use.
    let zk_restart_at = rows.len();

    // 4. The loop at 50,000 pods and 20,000 agents with API requests.
    let mut stretch = Row {
        item: "4",
        what: "longest stretch of work on the loop, deploying 50,000 pods / 20,000 agents under API requests".to_owned(),
        goal: "< 100 ms",
        lower: true,
        limit: 100.0,
        unit: "ms",
        figures: Vec::new(),
    };
    let mut api = Row {
        item: "4",
        what:
            "… API p99 meanwhile (plan, health, pod status, plan list, framework id; every 10 ms)"
                .to_owned(),
        goal: "< 50 ms",
        lower: true,
        limit: 50.0,
        unit: "ms",
        figures: Vec::new(),
    };
    for _ in 0..heavy_runs {
        let v = child(&["api", "--pods", "50000", "--agents", "20000"])?;
        stretch.figures.push(number(&v, "longest_loop_batch_ms")?);
        api.figures.push(number(&v, "p99_ms")?);
    }
    say(&stretch);
    say(&api);
    rows.extend([stretch, api]);

    // 5. Serial deploy.
    let mut serial = Row {
        item: "5",
        what: "serial deploy, 500 pods / 2,000 agents: scheduler time per step".to_owned(),
        goal: "< 1 ms",
        lower: true,
        limit: 1.0,
        unit: "ms",
        figures: Vec::new(),
    };
    let mut deciding = Row {
        item: "5",
        what: "… of which deciding (the rest: the durable commits of the step)".to_owned(),
        goal: "(reference)",
        lower: true,
        limit: f64::INFINITY,
        unit: "ms",
        figures: Vec::new(),
    };
    for _ in 0..runs {
        let v = child(&[
            "deploy",
            "--pods",
            "500",
            "--agents",
            "2000",
            "--strategy",
            "serial",
        ])?;
        let total = number(&v, "scheduler_seconds")?;
        let store = number(&v, "store_seconds")?;
        serial.figures.push(total * 1000.0 / 500.0);
        deciding.figures.push((total - store) * 1000.0 / 500.0);
    }
    say(&serial);
    say(&deciding);
    rows.extend([serial, deciding]);

    // 6. Unplaceable work.
    let mut stuck = Row {
        item: "6",
        what: "20,000 pods that fit nowhere, 10,000 agents offering every 5 s".to_owned(),
        goal: "< 5 % of a core",
        lower: true,
        limit: 5.0,
        unit: "% of a core",
        figures: Vec::new(),
    };
    for _ in 0..runs {
        let v = child(&["unplaceable"])?;
        stuck.figures.push(number(&v, "core_percent")?);
    }
    say(&stuck);
    rows.push(stuck);

    let (server, zk_url) = zookeeper(zk.as_deref())?;
    for _ in 0..heavy_runs {
        zk_restart.figures.push(restart_seconds(&[
            "restart", "--tasks", "100000", "--state", &zk_url,
        ])?);
    }
    drop(server);
    say(&zk_restart);
    rows.insert(zk_restart_at, zk_restart);

    let header =
        "| item | scenario | goal | median | spread | runs | |\n|---|---|---|---|---|---|---|";
    println!("{header}");
    for row in &rows {
        println!("{}", row.line());
    }
    Ok(json!({
        "rows": rows.iter().map(|r| json!({
            "item": r.item, "scenario": r.what, "goal": r.goal, "unit": r.unit,
            "median": r.median(), "runs": r.figures, "met": r.met(),
        })).collect::<Vec<_>>(),
    }))
}

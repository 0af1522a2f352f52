//! The live commands: `sagasim live` (deploy the system for real, drive a
//! scenario's workload through it under real faults, check the invariants
//! against PostgreSQL), `sagasim up` and `sagasim serve` (one of its
//! processes). They translate flags into a deployment and the plan
//! `harness/live.rs` makes of the scenario, and the outcome into a report
//! and an exit code; tokio runs here and in `live/` only.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use domain::{Bug, Strategy};
use live::deploy::{Infra, Process};
use live::system::Spec;
use reports::live::LiveReport;

use crate::harness;
use crate::scenario::Scenario;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveFormat {
    Text,
    Json,
}

/// What system to deploy: the same for `live` and `up`.
#[derive(Args, Debug, Clone)]
pub struct SystemArgs {
    /// A built-in scenario name or a path to a TOML file: its workload, its
    /// timeouts and its faults (the kinds a live run can inject).
    #[arg(long, default_value = "default")]
    pub scenario: String,
    /// choreography, orchestration, monolith, or an orchestrator policy
    /// (sync-cancel, compensation-coupon, ux-retry).
    #[arg(long, default_value = "choreography", value_parser = parse_strategy)]
    pub strategy: Strategy,
    /// A planted bug (see `sagasim list bugs`).
    #[arg(long, value_parser = parse_bug)]
    pub bug: Option<Bug>,
    /// The seed: the workload (the same as the simulation's for this seed;
    /// `up` sets its rows up, an attached run drives its submissions), the
    /// faults' times and targets, the payment gateway's faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Scale every fault rate and count by this factor (0: no faults).
    #[arg(long, default_value_t = 1.0)]
    pub fault_scale: f64,
}

#[derive(Args, Debug, Clone)]
pub struct LiveArgs {
    #[command(flatten)]
    pub system: SystemArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: LiveFormat,
    /// Write the report here instead of to standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the spans of every order (or of `--order`) as a Chrome trace
    /// (Perfetto), as `replay --format chrome-trace` does for a simulated
    /// run.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// With `--trace`: only the traces that touch this order.
    #[arg(long, requires = "trace")]
    pub order: Option<u32>,
    /// Drive a system `sagasim up` started (its deployment file) instead of
    /// starting one: its scenario, strategy, bug and seed are the run's.
    #[arg(long, conflicts_with_all = ["scenario", "strategy", "bug", "seed"])]
    pub attach: Option<PathBuf>,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Do not run the simulation of the same seed beside it.
    #[arg(long)]
    pub no_sim: bool,
}

/// Where the infrastructure is, and how a deployment is laid out.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct DeployArgs {
    /// Keep the run's database, streams and keys afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Give the processes ports from this one on (default: free ports).
    #[arg(long)]
    pub base_port: Option<u16>,
    /// PostgreSQL as HOST:PORT (user postgres, trust auth).
    #[arg(long, default_value = "127.0.0.1:5432")]
    pub pg: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    pub redis: String,
    #[arg(long, default_value = "127.0.0.1:4222")]
    pub nats: String,
    /// Where logs and spans go (default: a new folder in the temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl Default for DeployArgs {
    /// The machine's own servers, free ports, a temp folder: as the command
    /// line's defaults.
    fn default() -> DeployArgs {
        DeployArgs {
            keep: false,
            base_port: None,
            pg: "127.0.0.1:5432".to_string(),
            redis: "redis://127.0.0.1:6379/".to_string(),
            nats: "127.0.0.1:4222".to_string(),
            dir: None,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub system: SystemArgs,
    #[command(flatten)]
    pub deploy: DeployArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// gateway, product, order, payment, user, orchestrator, monolith, pg
    /// (the payment gateway) or data-platform.
    pub name: String,
    /// The deployment file `sagasim live` wrote.
    #[arg(long)]
    pub deployment: PathBuf,
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    let strategy = Strategy::parse(s).ok_or_else(|| format!("unknown strategy `{s}`"))?;
    if strategy == Strategy::TwoPhaseCommit {
        return Err("two-phase-commit does not run live (yet): it needs prepared transactions \
                    across services"
            .to_string());
    }
    Ok(strategy)
}

fn parse_bug(s: &str) -> Result<Bug, String> {
    Bug::parse(s).ok_or_else(|| format!("unknown bug `{s}`; see `sagasim list bugs`"))
}

fn infra(args: &DeployArgs) -> Result<Infra, ExitCode> {
    let Some((host, port)) = args.pg.rsplit_once(':') else {
        eprintln!("error: --pg {}: expected HOST:PORT", args.pg);
        return Err(ExitCode::from(2));
    };
    let Ok(port) = port.parse() else {
        eprintln!("error: --pg {}: `{port}` is not a port", args.pg);
        return Err(ExitCode::from(2));
    };
    Ok(Infra {
        pg_host: host.to_string(),
        pg_port: port,
        redis_url: args.redis.clone(),
        nats_url: args.nats.clone(),
        ..Infra::default()
    })
}

/// What a deployment of the scenario is made from.
fn spec(
    s: &Scenario,
    strategy: Strategy,
    bug: Option<Bug>,
    seed: u64,
    args: &DeployArgs,
) -> Result<Spec, ExitCode> {
    let settings = harness::settings(s, strategy, bug);
    let broker = harness::live::broker(s, &settings);
    Ok(Spec {
        scenario: s.origin.clone(),
        strategy,
        bug,
        seed,
        settings,
        broker,
        infra: infra(args)?,
        base_port: args.base_port,
        dir: args.dir.clone(),
    })
}

/// The live plan of a scenario, strategy, bug and seed, as `sagasim live`
/// makes it.
pub fn plan_for(
    s: &Scenario,
    strategy: Strategy,
    bug: Option<Bug>,
    seed: u64,
    deploy: &DeployArgs,
) -> Result<live::run::Plan, ExitCode> {
    plan(s, spec(s, strategy, bug, seed, deploy)?, deploy.keep)
}

fn plan(s: &Scenario, spec: Spec, keep: bool) -> Result<live::run::Plan, ExitCode> {
    let exe = std::env::current_exe().map_err(|e| {
        eprintln!("error: cannot find the sagasim binary to start the services: {e}");
        ExitCode::from(2)
    })?;
    Ok(harness::live::plan(s, spec, keep, exe))
}

fn scenario(name: &str, fault_scale: f64) -> Result<Scenario, ExitCode> {
    Scenario::load(name)
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })
        .map(|s| s.scaled(fault_scale))
}

fn check_bug(bug: Option<Bug>, strategy: Strategy) -> Result<(), ExitCode> {
    if let Some(bug) = bug.filter(|b| !b.runs_live()) {
        eprintln!(
            "error: bug `{}` cannot be planted live: it switches off what the live adapters \
             keep (PostgreSQL's unique inbox key, the relay's scan of every pending row); \
             run it in the simulation",
            bug.name()
        );
        return Err(ExitCode::from(2));
    }
    if let Some(bug) = bug.filter(|b| !b.strategies().contains(&strategy)) {
        let names: Vec<_> = bug.strategies().iter().map(|s| s.name()).collect();
        eprintln!(
            "error: bug `{}` cannot be planted in {}; it applies to: {}",
            bug.name(),
            strategy.name(),
            names.join(", ")
        );
        return Err(ExitCode::from(2));
    }
    Ok(())
}

fn failed(e: live::Error) -> ExitCode {
    match e {
        live::Error::Interrupted => {
            eprintln!("interrupted: every process stopped");
            ExitCode::from(130)
        }
        e => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_setup() { 2 } else { 1 })
        }
    }
}

/// An async runtime with `workers` threads (a service process needs one
/// beside its node thread: there are many of them on few cores).
fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(workers).enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::from(2)
    })
}

fn emit(args: &LiveArgs, report: &LiveReport) -> io::Result<()> {
    let render = |out: &mut dyn Write| -> io::Result<()> {
        match args.format {
            LiveFormat::Text => reports::live::text(&mut io::BufWriter::new(out), report),
            LiveFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
                writeln!(out)
            }
        }
    };
    match &args.out {
        Some(path) => crate::files::write_atomically(path, render),
        None => render(&mut io::stdout().lock()),
    }
}

/// `sagasim live`.
pub fn run_live(args: LiveArgs) -> Result<ExitCode, ExitCode> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (outcome, scenario, strategy, bug, seed) = match &args.attach {
        None => {
            let a = &args.system;
            check_bug(a.bug, a.strategy)?;
            let s = scenario(&a.scenario, a.fault_scale)?;
            let spec = spec(&s, a.strategy, a.bug, a.seed, &args.deploy)?;
            let plan = plan(&s, spec, args.deploy.keep)?;
            let outcome = runtime(cores)?.block_on(live::run::run(plan)).map_err(failed)?;
            (outcome, s, a.strategy, a.bug, a.seed)
        }
        Some(file) => {
            let d = live::deploy::Deployment::read(file).map_err(failed)?;
            let s = scenario(&d.scenario, args.system.fault_scale)?;
            let mut spec = spec(&s, d.strategy, d.bug, d.seed, &args.deploy)?;
            spec.infra = d.infra.clone();
            let plan = plan(&s, spec, true)?;
            let (strategy, bug, seed) = (d.strategy, d.bug, d.seed);
            let outcome = runtime(cores)?.block_on(live::run::attach(plan, d)).map_err(failed)?;
            (outcome, s, strategy, bug, seed)
        }
    };
    let mut report = outcome.report;
    if !args.no_sim {
        report.sim = Some(crate::measure::live::sim_figures(&scenario, strategy, bug, seed));
    }
    if let Some(path) = &args.trace {
        let doc = live::trace::chrome_trace(&outcome.spans, args.order, outcome.start_us);
        let written = crate::files::write_atomically(path, |out| {
            serde_json::to_writer(&mut *out, &doc).map_err(io::Error::other)?;
            writeln!(out)
        });
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", path.display());
            return Err(ExitCode::from(2));
        }
    }
    emit(&args, &report).map_err(|e| {
        eprintln!("error: writing the report: {e}");
        ExitCode::from(2)
    })?;
    Ok(ExitCode::from(report.exit_code()))
}

/// `sagasim up`: a deployment that stays up until Ctrl-C, for `live
/// --attach` (and for poking at by hand).
pub fn run_up(args: UpArgs) -> Result<ExitCode, ExitCode> {
    let a = &args.system;
    check_bug(a.bug, a.strategy)?;
    let s = scenario(&a.scenario, a.fault_scale)?;
    let spec = spec(&s, a.strategy, a.bug, a.seed, &args.deploy)?;
    let plan = plan(&s, spec, args.deploy.keep)?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let ready = |d: &live::deploy::Deployment| {
        println!("up: run {} ({}), gateway {}", d.run, d.strategy.name(), d.url(Process::Gateway));
        println!("deployment: {}", d.path().display());
        println!("attach a run with: sagasim live --attach {}", d.path().display());
        println!("Ctrl-C stops every process and removes the run's state");
        let _ = io::stdout().flush();
    };
    runtime(cores)?.block_on(live::up::up_until_stopped(plan, ready)).map_err(failed)?;
    Ok(ExitCode::SUCCESS)
}

/// `sagasim serve NAME`: one process of a live deployment.
pub fn run_serve(args: ServeArgs) -> Result<ExitCode, ExitCode> {
    let Some(p) = Process::parse(&args.name) else {
        eprintln!("error: no process `{}`; expected one of: gateway, product, order, payment, user, orchestrator, monolith, pg, data-platform", args.name);
        return Err(ExitCode::from(2));
    };
    let d = live::deploy::Deployment::read(&args.deployment).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    if !Process::of(d.strategy).contains(&p) {
        eprintln!("error: {} is not a process of {}", p.name(), d.strategy.name());
        return Err(ExitCode::from(2));
    }
    live::service::die_with_parent(p.name());
    live::service::watch_stdin(p.name());
    live::service::fail_stop(p.name());
    match runtime(1)?.block_on(live::service::serve(d, p)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("{}: error: {e}", p.name());
            Err(ExitCode::from(if e.is_setup() { 2 } else { 1 }))
        }
    }
}

//! What each subcommand does, as library functions the binary calls.
//!
//! Kept out of `main.rs` so the integration tests and other tools can call the same code,
//! and so `main.rs` stays a shell that only maps outcomes to exit statuses.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use tracing_subscriber::EnvFilter;

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::cli::{
    ApiserverArgs, Command, CompareArgs, ConformanceArgs, ControllerMode, EnvironmentArgs,
    GitserverArgs, ProviderKind, PublishArgs, ReportArgs, RunArgs, SensitivityArgs,
};
use crate::compare;
use crate::controller;
use crate::history;
use crate::provider;
use crate::report::{self, LabelledRun};
use crate::results::RunResults;
use crate::runner::{self, RunOptions};
use crate::suite::{self, Override, Suite};

/// How a command ended, as the exit status tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Passed,
    /// An SLO failed, a suite could not finish, or a comparison found a regression.
    Failed,
    /// The input was wrong; nothing ran.
    BadInput,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> ExitCode {
        match outcome {
            Outcome::Passed => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::BadInput => ExitCode::from(2),
        }
    }
}

/// Logs to stderr; `-v`/`-q` set the default level, `RUST_LOG` overrides it.
pub fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info,kube=warn,hyper=warn,tower=warn",
        (false, 1) => "debug,kube=info,hyper=info,tower=info,h2=info,rustls=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::progress::LogWriter)
        .with_target(verbose > 0)
        .try_init();
}

/// Runs a subcommand.
pub async fn dispatch(command: Command) -> Result<Outcome> {
    match command {
        Command::Report(args) => report_command(&args),
        Command::Compare(args) => compare_command(&args),
        Command::Publish(args) => publish_command(&args),
        Command::Export(args) => export_command(&args),
        Command::Run(args) => run_command(args).await,
        Command::Conformance(args) => conformance_command(args).await,
        Command::Sensitivity(args) => sensitivity_command(args).await,
        Command::Apiserver(args) => apiserver_command(&args).await,
        Command::Gitserver(args) => gitserver_command(&args).await,
    }
}

fn label_of(path: &Path) -> String {
    let path = if path
        .file_name()
        .is_some_and(|n| n == crate::results::RESULTS_FILE)
    {
        path.parent().unwrap_or(path)
    } else {
        path
    };
    path.display().to_string()
}

fn read_run(path: &Path) -> Result<LabelledRun> {
    Ok(LabelledRun {
        label: label_of(path),
        results: RunResults::read(path)?,
    })
}

fn report_command(args: &ReportArgs) -> Result<Outcome> {
    let runs = args
        .runs
        .iter()
        .map(|p| read_run(p))
        .collect::<Result<Vec<_>>>()?;
    let baseline = args.baseline.as_deref().map(read_run).transpose()?;
    let html = report::render(&runs, baseline.as_ref());
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&args.out, html)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    tracing::info!(report = %args.out.display(), runs = runs.len(), "report written");
    Ok(Outcome::Passed)
}

fn compare_command(args: &CompareArgs) -> Result<Outcome> {
    let base = RunResults::read(&args.base)?;
    let new = RunResults::read(&args.new)?;
    let rows = compare::compare(&base, &new, args.tolerance);
    print!("{}", compare::render_text(&rows));
    print!(
        "{}",
        compare::render_stages_text(&compare::compare_stages(&base, &new))
    );
    print!(
        "{}",
        compare::render_ledger_text(&compare::compare_ledgers(&base, &new))
    );
    let worse = rows.iter().any(|r| r.change == compare::Change::Worse);
    Ok(if args.fail_on_regression && worse {
        Outcome::Failed
    } else {
        Outcome::Passed
    })
}

fn publish_command(args: &PublishArgs) -> Result<Outcome> {
    let history = history::publish(&args.runs, &args.reports, args.keep)?;
    tracing::info!(
        index = %args.reports.join(history::INDEX_FILE).display(),
        runs = history.runs.len(),
        "history updated"
    );
    Ok(Outcome::Passed)
}

fn export_command(args: &crate::cli::ExportArgs) -> Result<Outcome> {
    let export =
        crate::export::export_run(&args.run, args.format, args.direction, args.out.as_deref())?;
    // stdout may be the export itself: what was left out goes to stderr.
    for line in export.report_lines() {
        eprintln!("{line}");
    }
    Ok(Outcome::Passed)
}

/// Cancels on Ctrl-C; a second Ctrl-C exits at once (killing the controller processes).
pub fn interrupt_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::warn!("interrupted: stopping after cleanup (Ctrl-C again to exit at once)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                controller::kill_all_children();
                std::process::exit(130);
            }
        }
    });
    token
}

/// Resolves `SUITE` arguments: a file path, or a suite name found in `dir` (and its
/// subdirectories, e.g. `smoke/`).
pub fn resolve_suites(args: &[String], dir: &Path) -> Result<Vec<(PathBuf, Suite)>> {
    let mut suites: Vec<(PathBuf, Suite)> = Vec::new();
    for arg in args {
        let path = PathBuf::from(arg);
        let loaded = if path.is_file() {
            (path.clone(), suite::load_file(&path)?)
        } else if arg.ends_with(".yaml") || arg.ends_with(".yml") || arg.contains('/') {
            anyhow::bail!("suite file {arg} does not exist");
        } else {
            find_by_name(arg, dir)?
        };
        if suites.iter().any(|(_, s)| s.name == loaded.1.name) {
            anyhow::bail!("suite {:?} is given twice", loaded.1.name);
        }
        suites.push(loaded);
    }
    Ok(suites)
}

fn find_by_name(name: &str, dir: &Path) -> Result<(PathBuf, Suite)> {
    let mut known = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(current) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let suite = suite::load_file(&path)?;
                if suite.name == name {
                    return Ok((path, suite));
                }
                known.push(suite.name);
            }
        }
    }
    known.sort();
    if known.is_empty() {
        anyhow::bail!(
            "unknown suite {name:?}: it is not a file, and {} holds no suites (pass --suites-dir)",
            dir.display()
        );
    }
    anyhow::bail!(
        "unknown suite {name:?}: it is not a file, and no suite in {} has that name (known: {})",
        dir.display(),
        known.join(", ")
    )
}

/// Applies the command line's profile, legacy switches and `--set` overrides to suites.
pub fn apply_command_line(
    suites: Vec<(PathBuf, Suite)>,
    env: &EnvironmentArgs,
) -> Result<Vec<(PathBuf, Suite)>> {
    let mut out = Vec::new();
    for override_ in &env.overrides {
        if let Some(name) = &override_.suite
            && !suites.iter().any(|(_, s)| &s.name == name)
        {
            anyhow::bail!("--set {override_}: no suite named {name:?} in this run");
        }
    }
    for (path, suite) in suites {
        let mut suite = suite::apply_overrides(&suite, &env.overrides)
            .with_context(|| format!("suite file {}", path.display()))?;
        if let Some(profile) = env.profile {
            suite.controller.profile = profile;
        }
        for switch in &env.legacy {
            if !suite.controller.legacy.contains(switch) {
                suite.controller.legacy.push(*switch);
            }
        }
        out.push((path, suite));
    }
    Ok(out)
}

fn options(
    suites: Vec<(PathBuf, Suite)>,
    env: &EnvironmentArgs,
    out: PathBuf,
    background_tags: Vec<String>,
) -> Result<RunOptions> {
    if env.controller == ControllerMode::External && env.provider == ProviderKind::Embedded {
        anyhow::bail!(
            "--controller external measures a controller that already serves fleet.cattle.io in the target cluster; the embedded provider's cluster is created per suite and has none (use --provider existing --kubeconfig FILE)"
        );
    }
    if env.provider == ProviderKind::Kind {
        // Upstream Fleet on kind is measured as an external controller, and the bundled
        // one needs no Fleet: refuse a mismatch before minutes of cluster creation.
        provider::kind::KindProvider::from_env()
            .check_controller_mode(env.controller == ControllerMode::Bundled)?;
    }
    let controller_bin = match env.controller {
        ControllerMode::Bundled => Some(controller::resolve_binary(env.controller_bin.as_deref())?),
        ControllerMode::External => None,
    };
    let provider: Arc<dyn provider::Provider> = Arc::from(provider::from_args(env)?);
    Ok(RunOptions {
        suites,
        overrides: env.overrides.iter().map(Override::to_string).collect(),
        provider,
        controller_mode: env.controller,
        controller_bin,
        webhook_url: env.webhook_url.clone(),
        controller_version: env.controller_version.clone(),
        baseline_run: env.baseline_run.clone(),
        out,
        background_tags,
        command: std::env::args().collect(),
    })
}

async fn execute(options: RunOptions) -> Outcome {
    let out = options.out.clone();
    let results = runner::run(options, interrupt_token()).await;
    print!("{}", runner::summary(&results));
    println!(
        "results: {}  report: {}",
        out.join(crate::results::RESULTS_FILE).display(),
        out.join("report.html").display()
    );
    if results.passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    }
}

/// Suites that cannot run on the chosen provider: refused (`run`) or left out with a note
/// (`conformance`).
fn for_provider(
    suites: Vec<(PathBuf, Suite)>,
    provider: ProviderKind,
    refuse: bool,
) -> Result<Vec<(PathBuf, Suite)>> {
    let mut kept = Vec::new();
    for (path, suite) in suites {
        if suite.runs_on(provider.as_str()) {
            kept.push((path, suite));
        } else if refuse {
            anyhow::bail!(
                "suite {} runs on --provider {} only, not {}",
                suite.name,
                suite.providers.join("|"),
                provider.as_str()
            );
        } else {
            println!(
                "skipping suite {}: it runs on --provider {} only",
                suite.name,
                suite.providers.join("|")
            );
        }
    }
    Ok(kept)
}

async fn run_command(args: RunArgs) -> Result<Outcome> {
    let suites = resolve_suites(&args.suites, &args.suites_dir)?;
    let suites = for_provider(suites, args.env.provider, true)?;
    let suites = apply_command_line(suites, &args.env)?;
    repeated(args.repeat, &args.out, |out| {
        options(suites.clone(), &args.env, out, Vec::new())
    })
    .await
}

/// Runs `times` times (once: straight into `out`; more: into `out/run-K`, then the spread
/// of every SLO into `out/spread.json` and one report over all runs).
async fn repeated(
    times: u32,
    out: &Path,
    mut options_for: impl FnMut(PathBuf) -> Result<RunOptions>,
) -> Result<Outcome> {
    if times <= 1 {
        return Ok(execute(options_for(out.to_path_buf())?).await);
    }
    let cancel = interrupt_token();
    let mut runs = Vec::new();
    let mut outcome = Outcome::Passed;
    for round in 1..=times {
        let dir = out.join(format!("run-{round}"));
        println!("repeat: run {round} of {times} into {}", dir.display());
        let results = runner::run(options_for(dir)?, cancel.clone()).await;
        print!("{}", runner::summary(&results));
        if !results.passed {
            outcome = Outcome::Failed;
        }
        runs.push(LabelledRun {
            label: format!("run {round}"),
            results,
        });
        if cancel.is_cancelled() {
            outcome = Outcome::Failed;
            break;
        }
    }
    let results: Vec<RunResults> = runs.iter().map(|r| r.results.clone()).collect();
    let spreads = crate::repeat::spreads(&results);
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join(crate::repeat::SPREAD_FILE),
        serde_json::to_vec_pretty(&spreads)?,
    )?;
    std::fs::write(out.join("report.html"), report::render(&runs, None))?;
    for spread in &spreads {
        println!(
            "spread {}/{}: median {}, range {}–{}, CV {} over {} runs{}",
            spread.suite,
            spread.slo,
            spread.unit.format(spread.median),
            spread.unit.format(spread.min),
            spread.unit.format(spread.max),
            spread
                .cv
                .map_or("n/a".to_string(), |cv| format!("{:.1}%", cv * 100.0)),
            spread.values.len(),
            if spread.failures > 0 {
                format!(", failed in {}", spread.failures)
            } else {
                String::new()
            }
        );
    }
    println!(
        "spread: {}  report: {}",
        out.join(crate::repeat::SPREAD_FILE).display(),
        out.join("report.html").display()
    );
    Ok(outcome)
}

async fn conformance_command(args: ConformanceArgs) -> Result<Outcome> {
    let all = suite::load_dir(&args.suites_dir)?;
    if all.is_empty() {
        anyhow::bail!("no suites in {}", args.suites_dir.display());
    }
    let selected: Vec<(PathBuf, Suite)> = all
        .into_iter()
        .filter(|(_, s)| !args.skip_tag.iter().any(|t| s.has_tag(t)))
        .collect();
    let selected = for_provider(selected, args.env.provider, false)?;
    let suites = apply_command_line(selected, &args.env)?;
    let background = if args.sequential {
        Vec::new()
    } else {
        vec!["long".to_string()]
    };
    repeated(args.repeat, &args.out, |out| {
        options(suites.clone(), &args.env, out, background.clone())
    })
    .await
}

async fn sensitivity_command(args: SensitivityArgs) -> Result<Outcome> {
    let suites = if args.suites.is_empty() {
        suite::load_dir(&args.suites_dir)?
    } else {
        resolve_suites(&args.suites, &args.suites_dir)?
    };
    if suites.is_empty() {
        anyhow::bail!("no suites in {}", args.suites_dir.display());
    }
    let suites = apply_command_line(suites, &args.env)?;
    let cancel = interrupt_token();
    let mut verdicts = Vec::new();
    let mut runs = Vec::new();
    for (path, suite) in suites {
        // Every suite is listed, with its proof or its absence: a suite without one is
        // not run, but it is not left out either.
        let Some(sensitivity) = suite.sensitivity.clone() else {
            let verdict = crate::sensitivity::Verdict::without_proof(&suite.name);
            println!("{}", verdict.line());
            verdicts.push(verdict);
            continue;
        };
        let mut switches: Vec<String> = sensitivity.legacy.iter().map(|s| s.to_string()).collect();
        switches.extend(sensitivity.set.iter().cloned());
        let mut with_switch = suite.clone();
        with_switch
            .controller
            .legacy
            .extend(sensitivity.legacy.iter().copied());
        let breakers: Vec<Override> = sensitivity
            .set
            .iter()
            .map(|text| text.parse())
            .collect::<Result<_, _>>()?;
        let with_switch = suite::apply_overrides(&with_switch, &breakers)
            .with_context(|| format!("sensitivity overrides of {}", suite.name))?;
        let mut outcomes = Vec::new();
        for (mode, variant) in [("current", suite.clone()), ("legacy", with_switch)] {
            let out = args.out.join(&suite.name).join(mode);
            let mut options = options(
                vec![(path.clone(), variant)],
                &args.env,
                out.clone(),
                Vec::new(),
            )?;
            if mode == "legacy" {
                options.overrides.extend(sensitivity.set.iter().cloned());
            }
            let results = runner::run(options, cancel.clone()).await;
            runs.push(LabelledRun {
                label: format!(
                    "{} {}",
                    suite.name,
                    if mode == "current" {
                        "current".to_string()
                    } else {
                        format!("+{}", switches.join(","))
                    }
                ),
                results: results.clone(),
            });
            outcomes.push(results);
            if cancel.is_cancelled() {
                break;
            }
        }
        let verdict = crate::sensitivity::judge(&suite.name, &sensitivity, &outcomes);
        println!("{}", verdict.line());
        verdicts.push(verdict);
        if cancel.is_cancelled() {
            break;
        }
    }
    let html = report::render(&runs, None);
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("report.html"), html)?;
    std::fs::write(
        args.out.join("sensitivity.json"),
        serde_json::to_vec_pretty(&verdicts)?,
    )?;
    let with_proof: Vec<&crate::sensitivity::Verdict> = verdicts
        .iter()
        .filter(|v| v.proof != crate::sensitivity::ProofKind::None)
        .collect();
    let proven = with_proof.iter().filter(|v| v.proven).count();
    let without: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.proof == crate::sensitivity::ProofKind::None)
        .map(|v| v.suite.as_str())
        .collect();
    println!(
        "sensitivity: {proven}/{} suites with a proof fail for the right reason with it and pass without it{}; report: {}",
        with_proof.len(),
        if without.is_empty() {
            String::new()
        } else {
            format!("; no proof: {}", without.join(", "))
        },
        args.out.join("report.html").display()
    );
    Ok(if proven == with_proof.len() && !cancel.is_cancelled() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

async fn apiserver_command(args: &ApiserverArgs) -> Result<Outcome> {
    if !args.listen.ip().is_loopback() && args.token.is_none() && args.kubeconfig_out.is_none() {
        // Beyond loopback the server makes up a token and requires it; without a file to
        // write it to, nobody could ever use the server.
        anyhow::bail!(
            "--listen {} is reachable beyond this machine, so the API server requires a token: give --token TOKEN (or FLEETBENCH_APISERVER_TOKEN), or --kubeconfig-out FILE to have a generated one written there",
            args.listen
        );
    }
    let mut config = apiserver::Config::default().with_listen(args.listen);
    if let Some(token) = &args.token {
        config = config.with_token(token.clone());
    }
    let server = apiserver::ApiServer::start(config)
        .await
        .with_context(|| format!("cannot start the API server on {}", args.listen))?;
    if let Some(path) = &args.kubeconfig_out {
        server
            .write_kubeconfig(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        tracing::info!(kubeconfig = %path.display(), "kubeconfig written");
    }
    println!(
        "fleetbench apiserver serving at {} (Ctrl-C to stop)",
        server.url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await;
    Ok(Outcome::Passed)
}

async fn gitserver_command(args: &GitserverArgs) -> Result<Outcome> {
    let credentials: gitserver::Credentials = args
        .user
        .parse()
        .map_err(|e| anyhow::anyhow!("--user {:?}: {e}", args.user))?;
    let mut config = gitserver::Config::new(&args.data)
        .with_credentials(credentials)
        .with_listen(args.listen)
        .plain_gitea(args.plain_gitea);
    config.external_url = args.external_url.clone();
    let server = gitserver::GitServer::start(config)
        .await
        .with_context(|| format!("cannot start the git server on {}", args.listen))?;
    println!(
        "fleetbench gitserver serving at {} for user {} (data in {}; Ctrl-C to stop)",
        server.url(),
        server.user(),
        args.data.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await;
    Ok(Outcome::Passed)
}

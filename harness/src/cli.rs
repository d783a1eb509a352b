//! The command line: what each subcommand takes, with help that explains it.
//!
//! Parsing only; `main.rs` dispatches to the library. Every option that a suite file also
//! sets (profile, legacy switches, any field through `--set`) overrides the file, and the
//! results record what was in force.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::suite::{LegacySwitch, Override, Profile};

/// Scale benchmarks and conformance suites for Fleet-style GitOps controllers.
///
/// fleetbench stands up a Kubernetes API and a git server, runs a Fleet controller against
/// them (the bundled `fleet-controller`, or whatever serves fleet.cattle.io), drives it
/// through suites that reproduce known scale problems, judges the results against SLOs and
/// writes results.json, junit.xml and a self-contained report.html.
#[derive(Debug, Parser)]
#[command(
    name = "fleetbench",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run suites (files, or names of suites in --suites-dir) and judge their SLOs.
    ///
    /// Exit status: 0 when every SLO passed, 1 when an SLO failed or a suite could not
    /// finish, 2 on bad input (no results written).
    Run(RunArgs),
    /// Run every suite in the suites directory at full scale (what `make conformance` runs).
    ///
    /// Suites tagged `long` (polling-jitter: 5+ minutes) run in the background, alongside
    /// the others, unless --sequential; --skip-tag long leaves them out.
    Conformance(ConformanceArgs),
    /// Prove the suites can fail: run each suite with and without the legacy switch it
    /// targets, and check that exactly its named SLOs fail with the switch and pass without.
    Sensitivity(SensitivityArgs),
    /// Write a self-contained HTML report for one or more run directories.
    Report(ReportArgs),
    /// Compare two runs: every SLO and headline statistic, with NEW/BASE ratios; each commit
    /// stage's median and the API write ledger's changes, step by step.
    Compare(CompareArgs),
    /// Add runs to a report history (for nightly jobs) and regenerate its trend index, with
    /// the runs where each SLO's figures shifted (change-points.json).
    Publish(PublishArgs),
    /// Write a run's SLO figures for a CI dashboard: github-action-benchmark, Bencher or
    /// OpenMetrics.
    ///
    /// One series per SLO with an observation, named PROVIDER/PROFILE/SUITE/SLO; SLOs
    /// without one are listed on stderr, never exported as numbers.
    Export(ExportArgs),
    /// Serve the embedded Kubernetes API server until Ctrl-C.
    Apiserver(ApiserverArgs),
    /// Serve the embedded git server until Ctrl-C.
    Gitserver(GitserverArgs),
}

/// Where clusters and git servers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// In-process API server and git server; the controller as a local subprocess.
    Embedded,
    /// Containers from locally built images.
    Docker,
    /// kind clusters and a Gitea container.
    Kind,
    /// An existing cluster (kubeconfig) and git server.
    Existing,
}

impl ProviderKind {
    /// The name used in results.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Embedded => "embedded",
            ProviderKind::Docker => "docker",
            ProviderKind::Kind => "kind",
            ProviderKind::Existing => "existing",
        }
    }
}

/// Who runs the controller under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ControllerMode {
    /// The harness starts the bundled `fleet-controller` per suite and measures its CPU/RSS.
    Bundled,
    /// The harness deploys nothing and measures whatever serves fleet.cattle.io.
    External,
}

/// Options shared by everything that runs suites.
#[derive(Debug, Clone, Args)]
pub struct EnvironmentArgs {
    /// Where clusters and git servers come from.
    #[arg(
        long,
        value_enum,
        default_value = "embedded",
        env = "FLEETBENCH_PROVIDER"
    )]
    pub provider: ProviderKind,
    /// Start the bundled controller, or measure an external one.
    #[arg(long, value_enum, default_value = "bundled")]
    pub controller: ControllerMode,
    /// The controller binary (default: `fleet-controller` beside `fleetbench`).
    #[arg(long, value_name = "PATH", env = "FLEETBENCH_CONTROLLER_BIN")]
    pub controller_bin: Option<PathBuf>,
    /// Controller profile for every suite (overrides the suite files).
    #[arg(long)]
    pub profile: Option<Profile>,
    /// Extra legacy switches for every suite, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SWITCH")]
    pub legacy: Vec<LegacySwitch>,
    /// Override a suite field: `--set scale.gitrepos=30`, `--set slos.NAME.max=5s`,
    /// `--set SUITE:steps.commit.timeout=1m` (only that suite). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<Override>,
    /// Kubeconfig of the cluster (existing provider).
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (existing provider; default: the current context). The
    /// bundled controller is given the same context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// A Gitea (or API-compatible) server to create the suites' repositories on (existing
    /// provider), e.g. `https://gitea.example.com`; default: the embedded git server on
    /// this machine. Every suite runs on either: the harness observes and breaks git
    /// through its own proxy (see --git-listen).
    #[arg(long, value_name = "URL")]
    pub git_url: Option<String>,
    /// The user owning the repositories on --git-url.
    #[arg(long, value_name = "NAME")]
    pub git_user: Option<String>,
    /// An access token (or the password) of --git-user.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FLEETBENCH_GIT_TOKEN",
        hide_env_values = true
    )]
    pub git_token: Option<String>,
    /// Webhook URL of an external controller, as the git server reaches it.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// The external controller's version, as you know it (recorded in the results; the
    /// harness cannot ask a controller it did not start).
    #[arg(long, value_name = "TEXT")]
    pub controller_version: Option<String>,
    /// A stored run (its directory or results.json) to compare an external controller
    /// against, for suites whose SLO is a ratio to a baseline (status-write-volume). The
    /// bundled controller measures its baseline in the same run instead. Without it, such
    /// SLOs are reported as not applicable to an external controller.
    #[arg(long, value_name = "RUN_DIR")]
    pub baseline_run: Option<PathBuf>,
    /// Where the harness's git proxy listens (existing provider). GitRepos clone through
    /// the proxy, so it must be reachable by the controller under test: the default
    /// 127.0.0.1:0 suits a controller on this machine; give an address of this machine
    /// that the cluster can reach (e.g. `192.168.1.10:0`) for one running in a cluster.
    #[arg(long, value_name = "ADDR:PORT")]
    pub git_listen: Option<SocketAddr>,
    /// The URL the controller reaches the git proxy at, when not `http://<--git-listen>`
    /// (behind NAT, a name, or a port mapping).
    #[arg(long, value_name = "URL")]
    pub git_public_url: Option<String>,
}

/// `fleetbench run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Suite files, or suite names looked up in --suites-dir (and its subdirectories).
    #[arg(required = true, value_name = "SUITE")]
    pub suites: Vec<String>,
    /// Directory holding suites referred to by name.
    #[arg(long, default_value = "suites", value_name = "DIR")]
    pub suites_dir: PathBuf,
    /// Output directory (results.json, junit.xml, report.html, logs).
    #[arg(long, short, default_value = "out/run", value_name = "DIR")]
    pub out: PathBuf,
    /// Run everything N times (into DIR/run-1 ... DIR/run-N) and report each SLO's median,
    /// range and coefficient of variation (DIR/spread.json, DIR/report.html): the noise
    /// behind a figure, measured.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Environment options.
    #[command(flatten)]
    pub env: EnvironmentArgs,
}

/// `fleetbench conformance`.
#[derive(Debug, Clone, Args)]
pub struct ConformanceArgs {
    /// Directory of suites (its top-level *.yaml files; subdirectories such as smoke/ are not
    /// included).
    #[arg(long, default_value = "suites", value_name = "DIR")]
    pub suites_dir: PathBuf,
    /// Output directory.
    #[arg(long, short, default_value = "out/conformance", value_name = "DIR")]
    pub out: PathBuf,
    /// Leave out suites with this tag (repeatable), e.g. `--skip-tag long`.
    #[arg(long, value_name = "TAG")]
    pub skip_tag: Vec<String>,
    /// Run suites one after another, `long` ones included (slower, quieter machine).
    #[arg(long)]
    pub sequential: bool,
    /// Run everything N times and report the spread (see `fleetbench run --repeat`).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Environment options.
    #[command(flatten)]
    pub env: EnvironmentArgs,
}

/// `fleetbench sensitivity`.
#[derive(Debug, Clone, Args)]
pub struct SensitivityArgs {
    /// Suite files or names (default: every suite in --suites-dir with a `sensitivity`
    /// section).
    #[arg(value_name = "SUITE")]
    pub suites: Vec<String>,
    /// Directory of suites.
    #[arg(long, default_value = "suites/smoke", value_name = "DIR")]
    pub suites_dir: PathBuf,
    /// Output directory (one run directory per suite and mode).
    #[arg(long, short, default_value = "out/sensitivity", value_name = "DIR")]
    pub out: PathBuf,
    /// Environment options.
    #[command(flatten)]
    pub env: EnvironmentArgs,
}

/// `fleetbench report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Run directories (or results.json files); several are shown side by side, the last
    /// as the headline.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// The HTML file to write.
    #[arg(long, short, value_name = "FILE.html")]
    pub out: PathBuf,
    /// A run to compare the (last) run with.
    #[arg(long, value_name = "RUN_DIR")]
    pub baseline: Option<PathBuf>,
}

/// `fleetbench compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The baseline run directory (or results.json).
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// The new run directory (or results.json).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Relative change treated as noise.
    #[arg(long, default_value_t = 0.1, value_name = "FRACTION")]
    pub tolerance: f64,
    /// Exit with status 1 when anything got worse beyond the tolerance.
    #[arg(long)]
    pub fail_on_regression: bool,
}

/// `fleetbench publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// Run directories to add.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// The history directory (reports/ in this repository).
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub reports: PathBuf,
    /// Keep at most this many runs in the index (oldest dropped first).
    #[arg(long, default_value_t = 200)]
    pub keep: usize,
}

/// `fleetbench export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The run directory (or its results.json).
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// The dashboard's input format.
    #[arg(long, value_enum)]
    pub format: crate::export::Format,
    /// Only SLOs whose figure gets better this way (smaller: `<=` SLOs, bigger: `>=` SLOs).
    /// A github-action-benchmark file feeds one tool (customSmallerIsBetter or
    /// customBiggerIsBetter), so it holds one direction: smaller unless given; the other
    /// formats hold both unless given.
    #[arg(long, value_enum)]
    pub direction: Option<crate::export::Direction>,
    /// The file to write (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `fleetbench apiserver`.
#[derive(Debug, Clone, Args)]
pub struct ApiserverArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Write a kubeconfig for the server here.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Require this bearer token.
    #[arg(long, env = "FLEETBENCH_APISERVER_TOKEN")]
    pub token: Option<String>,
}

/// `fleetbench gitserver`.
#[derive(Debug, Clone, Args)]
pub struct GitserverArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Directory of the bare repositories (kept across restarts).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The user, as NAME:PASSWORD.
    #[arg(
        long,
        value_name = "NAME:PASSWORD",
        default_value = "fleetbench:fleetbench"
    )]
    pub user: String,
    /// The URL clients reach the server at, used in clone URLs and webhook payloads (like
    /// Gitea's ROOT_URL); default `http://LISTEN-ADDRESS`. Set it when the server runs
    /// behind a name (a container on a Docker network).
    #[arg(long, value_name = "URL")]
    pub external_url: Option<String>,
    /// Serve only what a real Gitea serves (its REST subset and git over HTTP): no request
    /// log, no fault endpoints, no fleetbench extensions. For proving that the suites need
    /// nothing but a plain Gitea.
    #[arg(long)]
    pub plain_gitea: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_suites_overrides_and_profile() {
        let cli = Cli::try_parse_from([
            "fleetbench",
            "run",
            "suites/smoke/a.yaml",
            "b",
            "--profile",
            "fleet-v0.10",
            "--legacy",
            "no-poll-jitter,unthrottled-status-writes",
            "--set",
            "scale.gitrepos=3",
            "--out",
            "x",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!()
        };
        assert_eq!(run.suites, ["suites/smoke/a.yaml", "b"]);
        assert_eq!(run.env.profile, Some(Profile::FleetV010));
        assert_eq!(run.env.legacy.len(), 2);
        assert_eq!(run.env.overrides[0].path, ["scale", "gitrepos"]);
        assert_eq!(run.out, PathBuf::from("x"));
        assert_eq!(run.env.provider, ProviderKind::Embedded);
    }

    #[test]
    fn bad_values_are_rejected_with_the_choices() {
        let error = Cli::try_parse_from(["fleetbench", "run", "a", "--profile", "v2"]).unwrap_err();
        assert!(
            error.to_string().contains("current or fleet-v0.10"),
            "{error}"
        );
        let error =
            Cli::try_parse_from(["fleetbench", "run", "a", "--legacy", "nope"]).unwrap_err();
        assert!(error.to_string().contains("no-poll-jitter"), "{error}");
        let error =
            Cli::try_parse_from(["fleetbench", "run", "a", "--set", "novalue"]).unwrap_err();
        assert!(error.to_string().contains("key=value"), "{error}");
    }

    #[test]
    fn export_takes_a_format_a_run_and_an_optional_direction() {
        let cli = Cli::try_parse_from([
            "fleetbench",
            "export",
            "--format",
            "github-action-benchmark",
            "out/run",
            "--direction",
            "bigger",
            "--out",
            "bench.json",
        ])
        .unwrap();
        let Command::Export(export) = cli.command else {
            panic!()
        };
        assert_eq!(export.format, crate::export::Format::GithubActionBenchmark);
        assert_eq!(export.run, PathBuf::from("out/run"));
        assert_eq!(export.direction, Some(crate::export::Direction::Bigger));
        assert_eq!(export.out, Some(PathBuf::from("bench.json")));
        let cli =
            Cli::try_parse_from(["fleetbench", "export", "--format", "openmetrics", "x"]).unwrap();
        let Command::Export(export) = cli.command else {
            panic!()
        };
        assert_eq!(export.direction, None);
        assert_eq!(export.out, None);
        let error =
            Cli::try_parse_from(["fleetbench", "export", "--format", "csv", "x"]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("github-action-benchmark, bencher, openmetrics"),
            "{error}"
        );
    }
}

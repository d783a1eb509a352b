//! fleetbench: scale benchmarks and conformance suites for Fleet-style GitOps controllers.
//!
//! The binary is a thin shell over these modules: `suite` (what to run), `provider` (where),
//! `controller` (the system under test), `steps` and `measure` (doing and timing), `slo`
//! (verdicts), and `results`, `junit`, `report`, `compare`, `history` (what users read).

pub mod changepoint;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod controller;
pub mod export;
pub mod gitproxy;
pub mod history;
pub mod junit;
pub mod ledger;
pub mod machine;
pub mod measure;
pub mod progress;
pub mod provider;
pub mod repeat;
pub mod report;
pub mod results;
pub mod runner;
pub mod sensitivity;
pub mod slo;
pub mod stages;
pub mod steps;
pub mod suite;

/// An error as one line of text: its message, then each cause's, joined with ": ".
///
/// The harness's errors say only what went wrong at their own layer and leave the cause to
/// `source()`, so this is how any of them becomes text for results.json, a log line or the
/// command line; formatting them one by one would lose the causes or print them twice.
/// (`anyhow`'s `{:#}` produces the same text for errors carried in an `anyhow::Error`.)
pub fn error_text(error: &dyn std::error::Error) -> String {
    fleet_api::error::chain(error)
}

/// Selects rustls' crypto provider (ring) for the process, once. The workspace builds
/// reqwest without a provider of its own, so every HTTP client needs this first; calling it
/// again is harmless.
pub fn init_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

//! Measurement: timestamps on the harness's clock, percentiles, API counts, resource use,
//! and ratios to a baseline.
//!
//! Everything here observes black-box, through interfaces every provider has: Kubernetes
//! watches, the API server's `/metrics`, the git server's request log and the controller's
//! process-table entry or its container's stats. So the bundled controller and an upstream Fleet are measured
//! the same way.

pub mod baseline;
pub mod metrics;
pub mod polling;
pub mod recorder;
pub mod resources;
pub mod scrape;
pub mod stats;

//! Controller CPU and memory over a suite, sampled from the process table (sysinfo) or,
//! for a controller in a container, from the container engine's stats API.
//!
//! The bundled controller runs as its own process (or container) precisely so that this is
//! possible: the harness's own work (watching, committing) never counts against the
//! controller. A container is read through its engine rather than as a process on this
//! machine so that a remote engine's containers are measured too, and a restarted
//! container goes on being followed (its new process has a new id; the container has not).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::StatsOptionsBuilder;
use futures::StreamExt;
use parking_lot::Mutex;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::task::JoinHandle;

use crate::results::{ResourceSample, ResourceUsage};

/// Bound on one read of a container's stats (a one-shot read answers in milliseconds).
const CONTAINER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a controller's CPU time and memory can be read.
#[derive(Debug, Clone)]
pub enum ResourceSource {
    /// A process on this machine, read from the process table.
    Process(u32),
    /// A container, read through its engine's stats API.
    Container {
        /// The engine the container runs on.
        docker: Docker,
        /// Its id or name.
        container: String,
    },
}

/// One reading of a controller's cumulative CPU time and its resident memory.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    /// CPU time used since it started, in milliseconds.
    cpu_ms: u64,
    /// Resident memory.
    rss_bytes: u64,
}

/// Samples one controller until stopped.
pub struct ResourceSampler {
    samples: Arc<Mutex<Vec<ResourceSample>>>,
    cpu_ms: Arc<Mutex<CpuTotals>>,
    interval: Duration,
    task: JoinHandle<()>,
}

/// The CPU time summed over the samples. Summed from differences rather than taken as
/// last minus first, so that a restarted container (whose counter starts again at zero)
/// adds its new work instead of making the total negative.
#[derive(Debug, Default)]
struct CpuTotals {
    previous: Option<u64>,
    used_ms: u64,
}

impl CpuTotals {
    /// Adds a reading of the cumulative counter; returns the CPU time since the last one.
    fn add(&mut self, cumulative_ms: u64) -> u64 {
        let used = match self.previous {
            // The counter went down: the controller restarted, and all it shows is new.
            Some(before) if cumulative_ms < before => cumulative_ms,
            Some(before) => cumulative_ms - before,
            None => 0,
        };
        self.previous = Some(cumulative_ms);
        self.used_ms += used;
        used
    }
}

impl ResourceSampler {
    /// Starts sampling `source` every `interval`; `origin` is time zero of the suite.
    pub fn start(source: ResourceSource, origin: Instant, interval: Duration) -> ResourceSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let cpu_ms = Arc::new(Mutex::new(CpuTotals::default()));
        let task = tokio::spawn(sample_loop(
            source,
            origin,
            interval,
            Arc::clone(&samples),
            Arc::clone(&cpu_ms),
        ));
        ResourceSampler {
            samples,
            cpu_ms,
            interval,
            task,
        }
    }

    /// Stops and summarises.
    pub fn finish(self) -> ResourceUsage {
        self.task.abort();
        let samples = self.samples.lock().clone();
        let used_ms = self.cpu_ms.lock().used_ms;
        ResourceUsage {
            interval_s: self.interval.as_secs_f64(),
            peak_rss_bytes: samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
            cpu_seconds: used_ms as f64 / 1000.0,
            samples,
        }
    }
}

/// Reads a process from the process table.
struct ProcessReader {
    system: System,
    pid: Pid,
}

impl ProcessReader {
    fn read(&mut self) -> Option<Reading> {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let process = self.system.process(self.pid)?;
        Some(Reading {
            cpu_ms: process.accumulated_cpu_time(),
            rss_bytes: process.memory(),
        })
    }
}

/// A container's reading from one stats answer of its engine; `None` when the answer has
/// no CPU counter (a stopped container).
fn container_reading(stats: &bollard::models::ContainerStatsResponse) -> Option<Reading> {
    let cpu_ns = stats
        .cpu_stats
        .as_ref()?
        .cpu_usage
        .as_ref()?
        .total_usage
        .filter(|ns| *ns > 0)?;
    let memory = stats.memory_stats.as_ref();
    let rss_bytes = memory.map_or(0, |memory| {
        resident_bytes(memory.stats.as_ref(), memory.usage.unwrap_or(0))
    });
    Some(Reading {
        cpu_ms: cpu_ns / 1_000_000,
        rss_bytes,
    })
}

/// What the process table would call the container's resident set: anonymous memory plus
/// mapped files (the binary's pages), the same parts a process's RSS counts. The cgroup's
/// `usage` also counts page cache the kernel can drop, which would make a container look
/// larger than the same controller run as a process; it is used only when the cgroup's
/// breakdown is missing.
fn resident_bytes(stat: Option<&HashMap<String, u64>>, usage: u64) -> u64 {
    let Some(stat) = stat else {
        return usage;
    };
    let sum = |anon: &str, mapped: &str| {
        stat.get(anon)
            .map(|anon| anon + stat.get(mapped).copied().unwrap_or(0))
    };
    // cgroup v2 names, then cgroup v1 names (memory.stat of the container's group).
    sum("anon", "file_mapped")
        .or_else(|| sum("rss", "mapped_file"))
        .or_else(|| {
            stat.get("inactive_file")
                .map(|cache| usage.saturating_sub(*cache))
        })
        .unwrap_or(usage)
}

/// One one-shot stats read of `container`, bounded.
async fn read_container(docker: &Docker, container: &str) -> Option<Reading> {
    let options = StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(true)
        .build();
    let mut answers = docker.stats(container, Some(options));
    let answer = tokio::time::timeout(CONTAINER_READ_TIMEOUT, answers.next())
        .await
        .ok()??;
    match answer {
        Ok(stats) => container_reading(&stats),
        Err(error) => {
            tracing::debug!(%container, %error, "container stats unreadable");
            None
        }
    }
}

async fn sample_loop(
    source: ResourceSource,
    origin: Instant,
    interval: Duration,
    samples: Arc<Mutex<Vec<ResourceSample>>>,
    cpu_ms: Arc<Mutex<CpuTotals>>,
) {
    let mut process = match &source {
        ResourceSource::Process(pid) => match System::new() {
            Ok(system) => Some(ProcessReader {
                system,
                pid: Pid::from_u32(*pid),
            }),
            Err(_) => {
                tracing::warn!(
                    "cannot read the process table; controller CPU and memory not sampled"
                );
                return;
            }
        },
        ResourceSource::Container { .. } => None,
    };
    let mut previous_at: Option<Instant> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let reading = match (&source, process.as_mut()) {
            (ResourceSource::Container { docker, container }, _) => {
                // A container between a stop and its restart has no reading: skip the
                // tick and go on following it.
                match read_container(docker, container).await {
                    Some(reading) => reading,
                    None => continue,
                }
            }
            (ResourceSource::Process(pid), Some(reader)) => match reader.read() {
                Some(reading) => reading,
                None => {
                    tracing::debug!(pid, "controller process gone; sampling stops");
                    return;
                }
            },
            (ResourceSource::Process(_), None) => return,
        };
        let now = Instant::now();
        let used_ms = cpu_ms.lock().add(reading.cpu_ms);
        let cpu_percent = match previous_at {
            Some(then) => {
                let wall_ms = now.duration_since(then).as_secs_f64() * 1000.0;
                if wall_ms > 0.0 {
                    used_ms as f64 / wall_ms * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        previous_at = Some(now);
        samples.lock().push(ResourceSample {
            t_s: now.saturating_duration_since(origin).as_secs_f64(),
            cpu_percent,
            rss_bytes: reading.rss_bytes,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn samples_this_process() {
        let sampler = ResourceSampler::start(
            ResourceSource::Process(std::process::id()),
            Instant::now(),
            Duration::from_millis(20),
        );
        // Burn a little CPU so the second sample has something to show.
        let until = Instant::now() + Duration::from_millis(150);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let usage = sampler.finish();
        assert!(usage.samples.len() >= 2, "{usage:?}");
        assert!(
            usage.peak_rss_bytes > 1_000_000,
            "a test process uses more than 1 MB"
        );
        assert!(usage.samples.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    }

    #[tokio::test]
    async fn a_missing_process_yields_no_samples() {
        let sampler = ResourceSampler::start(
            ResourceSource::Process(u32::MAX - 1),
            Instant::now(),
            Duration::from_millis(10),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let usage = sampler.finish();
        assert!(usage.samples.is_empty());
        assert_eq!(usage.cpu_seconds, 0.0);
    }

    #[test]
    fn a_restart_adds_its_new_work_to_the_cpu_total() {
        let mut totals = CpuTotals::default();
        assert_eq!(totals.add(1_000), 0, "the first reading is the baseline");
        assert_eq!(totals.add(1_500), 500);
        // Restarted: the counter starts again, and all of it is new work.
        assert_eq!(totals.add(200), 200);
        assert_eq!(totals.add(700), 500);
        assert_eq!(totals.used_ms, 1_200);
    }

    #[test]
    fn a_containers_resident_memory_leaves_out_droppable_cache() {
        let stat = |pairs: &[(&str, u64)]| -> HashMap<String, u64> {
            pairs.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()
        };
        // cgroup v2: anonymous memory plus mapped files.
        let v2 = stat(&[("anon", 100), ("file_mapped", 20), ("file", 900)]);
        assert_eq!(resident_bytes(Some(&v2), 1_000), 120);
        // cgroup v1 names.
        let v1 = stat(&[("rss", 70), ("mapped_file", 5), ("cache", 900)]);
        assert_eq!(resident_bytes(Some(&v1), 1_000), 75);
        // Only the cache is known: usage without it.
        let cache_only = stat(&[("inactive_file", 300)]);
        assert_eq!(resident_bytes(Some(&cache_only), 1_000), 700);
        // No breakdown at all: the usage, the only figure there is.
        assert_eq!(resident_bytes(None, 1_000), 1_000);
    }

    #[test]
    fn an_engine_stats_answer_is_read_as_cpu_time_and_memory() {
        // The shape of Docker's GET /containers/{id}/stats?stream=false&one-shot=true on a
        // cgroup v1 host (fields the reading does not use left out).
        let answer: bollard::models::ContainerStatsResponse = serde_json::from_value(
            serde_json::json!({
                "id": "abc",
                "name": "/controller",
                "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000u64}},
                "memory_stats": {
                    "usage": 90_000_000u64,
                    "stats": {"rss": 40_000_000u64, "mapped_file": 2_000_000u64, "cache": 48_000_000u64}
                }
            }),
        )
        .expect("a stats answer parses");
        assert_eq!(
            container_reading(&answer),
            Some(Reading {
                cpu_ms: 2_500,
                rss_bytes: 42_000_000
            })
        );
        // A stopped container answers without CPU figures: no reading, not a zero.
        let stopped: bollard::models::ContainerStatsResponse =
            serde_json::from_value(serde_json::json!({"id": "abc", "cpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {}}))
                .expect("parses");
        assert_eq!(container_reading(&stopped), None);
    }
}

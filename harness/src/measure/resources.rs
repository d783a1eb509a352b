//! Controller CPU and memory over a suite, sampled from the process table (sysinfo).
//!
//! The bundled controller runs as its own process precisely so that this is possible: the
//! harness's own work (watching, committing) never counts against the controller.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::task::JoinHandle;

use crate::results::{ResourceSample, ResourceUsage};

/// Samples one process until stopped.
pub struct ResourceSampler {
    samples: Arc<Mutex<Vec<ResourceSample>>>,
    cpu_ms: Arc<Mutex<(Option<u64>, u64)>>,
    interval: Duration,
    task: JoinHandle<()>,
}

impl ResourceSampler {
    /// Starts sampling `pid` every `interval`; `origin` is time zero of the suite.
    pub fn start(pid: u32, origin: Instant, interval: Duration) -> ResourceSampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let cpu_ms = Arc::new(Mutex::new((None, 0)));
        let task = tokio::spawn(sample_loop(
            pid,
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
        let (first, last) = *self.cpu_ms.lock();
        ResourceUsage {
            interval_s: self.interval.as_secs_f64(),
            peak_rss_bytes: samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
            cpu_seconds: first.map_or(0.0, |first| last.saturating_sub(first) as f64 / 1000.0),
            samples,
        }
    }
}

async fn sample_loop(
    pid: u32,
    origin: Instant,
    interval: Duration,
    samples: Arc<Mutex<Vec<ResourceSample>>>,
    cpu_ms: Arc<Mutex<(Option<u64>, u64)>>,
) {
    let Ok(mut system) = System::new() else {
        tracing::warn!("cannot read the process table; controller CPU and memory not sampled");
        return;
    };
    let pid = Pid::from_u32(pid);
    let mut previous: Option<(Instant, u64)> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let Some(process) = system.process(pid) else {
            tracing::debug!(%pid, "controller process gone; sampling stops");
            return;
        };
        let now = Instant::now();
        let cpu = process.accumulated_cpu_time();
        {
            let mut totals = cpu_ms.lock();
            totals.0.get_or_insert(cpu);
            totals.1 = cpu;
        }
        let cpu_percent = match previous {
            Some((then, before)) => {
                let wall_ms = now.duration_since(then).as_secs_f64() * 1000.0;
                if wall_ms > 0.0 {
                    cpu.saturating_sub(before) as f64 / wall_ms * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        previous = Some((now, cpu));
        samples.lock().push(ResourceSample {
            t_s: now.saturating_duration_since(origin).as_secs_f64(),
            cpu_percent,
            rss_bytes: process.memory(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn samples_this_process() {
        let sampler = ResourceSampler::start(
            std::process::id(),
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
        let sampler =
            ResourceSampler::start(u32::MAX - 1, Instant::now(), Duration::from_millis(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let usage = sampler.finish();
        assert!(usage.samples.is_empty());
        assert_eq!(usage.cpu_seconds, 0.0);
    }
}

//! Waiting for the controller's writes to stop, and the `settle` step built on it.
//!
//! Write-cost measurements count from a scrape before the action to a scrape once the
//! controller has gone quiet: a fixed window after the last observed event would let a
//! controller that defers its work past the window escape the count. The wait is bounded,
//! and when the bound comes first the step records it, so short counts are never silent.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{Context, StepError, StepOutput};
use crate::measure::metrics::{RequestTotals, count_writes};
use crate::progress::Task;
use crate::suite::{GoDuration, Settle};

/// How often the API server's counters are read while waiting for quiet.
const QUIET_POLL: Duration = Duration::from_millis(500);

/// Which writes a wait for quiet watches.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    /// Resources whose writes count; empty counts every write to what a Fleet controller
    /// owns (never Leases, Events or other clients' kinds, which on a real cluster never
    /// go quiet).
    pub resources: &'a [String],
    /// Only this subresource's writes, when given.
    pub subresource: Option<&'a str>,
}

impl Counted<'_> {
    /// The counted writes between `before` and `after`.
    pub fn between(&self, before: &RequestTotals, after: &RequestTotals) -> u64 {
        let requests = after.since(before);
        if self.resources.is_empty() {
            requests
                .iter()
                .filter(|r| {
                    r.is_write()
                        && r.is_controller_owned()
                        && self.subresource.is_none_or(|s| r.subresource == s)
                })
                .map(|r| r.count)
                .sum()
        } else {
            count_writes(&requests, self.resources, self.subresource).0
        }
    }
}

/// How a wait for quiet ended.
#[derive(Debug)]
pub struct QuietEnd {
    /// The last scrape.
    pub after: RequestTotals,
    /// Counted writes since `before`.
    pub writes: u64,
    /// Whether the writes stopped for the quiet period (false: the deadline came first).
    pub went_quiet: bool,
}

/// Waits until no counted write happened for `quiet` (or `deadline`), scraping the API
/// server's counters every half second.
pub async fn wait_for_quiet(
    ctx: &Context<'_>,
    before: &RequestTotals,
    counted: Counted<'_>,
    quiet: Duration,
    deadline: Instant,
    label: &str,
) -> Result<QuietEnd, StepError> {
    let task = Task::start(label.to_string(), None);
    let end = quiet_loop(
        || ctx.scrape_requests(),
        before,
        counted,
        quiet,
        deadline,
        &ctx.cancel,
        |writes| task.message(format!("{writes} writes so far")),
    )
    .await;
    task.finish();
    end
}

/// The loop of [`wait_for_quiet`] over any source of scrapes (tests script one). The
/// quiet period restarts whenever the count changes; the first scrape counts too, so
/// writes made before the wait began are not mistaken for quiet.
pub async fn quiet_loop<S, F>(
    mut scrape: S,
    before: &RequestTotals,
    counted: Counted<'_>,
    quiet: Duration,
    deadline: Instant,
    cancel: &CancellationToken,
    mut progress: impl FnMut(u64),
) -> Result<QuietEnd, StepError>
where
    S: FnMut() -> F,
    F: Future<Output = Result<RequestTotals, StepError>>,
{
    let mut after = scrape().await?;
    let mut last_total = counted.between(before, &after);
    let mut quiet_since = tokio::time::Instant::now();
    let deadline = tokio::time::Instant::from_std(deadline);
    loop {
        progress(last_total);
        if quiet_since.elapsed() >= quiet {
            return Ok(QuietEnd {
                after,
                writes: last_total,
                went_quiet: true,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(QuietEnd {
                after,
                writes: last_total,
                went_quiet: false,
            });
        }
        tokio::select! {
            () = tokio::time::sleep(QUIET_POLL) => {}
            () = cancel.cancelled() => return Err(StepError::Cancelled),
        }
        after = scrape().await?;
        let total = counted.between(before, &after);
        if total != last_total {
            last_total = total;
            quiet_since = tokio::time::Instant::now();
        }
    }
}

/// How a step waited for the controller's writes to stop.
#[derive(Debug)]
pub struct Quiet {
    /// The API server's counters when the wait ended.
    pub after: RequestTotals,
    /// Whether the writes stopped (false: the bound came first).
    pub went_quiet: bool,
    /// What the wait was, for the measurements' notes.
    pub note: String,
}

impl Quiet {
    /// The line for the step's `quality` when the bound came first.
    pub fn problem(&self) -> Option<String> {
        (!self.went_quiet).then(|| format!("{}; the counts may be short", self.note))
    }
}

/// Waits until the controller has made no write (to what a Fleet controller owns) for
/// `quiet`, at most `bound`, so deferred work is charged to the step that caused it.
pub async fn until_quiet(
    ctx: &Context<'_>,
    before: &RequestTotals,
    quiet: GoDuration,
    bound: GoDuration,
    label: &str,
) -> Result<Quiet, StepError> {
    let started = Instant::now();
    let end = wait_for_quiet(
        ctx,
        before,
        Counted {
            resources: &[],
            subresource: None,
        },
        quiet.0,
        started + bound.0,
        &format!("{label}: waiting for the controller's writes to stop"),
    )
    .await?;
    let waited = started.elapsed().as_secs_f64();
    let note = if end.went_quiet {
        format!(
            "counted until the controller made no write for {quiet} ({waited:.1}s of waiting; bound {bound})"
        )
    } else {
        format!("the controller was still writing when the bound of {bound} ran out")
    };
    Ok(Quiet {
        after: end.after,
        went_quiet: end.went_quiet,
        note,
    })
}

/// `settle`: wait until the API server has seen no controller write for `quiet`.
pub async fn settle(
    ctx: &mut Context<'_>,
    spec: &Settle,
    label: &str,
) -> Result<StepOutput, StepError> {
    let started = Instant::now();
    let before = ctx.scrape_requests().await?;
    let end = wait_for_quiet(
        ctx,
        &before,
        Counted {
            resources: &[],
            subresource: None,
        },
        spec.quiet.0,
        started + spec.timeout.0,
        &format!("{label}: waiting for the controller to go idle"),
    )
    .await?;
    let writes = end.writes;
    let mut quality = Vec::new();
    if end.went_quiet {
        ctx.unsettled = None;
    } else {
        let problem = format!(
            "the controller was still writing after {} ({writes} writes to fleet.cattle.io objects, namespaces and secrets)",
            spec.timeout
        );
        quality.push(format!("settle gave up: {problem}"));
        ctx.unsettled = Some(problem);
    }
    Ok(StepOutput {
        quality,
        message: if end.went_quiet {
            format!(
                "idle after {:.1}s ({writes} writes meanwhile, then none for {})",
                started.elapsed().as_secs_f64(),
                spec.quiet
            )
        } else {
            format!(
                "still writing after {} ({writes} writes); moving on",
                spec.timeout
            )
        },
        ..StepOutput::default()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Counters as a controller writing `patches` Bundle status patches leaves them.
    fn totals(patches: u64) -> RequestTotals {
        RequestTotals::parse(&format!(
            "apiserver_request_total{{verb=\"PATCH\",group=\"fleet.cattle.io\",resource=\"bundles\",subresource=\"status\",code=\"200\"}} {patches}\n\
             apiserver_request_total{{verb=\"UPDATE\",group=\"coordination.k8s.io\",resource=\"leases\",subresource=\"\",code=\"200\"}} {}\n",
            patches * 1000 + 7
        ))
        .unwrap()
    }

    /// A scrape source for a controller whose writes so far are `writes_at(elapsed)`, on
    /// the (paused) tokio clock; it counts its scrapes.
    fn scripted(
        writes_at: impl Fn(Duration) -> u64 + 'static,
    ) -> (
        impl FnMut() -> std::future::Ready<Result<RequestTotals, StepError>>,
        Arc<Mutex<u32>>,
    ) {
        let start = tokio::time::Instant::now();
        let scrapes = Arc::new(Mutex::new(0));
        let counter = Arc::clone(&scrapes);
        let source = move || {
            *counter.lock().unwrap() += 1;
            std::future::ready(Ok(totals(writes_at(start.elapsed()))))
        };
        (source, scrapes)
    }

    const EVERY_WRITE: Counted<'static> = Counted {
        resources: &[],
        subresource: None,
    };

    /// Waits for 3 quiet seconds from no writes before, at most `bound_s`.
    async fn wait<S, F>(
        source: S,
        counted: Counted<'_>,
        bound_s: u64,
    ) -> Result<QuietEnd, StepError>
    where
        S: FnMut() -> F,
        F: Future<Output = Result<RequestTotals, StepError>>,
    {
        quiet_loop(
            source,
            &totals(0),
            counted,
            Duration::from_secs(3),
            Instant::now() + Duration::from_secs(bound_s),
            &CancellationToken::new(),
            |_| {},
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn writes_deferred_past_a_fixed_window_are_still_charged() {
        // Writes trickle in with gaps shorter than the quiet period, the last at 7 s: a
        // fixed 5 s window would miss the last 10.
        let (source, _) = scripted(|t| match t.as_millis() {
            0..2500 => 10,
            2500..5000 => 20,
            5000..7000 => 30,
            _ => 40,
        });
        let end = wait(source, EVERY_WRITE, 60).await.unwrap();
        assert!(end.went_quiet);
        assert_eq!(end.writes, 40, "leases are noise and not counted");
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_needs_the_whole_period_without_a_write() {
        // A write every 2 s for 20 s never leaves 3 quiet seconds until it stops.
        let (source, scrapes) = scripted(|t| t.as_secs().min(20) / 2);
        let started = tokio::time::Instant::now();
        let end = wait(source, EVERY_WRITE, 60).await.unwrap();
        assert!(end.went_quiet);
        assert_eq!(end.writes, 10);
        assert!(
            started.elapsed() >= Duration::from_secs(23),
            "{:?}",
            started.elapsed()
        );
        assert!(*scrapes.lock().unwrap() > 40, "scraped every half second");
    }

    #[tokio::test(start_paused = true)]
    async fn a_controller_that_never_stops_ends_on_the_bound_and_says_so() {
        let (source, _) = scripted(|t| t.as_millis() as u64 / 400);
        let started = tokio::time::Instant::now();
        let end = wait(source, EVERY_WRITE, 10).await.unwrap();
        assert!(!end.went_quiet);
        assert!(end.writes >= 20, "{}", end.writes);
        assert!(started.elapsed() < Duration::from_secs(11));
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_counted_resources_break_the_quiet() {
        // Bundle status writes go on; a wait counting GitRepos only goes quiet at once.
        let (source, _) = scripted(|t| t.as_millis() as u64 / 400);
        let gitrepos = ["gitrepos".to_string()];
        let end = wait(
            source,
            Counted {
                resources: &gitrepos,
                subresource: Some("status"),
            },
            60,
        )
        .await
        .unwrap();
        assert!(end.went_quiet);
        assert_eq!(end.writes, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_scrape_ends_the_wait_with_the_error() {
        let mut calls = 0;
        let source = move || {
            calls += 1;
            std::future::ready(if calls < 3 {
                Ok(totals(calls))
            } else {
                Err(StepError::Metrics(
                    crate::measure::metrics::MetricsError::NoAnswer {
                        address: String::new(),
                        after: Duration::from_secs(5),
                    },
                ))
            })
        };
        let error = wait(source, EVERY_WRITE, 60).await.unwrap_err();
        assert!(error.to_string().contains("no answer within 5s"), "{error}");
    }
}

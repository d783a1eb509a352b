//! `observe_polling`: watch polling for a while; intervals from the git proxy's request
//! log (every GitRepo clones through it, on every provider, whatever the git server),
//! cross-checked with `status.lastPollingTriggered`.

use std::collections::BTreeMap;
use std::time::Duration;

use gitserver::{GitService, RequestFilter};

use super::{Context, StepError, StepOutput};
use crate::measure::polling::{self, RepoPolls};
use crate::measure::recorder::Kind;
use crate::progress::Task;
use crate::slo::Stat;
use crate::suite::ObservePolling;

fn unix_now() -> f64 {
    jiff::Timestamp::now().as_nanosecond() as f64 / 1e9
}

fn parse_time(text: &str) -> Option<f64> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_nanosecond() as f64 / 1e9)
}

/// Runs the step.
pub async fn observe_polling(
    ctx: &mut Context<'_>,
    spec: &ObservePolling,
    label: &str,
) -> Result<StepOutput, StepError> {
    let start = unix_now();
    let cursor = ctx.recorder.cursor();
    let seconds = spec.duration.0.as_secs();
    let task = Task::start(format!("{label}: observing polls"), Some(seconds.max(1)));
    let mut waited = 0;
    while waited < seconds {
        ctx.sleep(Duration::from_secs(1)).await?;
        waited += 1;
        task.set(waited);
    }
    ctx.sleep(spec.duration.0.saturating_sub(Duration::from_secs(seconds)))
        .await?;
    task.finish();
    let end = unix_now();

    let since = jiff::Timestamp::from_nanosecond(((start - 1.0) * 1e9) as i128)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    // Every upload-pack request: advertisements are the polls, and the POSTs tell which
    // advertisement began a fetch rather than a listing.
    let entries = ctx.git_proxy.requests(&RequestFilter {
        since: Some(since),
        ..RequestFilter::default()
    });

    let mut repos: BTreeMap<String, RepoPolls> = BTreeMap::new();
    let mut interval_s = ctx.suite.scale.polling_interval.as_secs_f64();
    let by_repo: BTreeMap<String, &super::world::GitRepoInfo> = ctx
        .world
        .gitrepos
        .iter()
        .map(|g| (ctx.world.repos[g.repo].full_name(), g))
        .collect();
    for gitrepo in &ctx.world.gitrepos {
        interval_s = gitrepo.polling_interval_s;
        repos.insert(gitrepo.name.clone(), RepoPolls::default());
    }
    for entry in &entries {
        let time = entry.unix_nanos as f64 / 1e9;
        if time < start || time > end {
            continue;
        }
        if let Some(gitrepo) = by_repo.get(&entry.repo.to_lowercase())
            && let Some(polls) = repos.get_mut(&gitrepo.name)
        {
            match entry.service {
                GitService::UploadPackAdvertisement => polls.requests.push(time),
                GitService::UploadPack if polling::is_fetch(entry.command.as_deref()) => {
                    polls.fetches.push(time);
                }
                _ => {}
            }
        }
    }
    let namespace = ctx.namespace().to_string();
    ctx.recorder.with_state(|state| {
        let mut last: BTreeMap<String, Option<String>> = BTreeMap::new();
        for observed in &state.log[cursor..] {
            if observed.key.kind != Kind::GitRepo || observed.key.namespace != namespace {
                continue;
            }
            let Some(polls) = repos.get_mut(&observed.key.name) else {
                continue;
            };
            let value = observed.facts.last_polling_triggered.clone();
            let previous = last.insert(observed.key.name.clone(), value.clone());
            if previous.as_ref() != Some(&value)
                && let Some(time) = value.as_deref().and_then(parse_time)
                && time >= start
            {
                polls.status_stamps.push(time);
            }
        }
    });
    let measurement = polling::analyse(
        &repos,
        (start, end),
        interval_s,
        &format!(
            "seconds between polls of each repository over {} (git proxy's request log)",
            spec.duration
        ),
    );
    let message = format!(
        "{} intervals from {} repositories over {}: min {:.2}s, max {:.2}s, spread {:.2}s within repositories, {} missed, {} cross-check mismatches, at most {} listings per interval",
        measurement.samples.len(),
        repos.len(),
        spec.duration,
        measurement.stat(Stat::Min).unwrap_or(f64::NAN),
        measurement.stat(Stat::Max).unwrap_or(f64::NAN),
        measurement.stat(Stat::WithinRepoStddev).unwrap_or(f64::NAN),
        measurement.stat(Stat::Missed).unwrap_or(0.0),
        measurement.stat(Stat::Mismatches).unwrap_or(0.0),
        measurement
            .stat(Stat::MaxAdvertisementsPerInterval)
            .unwrap_or(0.0),
    );
    Ok(StepOutput {
        message,
        measurements: vec![(spec.measure.clone(), measurement)],
        ..StepOutput::default()
    })
}

//! Poll intervals, black-box: from the git server's request log, cross-checked with the
//! `status.lastPollingTriggered` changes the harness saw by watch.
//!
//! The request log is the ground truth of what the git host experienced (the rate-limit
//! and thundering-herd problems users hit are about that); the status field is what the
//! controller claims. Measuring the first and checking it against the second catches both
//! a controller that polls wrongly and one that reports polls it did not make.

use std::collections::BTreeMap;

use crate::measure::stats::Summary;
use crate::results::Measurement;
use crate::slo::{Stat, Unit};
use crate::suite::MeasurementKind;

/// Upload-pack advertisements closer together than this are one poll (an `ls-remote`
/// immediately followed by a fetch).
pub const SAME_POLL_S: f64 = 1.0;

/// How far a `lastPollingTriggered` stamp may be from a logged request and still be the
/// same poll (the field has one-second precision in Kubernetes' time format).
pub const CROSS_CHECK_TOLERANCE_S: f64 = 1.5;

/// Extra slack beyond `interval x 1.1` before a gap counts as a missed poll.
pub const MISSED_POLL_GRACE_S: f64 = 1.0;

/// What was observed for one repository during the window (unix seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoPolls {
    /// Upload-pack advertisement times from the git server's request log.
    pub requests: Vec<f64>,
    /// `status.lastPollingTriggered` values seen by watch.
    pub status_stamps: Vec<f64>,
    /// Times of upload-pack POSTs that fetch objects (protocol v0, or a v2 `fetch`
    /// command; a v2 `ls-refs` is part of a listing, not a fetch). Each fetch began with an
    /// advertisement of its own, which is not a poll.
    pub fetches: Vec<f64>,
}

/// Whether an upload-pack POST with this protocol v2 command (none for v0, or when it
/// could not be read) fetches objects. An unreadable command counts as a fetch: the
/// advertisement before it is then excused, never blamed.
pub fn is_fetch(command: Option<&str>) -> bool {
    matches!(command, None | Some("fetch"))
}

/// The most advertisements that were not the start of a fetch, in any one interval
/// between consecutive polls (`polls`, the merged bursts) of a repository. One poll is one
/// listing (one advertisement); a fetch after a new commit adds its own advertisement
/// followed by its POSTs. So a controller that polls once per interval scores 1 however
/// often it fetches, and one that lists twice scores 2 even when both listings fall in
/// the same second and merge into one poll.
fn max_listings_per_interval(advertisements: &[f64], fetches: &[f64], polls: &[f64]) -> u64 {
    let mut sorted = advertisements.to_vec();
    sorted.sort_by(f64::total_cmp);
    // An advertisement starts a fetch when a fetch POST follows it before the next one.
    let listings: Vec<f64> = sorted
        .iter()
        .enumerate()
        .filter(|(i, at)| {
            let next = sorted.get(i + 1).copied().unwrap_or(f64::INFINITY);
            !fetches.iter().any(|f| *f >= **at && *f < next)
        })
        .map(|(_, at)| *at)
        .collect();
    let mut bounds = polls.to_vec();
    bounds.push(f64::INFINITY);
    bounds
        .windows(2)
        .map(|pair| {
            listings
                .iter()
                .filter(|at| **at >= pair[0] && **at < pair[1])
                .count() as u64
        })
        .max()
        .unwrap_or(0)
}

/// Population standard deviation.
fn stddev(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    (samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Turns per-repository observations into the `intervals` measurement.
pub fn analyse(
    repos: &BTreeMap<String, RepoPolls>,
    window: (f64, f64),
    interval_s: f64,
    description: &str,
) -> Measurement {
    let upper = interval_s * 1.1;
    let mut samples = Vec::new();
    let mut breakdown = BTreeMap::new();
    let mut missed = 0u64;
    let mut mismatches = 0u64;
    let mut notes = Vec::new();
    let mut max_listings = 0u64;
    // Spread within each repository's own intervals: a controller that gives every
    // repository a fixed offset and never varies it spreads the pooled intervals, but
    // not those of any one repository.
    let mut within_squares = 0.0;
    let mut within_count = 0usize;
    let mut min_repo_stddev = f64::INFINITY;
    for (repo, observed) in repos {
        let polls = merge_close(&observed.requests);
        breakdown.insert(format!("{repo} polls"), polls.len() as f64);
        let intervals: Vec<f64> = polls.windows(2).map(|pair| pair[1] - pair[0]).collect();
        if intervals.len() >= 2 {
            let repo_stddev = stddev(&intervals);
            within_squares += repo_stddev.powi(2) * intervals.len() as f64;
            within_count += intervals.len();
            min_repo_stddev = min_repo_stddev.min(repo_stddev);
        }
        samples.extend(intervals);
        let listings = max_listings_per_interval(&observed.requests, &observed.fetches, &polls);
        if listings > 1 {
            notes.push(format!(
                "{repo}: {listings} ref advertisements in one interval that started no fetch (polled {listings} times)"
            ));
        }
        max_listings = max_listings.max(listings);

        let mut points = Vec::with_capacity(polls.len() + 2);
        points.push(window.0);
        points.extend(polls.iter().copied());
        points.push(window.1);
        let repo_missed: u64 = points
            .windows(2)
            .map(|pair| ((pair[1] - pair[0]) / (upper + MISSED_POLL_GRACE_S)).floor() as u64)
            .sum();
        if repo_missed > 0 {
            notes.push(format!("{repo}: {repo_missed} missed poll(s)"));
        }
        missed += repo_missed;

        let (unlogged, unreported) = cross_check(&polls, &observed.status_stamps, window);
        if unlogged + unreported > 0 {
            notes.push(format!(
                "{repo}: {unlogged} lastPollingTriggered value(s) with no request in the git log, {unreported} logged poll(s) never reported in status"
            ));
        }
        mismatches += unlogged + unreported;
    }
    let mut stats = Summary::of(&samples).to_stats();
    stats.insert(Stat::Missed, missed as f64);
    stats.insert(Stat::Mismatches, mismatches as f64);
    stats.insert(Stat::Repos, repos.len() as f64);
    stats.insert(Stat::MaxAdvertisementsPerInterval, max_listings as f64);
    // Without a repository with two intervals there is no within-repository spread to
    // judge; the SLO then fails for want of the stat rather than passing on nothing.
    if within_count > 0 {
        stats.insert(
            Stat::WithinRepoStddev,
            (within_squares / within_count as f64).sqrt(),
        );
        stats.insert(Stat::MinRepoStddev, min_repo_stddev);
    }
    notes.truncate(50);
    Measurement {
        kind: MeasurementKind::Intervals,
        unit: Unit::Seconds,
        description: description.to_string(),
        stats,
        samples,
        breakdown,
        band: Some([interval_s, upper]),
        notes,
    }
}

/// Sorted times with bursts closer than [`SAME_POLL_S`] merged into their first.
fn merge_close(times: &[f64]) -> Vec<f64> {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut merged: Vec<f64> = Vec::with_capacity(sorted.len());
    for time in sorted {
        match merged.last() {
            Some(last) if time - last < SAME_POLL_S => {}
            _ => merged.push(time),
        }
    }
    merged
}

/// `(stamps with no logged request, logged polls with no stamp)`, ignoring polls right at
/// the window's edges whose status write may fall outside it.
fn cross_check(polls: &[f64], stamps: &[f64], window: (f64, f64)) -> (u64, u64) {
    let near = |a: f64, list: &[f64]| {
        list.iter()
            .any(|b| (a - b).abs() <= CROSS_CHECK_TOLERANCE_S)
    };
    let stamps = merge_close(stamps);
    let inside =
        |t: f64| t >= window.0 + CROSS_CHECK_TOLERANCE_S && t <= window.1 - CROSS_CHECK_TOLERANCE_S;
    let unlogged = stamps
        .iter()
        .filter(|s| inside(**s) && !near(**s, polls))
        .count() as u64;
    let unreported = polls
        .iter()
        .filter(|p| inside(**p) && !near(**p, &stamps))
        .count() as u64;
    (unlogged, unreported)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(requests: &[f64], stamps: &[f64]) -> RepoPolls {
        RepoPolls {
            requests: requests.to_vec(),
            status_stamps: stamps.to_vec(),
            fetches: Vec::new(),
        }
    }

    /// Deterministic uniform numbers in [0, 1) (no timing, no seed from the clock).
    fn uniform(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Poll times of `repos` repositories over 5.5 minutes at 60s, each interval
    /// `60 + step(repo)`.
    fn schedule(repos: usize, mut step: impl FnMut(usize) -> f64) -> BTreeMap<String, RepoPolls> {
        (0..repos)
            .map(|r| {
                let mut times = vec![1000.0 + r as f64];
                while *times.last().unwrap() < 1330.0 {
                    let next = times.last().unwrap() + 60.0 + step(r);
                    times.push(next);
                }
                times.pop();
                (format!("r{r:02}"), repo(&times, &times))
            })
            .collect()
    }

    #[test]
    fn a_poll_and_a_fetch_are_one_listing() {
        // ls-remote at 100.0, then the fetch of the new commit: its own advertisement and
        // two negotiation POSTs.
        let mut r = repo(&[40.0, 100.0, 100.2, 160.0], &[]);
        r.fetches = vec![100.25, 100.3];
        let m = analyse(
            &BTreeMap::from([("r".to_string(), r)]),
            (30.0, 170.0),
            60.0,
            "",
        );
        assert_eq!(m.stats[&Stat::MaxAdvertisementsPerInterval], 1.0);
        assert_eq!(m.samples, vec![60.0, 60.0]);
    }

    #[test]
    fn double_polling_is_caught_even_when_merged_into_one_poll() {
        // Two listings 0.3s apart every interval: the merged intervals look perfect.
        let r = repo(&[40.0, 40.3, 100.0, 100.3, 160.0, 160.3], &[]);
        let m = analyse(
            &BTreeMap::from([("r".to_string(), r)]),
            (30.0, 170.0),
            60.0,
            "",
        );
        assert_eq!(
            m.samples,
            vec![60.0, 60.0],
            "the merge hides it from the intervals"
        );
        assert_eq!(m.stats[&Stat::MaxAdvertisementsPerInterval], 2.0);
        assert!(
            m.notes
                .iter()
                .any(|n| n.starts_with("r: 2 ref advertisements")),
            "{:?}",
            m.notes
        );
        // With protocol v2 a listing POSTs ls-refs, which is no fetch and excuses nothing.
        let mut v2 = repo(&[40.0, 40.3], &[]);
        v2.fetches = Vec::new();
        assert!(!is_fetch(Some("ls-refs")));
        assert!(is_fetch(Some("fetch")) && is_fetch(None));
        let m = analyse(
            &BTreeMap::from([("r".to_string(), v2)]),
            (30.0, 50.0),
            60.0,
            "",
        );
        assert_eq!(m.stats[&Stat::MaxAdvertisementsPerInterval], 2.0);
    }

    #[test]
    fn fixed_per_repo_offsets_have_pooled_spread_but_none_within_a_repo() {
        // Each repository always waits 60s + its own constant (0..6s), never varying it.
        let m = analyse(&schedule(30, |r| r as f64 * 0.2), (990.0, 1340.0), 60.0, "");
        assert!(
            m.stats[&Stat::Stddev] > 1.5,
            "pooled spread looks healthy: {}",
            m.stats[&Stat::Stddev]
        );
        assert!(m.stats[&Stat::WithinRepoStddev] < 1e-9, "{:?}", m.stats);
        assert!(m.stats[&Stat::MinRepoStddev] < 1e-9);
    }

    #[test]
    fn real_jitter_passes_both_spreads() {
        // Uniform 0..10% jitter per poll: sd 1.73s at 60s; the SLO floor is 1% (0.6s).
        let mut state = 7;
        let m = analyse(
            &schedule(30, |_| 6.0 * uniform(&mut state)),
            (990.0, 1340.0),
            60.0,
            "",
        );
        assert!(m.stats[&Stat::Stddev] > 1.2, "{:?}", m.stats);
        assert!(m.stats[&Stat::WithinRepoStddev] > 1.2, "{:?}", m.stats);
        assert_eq!(m.stats[&Stat::MaxAdvertisementsPerInterval], 1.0);
    }

    #[test]
    fn within_repo_spread_needs_two_intervals() {
        let r = repo(&[0.0, 61.0], &[]);
        let m = analyse(
            &BTreeMap::from([("r".to_string(), r)]),
            (0.0, 70.0),
            60.0,
            "",
        );
        assert!(
            !m.stats.contains_key(&Stat::WithinRepoStddev),
            "{:?}",
            m.stats
        );
    }

    #[test]
    fn intervals_per_repo_with_merged_fetches() {
        // Polls at 0, 61, 124 (with a fetch 0.2s after the second) and 187.
        let repos = BTreeMap::from([(
            "r1".to_string(),
            repo(
                &[100.0, 161.0, 161.2, 224.0, 287.0],
                &[100.0, 161.0, 224.0, 287.0],
            ),
        )]);
        let m = analyse(&repos, (99.0, 300.0), 60.0, "poll intervals");
        assert_eq!(m.samples, vec![61.0, 63.0, 63.0]);
        assert_eq!(m.stats[&Stat::Missed], 0.0);
        assert_eq!(m.stats[&Stat::Mismatches], 0.0);
        assert_eq!(m.band, Some([60.0, 66.0]));
        assert_eq!(m.breakdown["r1 polls"], 4.0);
    }

    #[test]
    fn a_repo_that_stops_polling_misses_polls() {
        let repos = BTreeMap::from([
            (
                "ok".to_string(),
                repo(&[0.0, 62.0, 125.0, 189.0, 252.0, 316.0], &[]),
            ),
            ("dropped".to_string(), repo(&[0.0, 61.0], &[])),
        ]);
        let m = analyse(&repos, (0.0, 320.0), 60.0, "");
        // 61 -> 320 is 259s: three 67s slots missed.
        assert_eq!(m.stats[&Stat::Missed], 3.0);
        assert!(
            m.notes.iter().any(|n| n.starts_with("dropped: 3 missed")),
            "{:?}",
            m.notes
        );
    }

    #[test]
    fn cross_check_counts_disagreements_inside_the_window() {
        let repos = BTreeMap::from([(
            "r".to_string(),
            // The poll at 130 never reached status; status claims a poll at 190 that the
            // git server never saw.
            repo(&[10.0, 70.0, 130.0], &[10.0, 70.4, 190.0]),
        )]);
        let m = analyse(&repos, (5.0, 200.0), 60.0, "");
        assert_eq!(m.stats[&Stat::Mismatches], 2.0);
    }

    #[test]
    fn no_jitter_shows_as_zero_spread() {
        let times: Vec<f64> = (0..6).map(|i| f64::from(i) * 60.0).collect();
        let repos = BTreeMap::from([("r".to_string(), repo(&times, &times))]);
        let m = analyse(&repos, (0.0, 330.0), 60.0, "");
        assert_eq!(m.stats[&Stat::Stddev], 0.0);
        assert_eq!(m.stats[&Stat::Min], 60.0);
    }
}

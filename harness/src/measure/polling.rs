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
    for (repo, observed) in repos {
        let polls = merge_close(&observed.requests);
        breakdown.insert(format!("{repo} polls"), polls.len() as f64);
        samples.extend(polls.windows(2).map(|pair| pair[1] - pair[0]));

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
    stats.insert("missed".into(), missed as f64);
    stats.insert("mismatches".into(), mismatches as f64);
    stats.insert("repos".into(), repos.len() as f64);
    notes.truncate(50);
    Measurement {
        kind: MeasurementKind::Intervals,
        unit: "s".into(),
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
        }
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
        assert_eq!(m.stats["missed"], 0.0);
        assert_eq!(m.stats["mismatches"], 0.0);
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
        assert_eq!(m.stats["missed"], 3.0);
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
        assert_eq!(m.stats["mismatches"], 2.0);
    }

    #[test]
    fn no_jitter_shows_as_zero_spread() {
        let times: Vec<f64> = (0..6).map(|i| f64::from(i) * 60.0).collect();
        let repos = BTreeMap::from([("r".to_string(), repo(&times, &times))]);
        let m = analyse(&repos, (0.0, 330.0), 60.0, "");
        assert_eq!(m.stats["stddev"], 0.0);
        assert_eq!(m.stats["min"], 60.0);
    }
}

//! Change-point detection over a history of runs: E-divisive means with a permutation test.
//!
//! A nightly history answers "did something change, and since when" only if someone looks
//! at every trend line every morning; a threshold answers it only once the SLO fails. A
//! change-point method finds the run where a series' distribution shifted, and says how
//! sure it is, without assuming a distribution: E-divisive means (Matteson and James, "A
//! Nonparametric Approach for Multiple Change Point Analysis of Multivariate Data", JASA
//! 2014) is what MongoDB's performance CI runs over its nightly results for the same
//! purpose. No maintained Rust crate implements it (the `changepoint` crate is Bayesian
//! online detection, a different model with priors to tune), so it is implemented here.
//!
//! The statistic for a split of a series at `tau` is the energy distance between the two
//! sides, scaled by `tau (n - tau) / n`: large when the values before and after differ in
//! location (or shape). The best split of a segment is tested by permutation: the same
//! maximum over random reorderings of the segment gives its null distribution, and the
//! p-value is the share of reorderings that did at least as well. A significant split
//! divides its segment and the search repeats on every segment (hierarchically, the
//! strongest split first) until no split is significant. Permutations come from a seeded
//! generator, so the same history always yields the same change points.

/// How the detection is run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Reorderings per test.
    pub permutations: usize,
    /// The largest p-value that counts as a change.
    pub significance: f64,
    /// The fewest runs on each side of a change: fewer cannot tell a shift from an outlier.
    pub min_segment: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            permutations: 399,
            significance: 0.005,
            min_segment: 3,
        }
    }
}

/// One change found in a series.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePoint {
    /// Index of the first value after the change.
    pub index: usize,
    /// Mean of the segment before it.
    pub before_mean: f64,
    /// Mean of the segment after it.
    pub after_mean: f64,
    /// The permutation test's p-value.
    pub p_value: f64,
    /// The split statistic (scaled energy distance).
    pub statistic: f64,
}

impl ChangePoint {
    /// `after - before`.
    pub fn change(&self) -> f64 {
        self.after_mean - self.before_mean
    }

    /// The change relative to the mean before it (none when that is zero).
    pub fn relative_change(&self) -> Option<f64> {
        (self.before_mean != 0.0).then(|| self.change() / self.before_mean.abs())
    }

    /// `1 - p`.
    pub fn confidence(&self) -> f64 {
        1.0 - self.p_value
    }
}

/// A small, fast, seedable generator (SplitMix64): the permutations need to be reproducible
/// more than they need to be cryptographic.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0), without modulo bias.
    pub fn below(&mut self, bound: usize) -> usize {
        let bound = bound as u64;
        let zone = u64::MAX - u64::MAX % bound;
        loop {
            let value = self.next_u64();
            if value < zone {
                return (value % bound) as usize;
            }
        }
    }

    /// Shuffles in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// A stable 64-bit hash of a text (FNV-1a), to seed each series' permutations by its name.
pub fn seed_of(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The best split of `values`: the `tau` (at least `min_segment` on each side) and the
/// statistic of the best pair of adjacent segments `[0, tau)` and `[tau, kappa)`, over every
/// `kappa`. Searching the right end as well is what lets E-divisive find a burst in the
/// middle of a series, whose two outer sides are alike. O(n²) with prefix sums of the
/// distances, so a permutation test stays cheap.
pub fn best_split(values: &[f64], min_segment: usize) -> Option<(usize, f64)> {
    let n = values.len();
    let min_segment = min_segment.max(1);
    if n < 2 * min_segment {
        return None;
    }
    // prefix[k][j]: the sum of |x_k - x_i| over i < j.
    let prefix: Vec<Vec<f64>> = (0..n)
        .map(|k| {
            let mut row = Vec::with_capacity(n + 1);
            let mut sum = 0.0;
            row.push(0.0);
            for value in values {
                sum += (values[k] - value).abs();
                row.push(sum);
            }
            row
        })
        .collect();
    let pairs = |k: f64| k * (k - 1.0) / 2.0;
    let mut best: Option<(usize, f64)> = None;
    // Distances within [0, tau).
    let mut within_left: f64 = (0..min_segment).map(|k| prefix[k][k]).sum();
    for tau in min_segment..=n - min_segment {
        if tau > min_segment {
            within_left += prefix[tau - 1][tau - 1];
        }
        // The right segment [tau, kappa], grown one point at a time.
        let mut within_right = 0.0;
        let mut between = 0.0;
        for (kappa, row) in prefix.iter().enumerate().skip(tau) {
            within_right += row[kappa] - row[tau];
            between += row[tau];
            let right_len = kappa + 1 - tau;
            if right_len < min_segment {
                continue;
            }
            let (left, right) = (tau as f64, right_len as f64);
            let mean_left = if tau > 1 {
                within_left / pairs(left)
            } else {
                0.0
            };
            let mean_right = if right_len > 1 {
                within_right / pairs(right)
            } else {
                0.0
            };
            let statistic = left * right / (left + right)
                * (2.0 * between / (left * right) - mean_left - mean_right);
            if best.is_none_or(|(_, b)| statistic > b) {
                best = Some((tau, statistic));
            }
        }
    }
    best
}

/// Every change point of `values` (in index order), found hierarchically and kept only
/// while significant.
pub fn detect(values: &[f64], settings: &Settings, seed: u64) -> Vec<ChangePoint> {
    let mut rng = SplitMix64::new(seed);
    let mut cuts: Vec<usize> = vec![0, values.len()];
    let mut found: Vec<(usize, f64, f64)> = Vec::new();
    loop {
        // The strongest split over all current segments.
        let candidate = cuts
            .windows(2)
            .filter_map(|w| {
                let (start, end) = (w[0], w[1]);
                best_split(&values[start..end], settings.min_segment)
                    .map(|(tau, statistic)| (start, end, start + tau, statistic))
            })
            .max_by(|a, b| a.3.total_cmp(&b.3));
        let Some((start, end, at, statistic)) = candidate else {
            break;
        };
        if statistic <= 0.0 {
            break;
        }
        let mut shuffled = values[start..end].to_vec();
        let mut as_good = 0;
        for _ in 0..settings.permutations {
            rng.shuffle(&mut shuffled);
            let permuted = best_split(&shuffled, settings.min_segment).map_or(0.0, |(_, s)| s);
            if permuted >= statistic {
                as_good += 1;
            }
        }
        let p_value = (as_good + 1) as f64 / (settings.permutations + 1) as f64;
        if p_value > settings.significance {
            break;
        }
        found.push((at, p_value, statistic));
        cuts.push(at);
        cuts.sort_unstable();
    }
    found.sort_by_key(|(at, _, _)| *at);
    let mean = |slice: &[f64]| slice.iter().sum::<f64>() / slice.len().max(1) as f64;
    found
        .iter()
        .map(|&(at, p_value, statistic)| {
            let position = cuts.iter().position(|c| *c == at).expect("a cut");
            let (before, after) = (cuts[position - 1], cuts[position + 1]);
            ChangePoint {
                index: at,
                before_mean: mean(&values[before..at]),
                after_mean: mean(&values[at..after]),
                p_value,
                statistic,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise around `level`: deterministic, roughly uniform in ±spread.
    fn noisy(rng: &mut SplitMix64, level: f64, spread: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| level + spread * ((rng.next_u64() % 10_000) as f64 / 5_000.0 - 1.0))
            .collect()
    }

    /// The statistic straight from its definition, for `[0, tau)` against `[tau, kappa)`.
    fn naive(values: &[f64], tau: usize, kappa: usize) -> f64 {
        let (left, right) = (&values[..tau], &values[tau..kappa]);
        let mut between = 0.0;
        for x in left {
            for y in right {
                between += (x - y).abs();
            }
        }
        between /= (left.len() * right.len()) as f64;
        // Within a side: the mean over distinct pairs.
        let within = |side: &[f64]| {
            if side.len() < 2 {
                return 0.0;
            }
            let mut sum = 0.0;
            for i in 0..side.len() {
                for j in 0..i {
                    sum += (side[i] - side[j]).abs();
                }
            }
            sum / (side.len() * (side.len() - 1) / 2) as f64
        };
        let (l, r) = (left.len() as f64, right.len() as f64);
        l * r / (l + r) * (2.0 * between - within(left) - within(right))
    }

    #[test]
    fn the_running_sums_match_the_definition() {
        let mut rng = SplitMix64::new(7);
        let values = noisy(&mut rng, 10.0, 3.0, 17);
        let n = values.len();
        for min in [1, 2, 3, 5] {
            let (tau, statistic) = best_split(&values, min).unwrap();
            assert!(tau >= min && n - tau >= min);
            let mut expected = f64::NEG_INFINITY;
            let mut at = 0;
            for t in min..=n - min {
                for kappa in t + min..=n {
                    let q = naive(&values, t, kappa);
                    if q > expected {
                        (expected, at) = (q, t);
                    }
                }
            }
            assert!(
                (statistic - expected).abs() < 1e-9,
                "{statistic} vs {expected}"
            );
            assert_eq!(tau, at);
        }
        assert_eq!(
            best_split(&values[..5], 3),
            None,
            "too short for two segments"
        );
    }

    #[test]
    fn a_shift_is_found_where_it_began() {
        let mut rng = SplitMix64::new(1);
        let mut values = noisy(&mut rng, 1.0, 0.1, 15);
        values.extend(noisy(&mut rng, 1.5, 0.1, 8));
        let found = detect(&values, &Settings::default(), 42);
        assert_eq!(found.len(), 1, "{found:?}");
        let change = &found[0];
        assert_eq!(change.index, 15);
        assert!((change.change() - 0.5).abs() < 0.1, "{change:?}");
        assert!(change.relative_change().unwrap() > 0.4);
        assert!(change.p_value <= 0.01 && change.confidence() >= 0.99);
    }

    #[test]
    fn noise_alone_raises_no_alarm() {
        let mut alarms = 0;
        for seed in 0..40 {
            let mut rng = SplitMix64::new(1000 + seed);
            let values = noisy(&mut rng, 2.0, 0.5, 25);
            alarms += detect(&values, &Settings::default(), seed).len();
        }
        // At a 0.5% significance over 40 series, 0.2 alarms are expected; more than one
        // would say the p-values are not what they claim.
        assert!(alarms <= 1, "{alarms} false alarms");
    }

    #[test]
    fn a_burst_of_bad_runs_is_bracketed_by_two_changes() {
        let mut rng = SplitMix64::new(3);
        let mut values = noisy(&mut rng, 10.0, 1.0, 12);
        values.extend(noisy(&mut rng, 40.0, 1.0, 5));
        values.extend(noisy(&mut rng, 10.0, 1.0, 8));
        let found = detect(&values, &Settings::default(), 9);
        let at: Vec<usize> = found.iter().map(|c| c.index).collect();
        assert_eq!(at, [12, 17], "{found:?}");
        assert!(found[0].change() > 25.0 && found[1].change() < -25.0);
    }

    #[test]
    fn constant_and_short_series_have_no_change() {
        assert!(detect(&[5.0; 30], &Settings::default(), 1).is_empty());
        assert!(detect(&[1.0, 9.0, 1.0, 9.0, 1.0], &Settings::default(), 1).is_empty());
        assert!(detect(&[], &Settings::default(), 1).is_empty());
    }

    #[test]
    fn the_same_series_gives_the_same_answer() {
        let mut values = vec![3.0; 10];
        values.extend([3.4, 3.5, 3.3, 3.6]);
        let settings = Settings {
            significance: 0.2,
            ..Settings::default()
        };
        let a = detect(&values, &settings, seed_of("suite/slo"));
        let b = detect(&values, &settings, seed_of("suite/slo"));
        assert_eq!(a, b);
        assert!(!a.is_empty());
    }

    #[test]
    fn shuffles_are_uniform_enough() {
        let mut rng = SplitMix64::new(5);
        let mut first = [0usize; 4];
        for _ in 0..4000 {
            let mut items = [0, 1, 2, 3];
            rng.shuffle(&mut items);
            first[items[0]] += 1;
        }
        for count in first {
            assert!((800..1200).contains(&count), "{first:?}");
        }
    }
}

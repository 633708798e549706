//! The statistics of a comparison, in plain functions over plain numbers (so they are tested and
//! simulated without a network):
//!
//! - latency: the Mann-Whitney U test (is green slower than blue?), with the Hodges-Lehmann
//!   estimate of the shift (the median of every green − blue difference) and its
//!   distribution-free confidence interval, as Kayenta's classifier does;
//! - errors: Fisher's exact test (are green's errors more frequent than blue's?).
//!
//! Sample sizes are bounded (see `MAX_COMPARE_SAMPLES`), so the n·m pairwise differences fit in a
//! few megabytes and everything here takes milliseconds.

/// The standard normal distribution function.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function (W. J. Cody's rational approximations via the
/// Numerical Recipes form; relative error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The `p` quantile of the standard normal distribution (Acklam's algorithm, refined by one
/// Newton step; `p` in (0, 1)).
pub fn normal_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // One Newton step on Φ(x) = p.
    let e = normal_cdf(x) - p;
    let density = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    x - e / density
}

/// What the Mann-Whitney test and the Hodges-Lehmann estimate say about `green` − `blue`.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// The Hodges-Lehmann estimate: the median of every green − blue difference.
    pub estimate: f64,
    /// Its two-sided confidence interval at the asked confidence.
    pub low: f64,
    pub high: f64,
    /// One-sided p-value of "green is slower" (normal approximation with ties corrected).
    pub p_slower: f64,
}

/// The Mann-Whitney U test and the Hodges-Lehmann shift of `green` against `blue`, with a
/// confidence interval at `confidence` (0.99 for 99%). `None` with fewer than two values a side.
pub fn shift(blue: &[f64], green: &[f64], confidence: f64) -> Option<Shift> {
    let (n, m) = (blue.len(), green.len());
    if n < 2 || m < 2 {
        return None;
    }
    // Ranks of the pooled values, ties sharing their average rank.
    let mut pooled: Vec<(f64, bool)> = blue
        .iter()
        .map(|v| (*v, false))
        .chain(green.iter().map(|v| (*v, true)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut green_rank_sum = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        let tied = (j - i + 1) as f64;
        tie_term += tied * tied * tied - tied;
        green_rank_sum += pooled[i..=j].iter().filter(|(_, g)| *g).count() as f64 * average_rank;
        i = j + 1;
    }
    let (nf, mf) = (n as f64, m as f64);
    let u_green = green_rank_sum - mf * (mf + 1.0) / 2.0;
    let mean = nf * mf / 2.0;
    let total = nf + mf;
    let variance = nf * mf / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
    let p_slower = if variance > 0.0 {
        // Continuity-corrected.
        1.0 - normal_cdf((u_green - mean - 0.5) / variance.sqrt())
    } else {
        0.5
    };

    let mut differences: Vec<f64> = Vec::with_capacity(n * m);
    for g in green {
        for b in blue {
            differences.push(g - b);
        }
    }
    let count = differences.len();
    // Four order statistics, each found in linear time (no full sort of n·m values).
    let mut nth = |index: usize| *differences.select_nth_unstable_by(index, f64::total_cmp).1;
    let estimate = if count % 2 == 1 {
        nth(count / 2)
    } else {
        (nth(count / 2 - 1) + nth(count / 2)) / 2.0
    };
    // The interval's ends are order statistics of the differences: the k-th from each end, k
    // from the U distribution's normal approximation.
    let z = normal_quantile(0.5 + confidence / 2.0);
    let k = (mean - z * (nf * mf * (total + 1.0) / 12.0).sqrt()).floor();
    let k = (k.max(1.0) as usize).min(count);
    let (low, high) = (nth(k - 1), nth(count - k));
    Some(Shift {
        estimate,
        low,
        high,
        p_slower,
    })
}

/// Fisher's exact test, one-sided: the probability of seeing at least `green_errors` of
/// `green_total` errors on green if errors were as frequent on both sides (blue: `blue_errors`
/// of `blue_total`).
pub fn fisher_greater(
    green_errors: u64,
    green_total: u64,
    blue_errors: u64,
    blue_total: u64,
) -> f64 {
    let total = green_total + blue_total;
    let errors = green_errors + blue_errors;
    if total == 0 || errors == 0 {
        return 1.0;
    }
    let log_factorials = log_factorials(total as usize);
    let ln_choose = |n: u64, k: u64| {
        log_factorials[n as usize] - log_factorials[k as usize] - log_factorials[(n - k) as usize]
    };
    let denominator = ln_choose(total, green_total);
    let most = errors.min(green_total);
    let mut p = 0.0;
    for k in green_errors..=most {
        if errors - k > blue_total {
            continue;
        }
        p +=
            (ln_choose(errors, k) + ln_choose(total - errors, green_total - k) - denominator).exp();
    }
    p.min(1.0)
}

fn log_factorials(n: usize) -> Vec<f64> {
    let mut table = Vec::with_capacity(n + 1);
    table.push(0.0);
    let mut sum = 0.0;
    for i in 1..=n {
        sum += (i as f64).ln();
        table.push(sum);
    }
    table
}

/// A small deterministic generator for simulations (xorshift64*): the same seed, the same runs.
#[cfg(test)]
pub(crate) struct Rng(u64);

#[cfg(test)]
impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-normal around `median`, with `spread` the standard deviation of its logarithm: the
    /// usual shape of latencies.
    pub(crate) fn latency(&mut self, median: f64, spread: f64) -> f64 {
        let (u1, u2) = (self.next().max(1e-12), self.next());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (spread * z).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_distribution_and_its_quantiles_agree_with_tables() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-2.326_348) - 0.01).abs() < 1e-6);
        assert!((normal_quantile(0.995) - 2.575_829).abs() < 1e-5);
        assert!((normal_quantile(0.95) - 1.644_854).abs() < 1e-5);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-5);
    }

    #[test]
    fn the_shift_of_a_constant_offset_is_found_exactly() {
        let blue: Vec<f64> = (0..50).map(|i| 10.0 + i as f64 * 0.1).collect();
        let green: Vec<f64> = blue.iter().map(|v| v + 3.0).collect();
        let shift = shift(&blue, &green, 0.99).unwrap();
        assert!((shift.estimate - 3.0).abs() < 1e-9, "{shift:?}");
        assert!(shift.low < 3.0 && shift.high > 3.0, "{shift:?}");
        assert!(shift.p_slower < 1e-6, "{shift:?}");
        let same = super::shift(&blue, &blue, 0.99).unwrap();
        assert_eq!(same.estimate, 0.0);
        assert!(same.p_slower > 0.4, "{same:?}");
    }

    #[test]
    fn ties_do_not_break_the_test() {
        let blue = vec![5.0; 40];
        let green = vec![5.0; 40];
        let shift = shift(&blue, &green, 0.99).unwrap();
        assert_eq!((shift.estimate, shift.low, shift.high), (0.0, 0.0, 0.0));
        assert!(shift.p_slower.is_finite());
        assert!(super::shift(&[1.0], &green, 0.99).is_none());
    }

    #[test]
    fn fisher_agrees_with_a_worked_example() {
        // Green 7 errors of 10, blue 1 of 10: p = 0.0099 (one-sided, hypergeometric tail).
        let p = fisher_greater(7, 10, 1, 10);
        assert!((p - 0.009_883).abs() < 1e-5, "{p}");
        assert_eq!(fisher_greater(0, 200, 0, 200), 1.0);
        assert!(fisher_greater(2, 200, 2, 200) > 0.5);
        assert!(fisher_greater(20, 200, 0, 200) < 1e-5);
    }

    /// The power the issue asks for, by seeded simulation: with 200 samples a side and a
    /// typical latency spread, a doubled median is detected in at least 99% of runs, and an
    /// identical green is never judged slower beyond the allowed increase (false fails ≤ 1%).
    #[test]
    fn a_doubled_median_is_detected_and_an_identical_green_is_not_failed() {
        let runs = 200;
        let (mut detected, mut false_fails) = (0, 0);
        for seed in 0..runs {
            let mut rng = Rng::new(seed);
            let blue: Vec<f64> = (0..200).map(|_| rng.latency(5.0, 0.3)).collect();
            let slow: Vec<f64> = (0..200).map(|_| rng.latency(10.0, 0.3)).collect();
            let same: Vec<f64> = (0..200).map(|_| rng.latency(5.0, 0.3)).collect();
            let allowed = 0.2 * 5.0;
            if shift(&blue, &slow, 0.99).unwrap().low > allowed {
                detected += 1;
            }
            if shift(&blue, &same, 0.99).unwrap().low > allowed {
                false_fails += 1;
            }
        }
        assert!(detected * 100 >= runs * 99, "{detected} of {runs}");
        assert!(false_fails * 100 <= runs, "{false_fails} of {runs}");
    }
}

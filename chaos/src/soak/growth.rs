//! The soak's growth test: does a curve that should be flat (memory,
//! queues) keep climbing after warm-up?
//!
//! The rule: take the samples after warm-up, keep their second half (the
//! first half still holds the climb to a working set: caches filling,
//! pools opening), fit a least-squares line, and call the curve growing
//! when the line rises over that half by more than `relative` of the half's
//! mean *and* more than an absolute `floor`. For memory the relative part
//! makes the test scale-free (a 1 GiB JVM and a 20 MiB service are judged
//! alike). A queue (consumer lag, outbox depth and age) has no relative
//! part, only its floor: a queue that keeps up drains, so its level says
//! nothing and its rise everything, and a consumer slower than its producer
//! by a fixed rate makes a straight ramp whose rise over the last half is
//! always less than half of its mean there (a judge of the relative kind
//! passed such a ramp in the first measured soaks). The floor keeps a queue
//! that sits near zero from failing on noise of a few units. A leak or a
//! stuck queue rises steadily and fails; a sawtooth (garbage collection,
//! compaction) fits a near-flat line and passes. Fewer than [`MIN_POINTS`] samples are not
//! judged: a short soak says so instead of guessing.

use serde::Serialize;

/// The fewest samples in the judged half for a verdict.
pub const MIN_POINTS: usize = 4;

/// How much a curve may rise over the judged half.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// Of the judged half's mean (0.2: a fifth).
    pub relative: f64,
    /// In the curve's own unit.
    pub floor: f64,
}

/// What the test found for one curve.
#[derive(Debug, Clone, Serialize)]
pub struct Growth {
    pub curve: String,
    /// Samples judged (the second half after warm-up).
    pub points: usize,
    pub mean: f64,
    /// Least-squares slope, per minute.
    pub slope_per_min: f64,
    /// The fitted line's rise over the judged span.
    pub rise: f64,
    /// The most the rise may be: max(relative × mean, floor).
    pub allowed: f64,
    /// None: too few samples to judge.
    pub growing: Option<bool>,
}

/// Judges `samples` (minute, value) taken from `warm_up_min` on.
pub fn judge(curve: &str, samples: &[(f64, f64)], warm_up_min: f64, bound: Bound) -> Growth {
    let after: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(minute, value)| *minute >= warm_up_min && value.is_finite())
        .collect();
    let half = &after[after.len() / 2..];
    let n = half.len() as f64;
    let mean = half.iter().map(|(_, y)| y).sum::<f64>() / n.max(1.0);
    let mean_x = half.iter().map(|(x, _)| x).sum::<f64>() / n.max(1.0);
    let sxx: f64 = half.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    let sxy: f64 = half.iter().map(|(x, y)| (x - mean_x) * (y - mean)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let span = match (half.first(), half.last()) {
        (Some(first), Some(last)) => last.0 - first.0,
        _ => 0.0,
    };
    let rise = slope * span;
    let allowed = (bound.relative * mean.abs()).max(bound.floor);
    Growth {
        curve: curve.to_owned(),
        points: half.len(),
        mean,
        slope_per_min: slope,
        rise,
        allowed,
        growing: (half.len() >= MIN_POINTS).then_some(rise > allowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Bound = Bound {
        relative: 0.2,
        floor: 10.0,
    };

    #[test]
    fn a_steady_leak_grows_and_a_sawtooth_does_not() {
        let leak: Vec<_> = (0..60)
            .map(|m| (m as f64, 100.0 + 2.0 * m as f64))
            .collect();
        let judged = judge("leak", &leak, 10.0, BOUND);
        assert_eq!(judged.growing, Some(true));
        assert!((judged.slope_per_min - 2.0).abs() < 1e-9);

        let saw: Vec<_> = (0..60)
            .map(|m| (m as f64, 500.0 + 40.0 * ((m % 7) as f64)))
            .collect();
        assert_eq!(judge("saw", &saw, 10.0, BOUND).growing, Some(false));
    }

    #[test]
    fn the_warm_up_climb_and_small_noise_near_zero_pass() {
        // Climbs for 20 minutes to a working set, then flat.
        let warm: Vec<_> = (0..60)
            .map(|m| (m as f64, 300.0_f64.min(15.0 * m as f64)))
            .collect();
        assert_eq!(judge("warm", &warm, 5.0, BOUND).growing, Some(false));
        // A lag of 0..3 messages: under the floor.
        let lag: Vec<_> = (0..60).map(|m| (m as f64, (m % 4) as f64)).collect();
        assert_eq!(judge("lag", &lag, 5.0, BOUND).growing, Some(false));
    }

    #[test]
    fn a_queue_ramping_from_a_high_level_grows() {
        // A consumer 100 events a second short of its producer, for 30
        // minutes: the level is high, the rise small beside it, but unbounded.
        let ramp: Vec<_> = (0..30)
            .map(|m| (m as f64, 50_000.0 + 6_000.0 * m as f64))
            .collect();
        let queue = Bound {
            relative: 0.0,
            floor: 1_000.0,
        };
        assert_eq!(judge("lag", &ramp, 10.0, queue).growing, Some(true));
        let relative = Bound {
            relative: 0.5,
            floor: 1_000.0,
        };
        assert_eq!(
            judge("lag", &ramp, 10.0, relative).growing,
            Some(false),
            "the rule a queue is no longer judged by"
        );
    }

    #[test]
    fn too_few_samples_are_not_judged() {
        let short = [(0.0, 1.0), (1.0, 50.0), (2.0, 100.0), (3.0, 900.0)];
        assert_eq!(judge("short", &short, 0.0, BOUND).growing, None);
    }
}

//! Spreading expiry times, so that entries cached together do not all
//! expire together.
//!
//! Entries cached in one burst (every reader's first read after a restart)
//! would otherwise expire in one burst too, once per TTL, and their refresh
//! would land on the stores all at once: a load spike, and a latency spike
//! for whoever waits on it. Spreading each entry's TTL by its key, not at
//! random, keeps the spread reproducible.

use std::time::Duration;

/// Between half of `ttl` and all of it, by `key`: keys scrambled
/// by a multiplicative (Fibonacci) hash, so that neighbouring ids land far
/// apart.
pub fn spread(ttl: Duration, key: i64) -> Duration {
    let scrambled = (key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let fraction = scrambled as f64 / f64::from(u32::MAX);
    ttl.mul_f64(1.0 - fraction / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_spread_over_the_second_half_of_the_ttl() {
        let ttl = Duration::from_secs(4);
        let spreads: Vec<Duration> = (1..=1_000).map(|id| spread(ttl, id)).collect();
        assert!(spreads.iter().all(|&d| d >= ttl / 2 && d <= ttl));
        let early = spreads.iter().filter(|&&d| d < ttl.mul_f64(0.75)).count();
        assert!(
            (400..600).contains(&early),
            "{early} of 1000 in the first half"
        );
    }
}

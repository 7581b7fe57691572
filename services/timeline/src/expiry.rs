//! Spreading the expiry of cached entries, so that entries cached in one
//! burst do not expire in one burst.
//!
//! Every reader's first read after a restart fills a cache at once; with one
//! fixed TTL every one of those entries would expire in the same instant and
//! their reloads land on the stores together. Each entry's lifetime is
//! therefore somewhere in the second half of the TTL, chosen by its key:
//! reproducibly (the same key always gets the same share, unlike a random
//! jitter), and far apart for neighbouring keys.

use std::time::Duration;

/// Between half of `ttl` and all of it, by `key`: keys scrambled by a
/// multiplicative (Fibonacci) hash, so that neighbouring ids land far apart.
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

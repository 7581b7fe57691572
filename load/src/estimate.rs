//! `estimate`: the back-of-envelope calculator that opens every "design
//! Twitter" answer. From daily active users to requests per second and bytes
//! per day: the numbers that decide push versus pull and how much Redis to
//! buy. Arithmetic only, so that the assumptions stay visible as flags.

use std::fmt;

/// Timeline reads per tweet written, as the article's design assumes: the
/// default of `estimate` and of `loadtest soak`'s read ratio.
pub const READ_WRITE_RATIO: f64 = 100.0;

/// The assumptions of an estimate; each one is a flag.
#[derive(Debug, Clone, clap::Args)]
pub struct Assumptions {
    /// Daily active users (suffixes K, M, B allowed: 200M).
    #[arg(long, default_value = "200M", value_parser = parse_count)]
    pub dau: f64,
    /// Tweets posted per active user per day.
    #[arg(long, default_value_t = 2.0)]
    pub posts_per_user: f64,
    /// Timeline reads per tweet written.
    #[arg(long, default_value_t = READ_WRITE_RATIO)]
    pub read_write_ratio: f64,
    /// Bytes stored per tweet (text, ids, timestamps, metadata).
    #[arg(long, default_value_t = 300.0)]
    pub tweet_bytes: f64,
    /// Peak traffic over average.
    #[arg(long, default_value_t = 2.0)]
    pub peak_factor: f64,
}

#[derive(Debug, PartialEq)]
pub struct Estimate {
    pub writes_per_sec: f64,
    pub reads_per_sec: f64,
    pub peak_reads_per_sec: f64,
    pub bytes_per_day: f64,
    pub bytes_per_year: f64,
}

const SECONDS_PER_DAY: f64 = 86_400.0;

pub fn estimate(assumptions: &Assumptions) -> Estimate {
    let tweets_per_day = assumptions.dau * assumptions.posts_per_user;
    let writes_per_sec = tweets_per_day / SECONDS_PER_DAY;
    let reads_per_sec = writes_per_sec * assumptions.read_write_ratio;
    let bytes_per_day = tweets_per_day * assumptions.tweet_bytes;
    Estimate {
        writes_per_sec,
        reads_per_sec,
        peak_reads_per_sec: reads_per_sec * assumptions.peak_factor,
        bytes_per_day,
        bytes_per_year: bytes_per_day * 365.0,
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "writes (tweets) per second   {:>12.0}",
            self.writes_per_sec
        )?;
        writeln!(
            f,
            "timeline reads per second    {:>12.0}",
            self.reads_per_sec
        )?;
        writeln!(
            f,
            "peak reads per second        {:>12.0}",
            self.peak_reads_per_sec
        )?;
        writeln!(
            f,
            "storage per day              {:>12}",
            human_bytes(self.bytes_per_day)
        )?;
        writeln!(
            f,
            "storage per year             {:>12}",
            human_bytes(self.bytes_per_year)
        )
    }
}

fn parse_count(raw: &str) -> Result<f64, String> {
    let (digits, scale) = match raw.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&raw[..raw.len() - 1], 1e3),
        Some('M') => (&raw[..raw.len() - 1], 1e6),
        Some('B') => (&raw[..raw.len() - 1], 1e9),
        _ => (raw, 1.0),
    };
    let value: f64 = digits
        .parse()
        .map_err(|_| format!("not a count: {raw:?}"))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value * scale)
    } else {
        Err(format!("not a count: {raw:?}"))
    }
}

fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_hundred_million_users() {
        let assumptions = Assumptions {
            dau: parse_count("200M").unwrap(),
            posts_per_user: 2.0,
            read_write_ratio: 100.0,
            tweet_bytes: 300.0,
            peak_factor: 2.0,
        };
        let e = estimate(&assumptions);
        assert_eq!(e.writes_per_sec.round(), 4_630.0);
        assert_eq!(e.reads_per_sec.round(), 462_963.0);
        assert_eq!(human_bytes(e.bytes_per_day), "120.0 GB");
        assert_eq!(human_bytes(e.bytes_per_year), "43.8 TB");
    }

    #[test]
    fn counts_take_suffixes_and_refuse_garbage() {
        assert_eq!(parse_count("1.5K"), Ok(1500.0));
        assert_eq!(parse_count("3b"), Ok(3e9));
        assert!(parse_count("lots").is_err());
        assert!(parse_count("-1M").is_err());
    }
}

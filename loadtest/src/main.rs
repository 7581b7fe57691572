//! chirp's load-test tool. So far it has the first of its subcommands:
//! `estimate`, the back-of-envelope calculator that opens every "design
//! Twitter" answer: from daily active users to requests per second and bytes
//! per day, the numbers that decide push versus pull and how much Redis to buy.
//! Seeding and load generation are still to come.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "loadtest", about = "Load tests and estimates for chirp")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Back-of-envelope capacity estimate.
    Estimate(Workload),
}

/// The assumptions of an estimate; each one is a flag.
#[derive(Debug, Clone, clap::Args)]
struct Workload {
    /// Daily active users (suffixes K, M, B allowed: 200M).
    #[arg(long, default_value = "200M", value_parser = parse_count)]
    dau: f64,
    /// Tweets posted per active user per day.
    #[arg(long, default_value_t = 2.0)]
    posts_per_user: f64,
    /// Timeline reads per tweet written.
    #[arg(long, default_value_t = 100.0)]
    read_write_ratio: f64,
    /// Bytes stored per tweet (text, ids, timestamps, metadata).
    #[arg(long, default_value_t = 300.0)]
    tweet_bytes: f64,
    /// Peak traffic over average.
    #[arg(long, default_value_t = 2.0)]
    peak_factor: f64,
}

#[derive(Debug, PartialEq)]
struct Estimate {
    writes_per_sec: f64,
    reads_per_sec: f64,
    peak_reads_per_sec: f64,
    bytes_per_day: f64,
    bytes_per_year: f64,
}

const SECONDS_PER_DAY: f64 = 86_400.0;

fn estimate(w: &Workload) -> Estimate {
    let tweets_per_day = w.dau * w.posts_per_user;
    let writes_per_sec = tweets_per_day / SECONDS_PER_DAY;
    let reads_per_sec = writes_per_sec * w.read_write_ratio;
    let bytes_per_day = tweets_per_day * w.tweet_bytes;
    Estimate {
        writes_per_sec,
        reads_per_sec,
        peak_reads_per_sec: reads_per_sec * w.peak_factor,
        bytes_per_day,
        bytes_per_year: bytes_per_day * 365.0,
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

fn main() {
    let Command::Estimate(workload) = Cli::parse().command;
    let e = estimate(&workload);
    println!("writes (tweets) per second   {:>12.0}", e.writes_per_sec);
    println!("timeline reads per second    {:>12.0}", e.reads_per_sec);
    println!(
        "peak reads per second        {:>12.0}",
        e.peak_reads_per_sec
    );
    println!(
        "storage per day              {:>12}",
        human_bytes(e.bytes_per_day)
    );
    println!(
        "storage per year             {:>12}",
        human_bytes(e.bytes_per_year)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_hundred_million_users() {
        let workload = Workload {
            dau: parse_count("200M").unwrap(),
            posts_per_user: 2.0,
            read_write_ratio: 100.0,
            tweet_bytes: 300.0,
            peak_factor: 2.0,
        };
        let e = estimate(&workload);
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

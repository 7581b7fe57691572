//! A second opinion on the Redis floor from `redis-benchmark`, Redis's own
//! C load generator, when it is installed: a reference no Rust client
//! overhead can flatter.
//!
//! It sends one command at a time (with `-P` copies per round trip), so it
//! cannot replay the page's three-command pipeline exactly; it runs the
//! page's `ZRANGE … BYLEX REV LIMIT`, the one command of the three that does
//! real work, three to a round trip, and a page is counted as three of them.

use std::process::Command;

use anyhow::{Context, bail};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct RedisBenchmark {
    /// The command line, for the record.
    pub command: String,
    pub commands_per_sec: f64,
    /// A third of the commands: three commands make a page.
    pub pages_per_sec: f64,
}

/// The `ZRANGE` of one page of `key`, as `chirp_timeline_store` builds
/// it: newest first, down to just above the sentinel member 0.
fn page_command(key: &str, want: usize) -> Vec<String> {
    let sentinel = format!("({:019}", 0);
    [
        key,
        "+",
        &sentinel,
        "BYLEX",
        "REV",
        "LIMIT",
        "0",
        &want.to_string(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Runs `redis-benchmark` against `host:port` with `clients` connections,
/// or returns `None` if it is not installed.
pub fn run(
    host: &str,
    port: u16,
    key: &str,
    want: usize,
    clients: u32,
) -> anyhow::Result<Option<RedisBenchmark>> {
    let mut args: Vec<String> = [
        "-h",
        host,
        "-p",
        &port.to_string(),
        "-c",
        &clients.to_string(),
        "-n",
        "300000",
        "-P",
        "3",
        "-q",
        "--csv",
        "ZRANGE",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.extend(page_command(key, want));
    let output = match Command::new("redis-benchmark").args(&args).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).context("run redis-benchmark"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let commands_per_sec = requests_per_sec(&stdout)
        .with_context(|| format!("read redis-benchmark's output: {stdout}"))?;
    Ok(Some(RedisBenchmark {
        command: format!("redis-benchmark {}", args.join(" ")),
        commands_per_sec,
        pages_per_sec: commands_per_sec / 3.0,
    }))
}

/// The `rps` column of `--csv` output: `"test","rps",…` then one row.
fn requests_per_sec(csv: &str) -> Option<f64> {
    let row = csv
        .lines()
        .filter(|line| !line.trim().is_empty())
        .rfind(|line| !line.starts_with("\"test\""))?;
    row.split("\",\"").nth(1)?.trim_matches('"').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rps_column_is_read_from_the_csv() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\"ZRANGE k\",\"251256.28\",\"0.583\"\n";
        assert_eq!(requests_per_sec(csv), Some(251_256.28));
        assert_eq!(requests_per_sec(""), None);
    }

    #[test]
    fn the_command_is_the_pages_zrange() {
        let command = page_command("chirp:timeline:7", 21).join(" ");
        assert_eq!(
            command,
            "chirp:timeline:7 + (0000000000000000000 BYLEX REV LIMIT 0 21"
        );
    }
}

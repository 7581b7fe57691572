//! The result of `experiment policies`: one row per policy, as
//! `policies.json`, as a markdown table (`policies.md`) and as a page
//! (`index.html`) with the table and two plots.
//!
//! The plots put what a policy costs beside what its readers get, on log
//! scales as the values span orders of magnitude: the fan-out delay by the
//! author's follower count, the read latencies (warm and returning), the
//! writes and the memory, and the share of tweets readers missed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chirp_load::machine::Machine;
use chirp_load::recorder::Latency;
use chirp_load::report::{STYLE, escape, svg, write_files};
use serde::Serialize;

use crate::comparison::{Panel, Writes, bars};
use crate::readers::Share;

#[derive(Debug, Clone, Serialize)]
pub struct PolicyComparison {
    pub machine: Machine,
    pub users: u64,
    pub follows: u64,
    pub tweets: u64,
    pub celebrity_threshold: u32,
    /// Users following `heavy_following` accounts or more.
    pub heavy_followers: u32,
    pub heavy_following: u32,
    /// The mixed load: requests per second, for how long, over how many
    /// readers, at how many reads per post.
    pub rate: f64,
    pub duration_secs: f64,
    pub readers: u32,
    pub read_write_ratio: f64,
    /// Users made returning before the load, read once after it.
    pub returning: u32,
    /// Readers whose first page is compared with the truth.
    pub miss_readers: u32,
    /// Posts per follower-count bucket timed to their last timeline write.
    pub probes: u32,
    pub policies: Vec<PolicyResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    pub policy: &'static str,
    pub network: &'static str,
    /// The services' flags that make the policy.
    pub settings: String,
    pub source: &'static str,
    /// `MEMORY USAGE` summed over every per-user key of the deployment
    /// (timelines, their markers, activity records) after the load.
    pub redis_bytes: u64,
    /// Home timelines cached then.
    pub timelines: u64,
    /// Timeline entries written for the posts of the mixed load.
    pub load: Writes,
    /// Pushes the fan-out skipped during the load, by reason.
    pub skipped_inactive: u64,
    pub skipped_lossy: u64,
    pub delay: Vec<BucketDelay>,
    /// First pages read during the mixed load.
    pub home_timeline: Latency,
    pub home_timeline_reads: u64,
    /// Errors and timeouts of the mixed load.
    pub load_errors: u64,
    /// The returning users' first read.
    pub cold_read: Percentiles,
    /// Of those, answered 206 (partial, the timeline being rebuilt).
    pub partial: u64,
    /// First reads after the load (returning users' and the compared
    /// readers') answered 5xx, a rebuild outrunning the gateway's deadline:
    /// no page to compare, so left out of `missed`.
    pub unanswered: u64,
    /// What readers missed: sampled readers who follow few accounts, those
    /// who follow very many, and the returning users' first pages.
    pub missed: Missed,
    /// The mixed load's own report, relative to the output directory.
    pub report: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Missed {
    pub readers: Share,
    pub heavy: Share,
    pub returning: Share,
}

/// The probes of one follower-count bucket.
#[derive(Debug, Clone, Serialize)]
pub struct BucketDelay {
    pub bucket: String,
    /// Posts timed.
    pub posts: u64,
    pub writes_per_post: f64,
    /// A pushed post: from its creation to its last timeline write (the
    /// worker's delivery record); a pulled one: from sending it to the
    /// first read of a follower's first page that holds it.
    pub delay: Percentiles,
    /// Posts pulled at read time rather than pushed.
    pub pulled: u64,
    /// Pushed posts that reached no follower's timeline (every follower
    /// skipped), so have no delay.
    pub unreached: u64,
    /// Pulled posts that never showed up in time.
    pub lost: u64,
}

/// Nearest-rank percentiles of a few samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Percentiles {
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let index = ((q * samples.len() as f64).ceil() as usize).saturating_sub(1);
            samples.get(index).copied().unwrap_or(0.0)
        };
        Self {
            samples: samples.len() as u64,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
        }
    }

    fn cell(&self) -> String {
        if self.samples == 0 {
            "–".to_owned()
        } else {
            format!("{:.0} / {:.0}", self.p50_ms, self.p99_ms)
        }
    }
}

fn percent(share: &Share) -> String {
    if share.readers == 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", share.share * 100.0)
    }
}

impl PolicyResult {
    /// One line for the console while the experiment goes on.
    pub fn summary_line(&self) -> String {
        format!(
            "policy {}: {:.1} MB in Redis, {:.1} writes/post; home p99 {:.1} ms, cold p99 {:.0} \
             ms ({} partial); missed {} / {} heavy / {} returning",
            self.policy,
            self.redis_bytes as f64 / 1e6,
            self.load.per_tweet,
            self.home_timeline.p99_ms,
            self.cold_read.p99_ms,
            self.partial,
            percent(&self.missed.readers),
            percent(&self.missed.heavy),
            percent(&self.missed.returning),
        )
    }

    /// The row's cells, as both the markdown table and the page show them.
    fn cells(&self) -> Vec<String> {
        let mut cells = vec![
            self.policy.to_owned(),
            format!("{:.1}", self.redis_bytes as f64 / 1e6),
            format!("{:.1}", self.load.per_tweet),
        ];
        cells.extend(self.delay.iter().map(|bucket| bucket.delay.cell()));
        cells.extend([
            format!(
                "{:.1} / {:.1}",
                self.home_timeline.p50_ms, self.home_timeline.p99_ms
            ),
            format!("{} ({} partial)", self.cold_read.cell(), self.partial),
            percent(&self.missed.readers),
            percent(&self.missed.heavy),
            percent(&self.missed.returning),
        ]);
        cells
    }
}

impl PolicyComparison {
    /// Writes `policies.json`, `policies.md` and `index.html` into `dir`;
    /// returns the page's path.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let files = [
            ("policies.json", serde_json::to_string_pretty(self)? + "\n"),
            ("policies.md", self.markdown()),
            ("index.html", self.html()?),
        ];
        write_files(dir, files)?;
        Ok(dir.join("index.html"))
    }

    fn header(&self) -> Vec<String> {
        let mut header = vec![
            "policy".to_owned(),
            "Redis MB".to_owned(),
            "writes per post".to_owned(),
        ];
        if let Some(first) = self.policies.first() {
            header.extend(first.delay.iter().map(|bucket| {
                format!(
                    "fan-out delay p50 / p99 ms, author's followers: {}",
                    bucket.bucket
                )
            }));
        }
        header.extend(
            [
                "home p50 / p99 ms",
                "cold read p50 / p99 ms",
                "missed, readers",
                "missed, heavy followers",
                "missed, returning",
            ]
            .map(str::to_owned),
        );
        header
    }

    /// The table, in markdown.
    pub fn markdown(&self) -> String {
        if self.policies.is_empty() {
            return String::new();
        }
        let header = self.header();
        let mut text = format!(
            "| {} |\n|---|{}\n",
            header.join(" | "),
            "--:|".repeat(header.len() - 1)
        );
        for row in &self.policies {
            let _ = writeln!(text, "| {} |", row.cells().join(" | "));
        }
        text
    }

    fn html(&self) -> anyhow::Result<String> {
        let mut page = String::new();
        write!(
            page,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>chirp: the policies of real networks</title><style>{STYLE}</style></head>\
             <body>\n<h1>The policies of real networks, one workload</h1>\n<p>{users} users \
             ({heavy} following {following} accounts or more), {follows} follows, {tweets} \
             tweets; celebrities from {threshold} followers. Each policy ran the mixed load \
             ({ratio} reads per post) at {rate} requests/s for {duration} s over {readers} \
             readers, then {probes} timed posts per follower-count bucket, then {returning} \
             returning users read once. Machine: {machine}.</p>\n<table><tr>",
            users = self.users,
            heavy = self.heavy_followers,
            following = self.heavy_following,
            follows = self.follows,
            tweets = self.tweets,
            threshold = self.celebrity_threshold,
            ratio = self.read_write_ratio,
            rate = self.rate,
            duration = self.duration_secs,
            readers = self.readers,
            probes = self.probes,
            returning = self.returning,
            machine = escape(&self.machine.to_string()),
        )?;
        for title in self.header().iter().chain([&"run".to_owned()]) {
            write!(page, "<th>{}</th>", escape(title))?;
        }
        page.push_str("</tr>\n");
        for row in &self.policies {
            let cells: String = row
                .cells()
                .iter()
                .map(|cell| format!("<td>{}</td>", escape(cell)))
                .collect();
            writeln!(
                page,
                "<tr>{cells}<td><a href=\"{}\">report</a></td></tr>",
                escape(&row.report),
            )?;
        }
        page.push_str("</table>\n<h2>Settings and sources</h2>\n<ul>\n");
        for row in &self.policies {
            writeln!(
                page,
                "<li><b>{}</b> ({}): <code>{}</code>. {}.</li>",
                escape(row.policy),
                escape(row.network),
                escape(&row.settings),
                escape(row.source),
            )?;
        }
        write!(
            page,
            "</ul>\n<h2>How late a post arrives, how fast a page comes</h2>\n{}\n\
             <h2>What it costs, what readers miss</h2>\n{}\n<h2>How to read this</h2>\n<ul>\n\
             <li>Fan-out delay: a pushed post from its creation to the last timeline write the \
             fan-out worker recorded for it; a pulled one until it shows on a follower's first \
             page.</li>\n<li>Missed: of the tweets a reader should have seen (the newest of \
             the reader and everyone they follow, posted at least 3 s before the read), the \
             share not on their first page.</li>\n<li>A value of 0 has no bar on the log \
             scale.</li>\n</ul>\n</body></html>\n",
            self.latency_plot()?,
            self.cost_plot()?,
        )?;
        Ok(page)
    }

    fn names(&self) -> Vec<&str> {
        self.policies.iter().map(|row| row.policy).collect()
    }

    /// Fan-out delay p99 by bucket on the left, read latencies on the right.
    fn latency_plot(&self) -> anyhow::Result<String> {
        let names = self.names();
        let buckets: Vec<String> = self.policies.first().map_or(Vec::new(), |first| {
            first
                .delay
                .iter()
                .map(|bucket| bucket.bucket.clone())
                .collect()
        });
        let bucket_series: Vec<&str> = buckets.iter().map(String::as_str).collect();
        let delays: Vec<Vec<f64>> = self
            .policies
            .iter()
            .map(|row| row.delay.iter().map(|bucket| bucket.delay.p99_ms).collect())
            .collect();
        let reads: Vec<Vec<f64>> = self
            .policies
            .iter()
            .map(|row| vec![row.home_timeline.p99_ms, row.cold_read.p99_ms])
            .collect();
        svg(|area| {
            let (left, right) = area.split_horizontally(area.dim_in_pixel().0 / 2);
            bars(
                &left,
                &Panel {
                    y_desc: "fan-out delay p99 (ms), by followers",
                    names: &names,
                    values: &delays,
                    series: &bucket_series,
                },
            )?;
            bars(
                &right,
                &Panel {
                    y_desc: "p99 latency (ms)",
                    names: &names,
                    values: &reads,
                    series: &["home, warm", "first read, returning"],
                },
            )
        })
    }

    /// Writes and memory on the left, misses on the right.
    fn cost_plot(&self) -> anyhow::Result<String> {
        let names = self.names();
        let cost: Vec<Vec<f64>> = self
            .policies
            .iter()
            .map(|row| vec![row.load.per_tweet, row.redis_bytes as f64 / 1e6])
            .collect();
        let missed: Vec<Vec<f64>> = self
            .policies
            .iter()
            .map(|row| {
                let missed = &row.missed;
                [missed.readers, missed.heavy, missed.returning]
                    .iter()
                    .map(|share| share.share * 100.0)
                    .collect()
            })
            .collect();
        svg(|area| {
            let (left, right) = area.split_horizontally(area.dim_in_pixel().0 / 2);
            bars(
                &left,
                &Panel {
                    y_desc: "writes per post; Redis MB",
                    names: &names,
                    values: &cost,
                    series: &["timeline writes per post", "Redis MB"],
                },
            )?;
            bars(
                &right,
                &Panel {
                    y_desc: "tweets missed (%)",
                    names: &names,
                    values: &missed,
                    series: &["readers", "heavy followers", "returning"],
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).rev().collect());
        assert_eq!((p.samples, p.p50_ms, p.p99_ms), (100, 50.0, 99.0));
        let one = Percentiles::of(vec![7.0]);
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
        assert_eq!(Percentiles::of(Vec::new()).cell(), "–");
    }
}

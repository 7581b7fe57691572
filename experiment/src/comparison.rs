//! The result of `experiment strategies`: one row per strategy, as
//! `strategies.json`, as a markdown table (`strategies.md`, for the docs),
//! and as a page (`index.html`) with the table and one plot.
//!
//! The plot puts the trade-off side by side, on log scales because the
//! values span orders of magnitude: on the left what a tweet costs (timeline
//! writes, for an ordinary author and for a celebrity), on the right what a
//! reader gets (home-timeline p99, and how late a new tweet shows up).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chirp_load::machine::Machine;
use chirp_load::recorder::Latency;
use chirp_load::report::{PALETTE, STYLE, escape, legend, svg, write_files};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub machine: Machine,
    pub users: u64,
    pub follows: u64,
    pub tweets: u64,
    pub celebrity_threshold: u32,
    /// The mixed load: requests per second, for how long, over how many
    /// readers, at how many reads per post.
    pub rate: f64,
    pub duration_secs: f64,
    pub readers: u32,
    pub read_write_ratio: f64,
    /// Posts per kind of author timed to visibility.
    pub probes: u32,
    pub strategies: Vec<StrategyResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StrategyResult {
    pub strategy: &'static str,
    /// The posts of the mixed load, by random authors.
    pub load: Writes,
    /// First pages read during the mixed load.
    pub home_timeline: Latency,
    pub home_timeline_reads: u64,
    /// Errors and timeouts of the mixed load.
    pub load_errors: u64,
    pub ordinary: Visibility,
    pub celebrity: Visibility,
    /// The mixed load's own report, relative to the output directory.
    pub report: String,
}

/// What some tweets cost the fan-out worker.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Writes {
    pub tweets: u64,
    /// Timeline entries written (`chirp_fanout_timeline_writes_total`).
    pub timeline_writes: u64,
    pub per_tweet: f64,
}

/// The probes of one author: what their tweets cost, and how long they took
/// to show in a follower's home timeline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Visibility {
    pub author_id: i64,
    pub author_followers: u64,
    pub writes: Writes,
    /// From sending the post to the first read of the follower's first page
    /// that holds it.
    pub visible: Latency,
    /// Probes that failed or did not show up in time.
    pub lost: u64,
}

impl Writes {
    pub fn new(tweets: u64, timeline_writes: f64) -> Self {
        Self {
            tweets,
            timeline_writes: timeline_writes as u64,
            per_tweet: if tweets == 0 {
                0.0
            } else {
                timeline_writes / tweets as f64
            },
        }
    }
}

impl StrategyResult {
    /// One line for the console while the experiment goes on.
    pub fn summary_line(&self) -> String {
        format!(
            "strategy {}: {:.1} writes/tweet (ordinary {:.0}, celebrity {:.0}); home timeline \
             p99 {:.1} ms; visible p99 ordinary {:.0} ms, celebrity {:.0} ms",
            self.strategy,
            self.load.per_tweet,
            self.ordinary.writes.per_tweet,
            self.celebrity.writes.per_tweet,
            self.home_timeline.p99_ms,
            self.ordinary.visible.p99_ms,
            self.celebrity.visible.p99_ms,
        )
    }

    /// The row's cells, as both the markdown table and the page show them.
    fn cells(&self) -> [String; 7] {
        [
            self.strategy.to_owned(),
            format!("{:.1}", self.load.per_tweet),
            format!("{:.0}", self.ordinary.writes.per_tweet),
            format!("{:.0}", self.celebrity.writes.per_tweet),
            format!(
                "{:.1} / {:.1}",
                self.home_timeline.p50_ms, self.home_timeline.p99_ms
            ),
            format!(
                "{:.0} / {:.0}",
                self.ordinary.visible.p50_ms, self.ordinary.visible.p99_ms
            ),
            format!(
                "{:.0} / {:.0}",
                self.celebrity.visible.p50_ms, self.celebrity.visible.p99_ms
            ),
        ]
    }
}

impl Comparison {
    /// Writes `strategies.json`, `strategies.md` and `index.html` into
    /// `dir`; returns the page's path.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let files = [
            (
                "strategies.json",
                serde_json::to_string_pretty(self)? + "\n",
            ),
            ("strategies.md", self.markdown()),
            ("index.html", self.html()?),
        ];
        write_files(dir, files)?;
        Ok(dir.join("index.html"))
    }

    /// The table, in markdown.
    pub fn markdown(&self) -> String {
        let Some(first) = self.strategies.first() else {
            return String::new();
        };
        let mut text = format!(
            "| strategy | writes per tweet: mixed load | ordinary author ({} followers) | \
             celebrity ({} followers) | home timeline p50 / p99 ms | post to visible, ordinary \
             p50 / p99 ms | post to visible, celebrity p50 / p99 ms |\n\
             |---|--:|--:|--:|--:|--:|--:|\n",
            first.ordinary.author_followers, first.celebrity.author_followers,
        );
        for row in &self.strategies {
            let _ = writeln!(text, "| {} |", row.cells().join(" | "));
        }
        text
    }

    fn html(&self) -> anyhow::Result<String> {
        let mut page = String::new();
        write!(
            page,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>chirp: push, pull and hybrid timelines</title><style>{STYLE}</style></head>\
             <body>\n<h1>Push, pull and hybrid timelines</h1>\n<p>{users} users, {follows} \
             follows, {tweets} tweets; celebrities from {threshold} followers. Each strategy ran \
             the mixed load ({ratio} reads per post) at {rate} requests/s for {duration} s over \
             {readers} readers, then {probes} timed posts per kind of author. Machine: {machine}.\
             </p>\n<table><tr><th>strategy</th><th>writes/tweet, load</th>\
             <th>writes/tweet, ordinary</th><th>writes/tweet, celebrity</th>\
             <th>home p50 / p99 ms</th><th>visible ordinary p50 / p99 ms</th>\
             <th>visible celebrity p50 / p99 ms</th><th>run</th></tr>\n",
            users = self.users,
            follows = self.follows,
            tweets = self.tweets,
            threshold = self.celebrity_threshold,
            ratio = self.read_write_ratio,
            rate = self.rate,
            duration = self.duration_secs,
            readers = self.readers,
            probes = self.probes,
            machine = escape(&self.machine.to_string()),
        )?;
        for row in &self.strategies {
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
        write!(
            page,
            "</table>\n<h2>What a tweet costs, what a reader gets</h2>\n{}\n\
             <h2>How to read this</h2>\n<ul>\n<li>A write is one timeline entry written by the \
             fan-out worker (a ZADD, with its trim and TTL in the same pipeline), counted by its \
             own <code>chirp_fanout_timeline_writes_total</code> once it had applied every event \
             of the phase. A value of 0 has no bar on the log scale.</li>\n<li>Post to visible \
             runs from sending the post to the first read of a follower's first page that holds \
             it (pages read every 5 ms). Pulled tweets come from a per-author cache \
             (PULLED_IDS_TTL_MS), so they show up to one TTL late.</li>\n<li>With {probes} \
             probes per author, p99 is close to the maximum.</li>\n</ul>\n</body></html>\n",
            self.plot()?,
            probes = self.probes,
        )?;
        Ok(page)
    }

    /// Writes per tweet on the left, latencies on the right.
    fn plot(&self) -> anyhow::Result<String> {
        let names: Vec<&str> = self.strategies.iter().map(|row| row.strategy).collect();
        let writes: Vec<Vec<f64>> = self
            .strategies
            .iter()
            .map(|row| {
                vec![
                    row.ordinary.writes.per_tweet,
                    row.celebrity.writes.per_tweet,
                ]
            })
            .collect();
        let latencies: Vec<Vec<f64>> = self
            .strategies
            .iter()
            .map(|row| {
                vec![
                    row.home_timeline.p99_ms,
                    row.ordinary.visible.p99_ms,
                    row.celebrity.visible.p99_ms,
                ]
            })
            .collect();
        svg(|area| {
            let (left, right) = area.split_horizontally(area.dim_in_pixel().0 / 2);
            bars(
                &left,
                &Panel {
                    y_desc: "timeline writes per tweet",
                    names: &names,
                    values: &writes,
                    series: &["ordinary author", "celebrity"],
                },
            )?;
            bars(
                &right,
                &Panel {
                    y_desc: "p99 latency (ms)",
                    names: &names,
                    values: &latencies,
                    series: &["home timeline", "visible, ordinary", "visible, celebrity"],
                },
            )
        })
    }
}

/// One half of the plot: for each strategy (or policy), a group of bars.
pub(crate) struct Panel<'a> {
    pub y_desc: &'a str,
    /// The strategies, left to right.
    pub names: &'a [&'a str],
    /// By strategy, one value per series.
    pub values: &'a [Vec<f64>],
    pub series: &'a [&'a str],
}

pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Grouped bars on a log scale, each labelled with its value. The groups
/// are the segments of a categorical axis; a bar takes its share of its
/// segment's width through pixel margins.
pub(crate) fn bars(area: &DrawingArea<SVGBackend<'_>, Shift>, panel: &Panel<'_>) -> DrawResult {
    let positive = || panel.values.iter().flatten().copied().filter(|&v| v > 0.0);
    let bottom = positive().fold(1.0, f64::min) / 2.0;
    // Headroom for the labels and the legend.
    let top = positive().fold(10.0, f64::max) * 12.0;
    let groups = panel.names.len();
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(30)
        .y_label_area_size(60)
        // `a..b` segmented has a segment per value from a to b inclusive.
        .build_cartesian_2d(
            (0..groups.saturating_sub(1)).into_segmented(),
            (bottom..top).log_scale(),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(panel.y_desc)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(index) => panel
                .names
                .get(*index)
                .copied()
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        })
        .draw()?;
    let series = panel.series.len() as u32;
    let group_px = chart.plotting_area().dim_in_pixel().0 / groups.max(1) as u32;
    // A tenth of the group on either side, the rest shared by the bars.
    let pad = group_px / 10;
    let bar_px = (group_px - 2 * pad) / series.max(1);
    for (s, &label) in (0u32..).zip(panel.series) {
        let color = PALETTE[s as usize % PALETTE.len()];
        let left = pad + s * bar_px;
        let right = group_px - left - bar_px + 2;
        let bars = panel.values.iter().enumerate().map(|(g, values)| {
            let value = values[s as usize].max(bottom);
            let corners = [
                (SegmentValue::Exact(g), bottom),
                (SegmentValue::Exact(g + 1), value),
            ];
            let mut bar = Rectangle::new(corners, color.filled());
            bar.set_margin(0, 0, left, right);
            bar
        });
        chart
            .draw_series(bars)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let labels = panel.values.iter().enumerate().map(|(g, values)| {
            let value = values[s as usize];
            let text = if value >= 10.0 || value == 0.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.1}")
            };
            let at = (SegmentValue::Exact(g), value.max(bottom));
            EmptyElement::at(at) + Text::new(text, (left as i32, -14), ("sans-serif", 11))
        });
        chart.draw_series(labels)?;
    }
    legend(&mut chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(p50_ms: f64, p99_ms: f64) -> Latency {
        Latency {
            samples: 10,
            mean_ms: p50_ms,
            p50_ms,
            p90_ms: p99_ms,
            p99_ms,
            p999_ms: p99_ms,
            max_ms: p99_ms,
        }
    }

    fn writes(tweets: u64, per_tweet: u64) -> Writes {
        Writes {
            tweets,
            timeline_writes: tweets * per_tweet,
            per_tweet: per_tweet as f64,
        }
    }

    fn row(
        strategy: &'static str,
        ordinary: u64,
        celebrity: u64,
        visible_ms: f64,
    ) -> StrategyResult {
        let probe = |followers, per_tweet, ms| Visibility {
            author_id: 1,
            author_followers: followers,
            writes: writes(10, per_tweet),
            visible: latency(ms / 2.0, ms),
            lost: 0,
        };
        StrategyResult {
            strategy,
            load: writes(20, ordinary / 3),
            home_timeline: latency(4.0, 12.5),
            home_timeline_reads: 2_000,
            load_errors: 0,
            ordinary: probe(35, ordinary, 30.0),
            celebrity: probe(199, celebrity, visible_ms),
            report: format!("{strategy}/report.html"),
        }
    }

    pub fn sample() -> Comparison {
        Comparison {
            machine: Machine::this(),
            users: 200,
            follows: 682,
            tweets: 400,
            celebrity_threshold: 50,
            rate: 50.0,
            duration_secs: 3.0,
            readers: 50,
            read_write_ratio: 100.0,
            probes: 3,
            strategies: vec![
                row("push", 36, 200, 23.0),
                row("pull", 0, 0, 1_424.0),
                row("hybrid", 36, 1, 1_416.0),
            ],
        }
    }

    #[test]
    fn the_table_has_a_row_per_strategy() {
        let markdown = sample().markdown();
        let lines: Vec<&str> = markdown.lines().collect();
        assert_eq!(lines.len(), 5, "{markdown}");
        assert!(lines[0].contains("ordinary author (35 followers)"));
        assert_eq!(
            lines[4],
            "| hybrid | 12.0 | 36 | 1 | 4.0 / 12.5 | 15 / 30 | 708 / 1416 |"
        );
    }

    #[test]
    fn the_page_has_the_table_and_one_plot() {
        let html = sample().html().unwrap();
        assert_eq!(html.matches("<svg").count(), 1);
        assert_eq!(html.matches("<tr>").count(), 4);
        assert!(html.contains("<a href=\"pull/report.html\">"));
        assert!(!html.contains("<script"));
    }
}

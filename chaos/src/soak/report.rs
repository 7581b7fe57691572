//! The soak's outputs: `soak.json` (one object: the configuration, the
//! fault schedule and what each injection did, the per-interval series, the
//! checks, the growth tests and the verdict) and `soak.html`, the same for
//! people, with a plot per curve drawn as `run`'s report draws its plots
//! ([`chirp_load::report::svg`]): self-contained, no JavaScript.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use super::faults::Planned;
use super::growth::Growth;
use super::handover::Handover;
use super::sample::SystemSample;
use super::tally::ClientRow;
use crate::checks::Findings;
use chirp_load::report::{PALETTE, STYLE, escape, legend, svg, write_files};

/// Everything about one soak.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub config: serde_json::Value,
    /// What the cohort could not set up.
    pub not_measured: Vec<String>,
    pub schedule: Vec<Planned>,
    pub injected: Vec<Injected>,
    pub intervals: Vec<IntervalRow>,
    /// The checks taken while the load ran (on what had settled).
    pub checks: Vec<CheckRow>,
    pub final_check: FinalCheck,
    /// The last act of a soak concentrated on one outbox shard.
    pub handover: Option<Handover>,
    pub growth: Vec<Growth>,
    pub verdict: Verdict,
}

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Injected {
    pub at_secs: f64,
    pub fault: String,
    /// From the injection until the stack's processes were back (for the
    /// cluster faults: until the cluster was seen whole again).
    pub took_secs: f64,
    /// What a cluster fault did and when it saw each step of the recovery.
    pub detail: Option<String>,
    pub error: Option<String>,
}

/// One interval of the series.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalRow {
    /// Minutes from the start of the steady load to the interval's end.
    pub minute: f64,
    pub clients: ClientRow,
    pub system: SystemSample,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub at_secs: f64,
    /// Posts judged (sent before the check's settle cutoff).
    pub posts_judged: usize,
    pub findings: Findings,
    pub took_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FinalCheck {
    pub posts_accepted: usize,
    pub deletes_accepted: usize,
    /// Cohort posts and deletes never answered (retries exhausted).
    pub unanswered: usize,
    pub findings: Findings,
    /// From the end of the load until every check passed; none: never.
    pub clean_after_secs: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub passed: bool,
    /// Why it failed; empty when it passed.
    pub reasons: Vec<String>,
}

impl SoakReport {
    /// Writes `soak.json` and `soak.html` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)? + "\n";
        write_files(dir, [("soak.json", json), ("soak.html", self.html()?)])
    }

    fn series(&self, value: impl Fn(&IntervalRow) -> Option<f64>) -> Vec<(f64, f64)> {
        self.intervals
            .iter()
            .filter_map(|row| value(row).map(|v| (row.minute, v)))
            .collect()
    }

    pub fn html(&self) -> anyhow::Result<String> {
        let mut page = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>chirp soak</title><style>{STYLE}</style></head><body>\n<h1>chirp soak: {}</h1>\n",
            if self.verdict.passed {
                "passed"
            } else {
                "FAILED"
            }
        );
        for reason in &self.verdict.reasons {
            writeln!(page, "<p><b>{}</b></p>", escape(reason))?;
        }
        writeln!(
            page,
            "<h2>Configuration</h2>\n<pre>{}</pre>",
            escape(&serde_json::to_string_pretty(&self.config)?)
        )?;
        let f = &self.final_check.findings;
        write!(
            page,
            "<h2>Final check</h2>\n<table><tr><th>posts</th><th>deletes</th><th>unanswered</th>\
             <th>lost</th><th>phantom</th><th>duplicates</th><th>paging gaps</th>\
             <th>unfollowed visible</th><th>unreadable</th><th>clean after (s)</th></tr>\n\
             <tr><td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td></tr></table>\n",
            self.final_check.posts_accepted,
            self.final_check.deletes_accepted,
            self.final_check.unanswered,
            cells(f),
            self.final_check
                .clean_after_secs
                .map_or("never".to_owned(), |s| format!("{s:.1}")),
        )?;
        if let Some(h) = &self.handover {
            writeln!(
                page,
                "<h2>Lease handover of outbox shard {}</h2>\n<p>{} events through the shard; \
                 lease owner {} killed, then held by {}; a post of the shard arrived {}.</p>",
                h.shard,
                h.events_through_shard,
                escape(&h.owner_before),
                escape(h.owner_after.as_deref().unwrap_or("nobody")),
                h.visible_after_secs.map_or("never".to_owned(), |s| format!(
                    "{s:.1} s after the restart"
                )),
            )?;
        }
        page.push_str(
            "<h2>Checks during the load</h2>\n<table><tr><th>at (s)</th><th>posts judged</th>\
             <th>missing</th><th>phantom</th><th>duplicates</th><th>paging gaps</th>\
             <th>unfollowed visible</th><th>unreadable</th><th>took (s)</th></tr>\n",
        );
        for check in &self.checks {
            writeln!(
                page,
                "<tr><td>{:.0}</td><td>{}</td>{}<td>{:.1}</td></tr>",
                check.at_secs,
                check.posts_judged,
                cells(&check.findings),
                check.took_secs
            )?;
        }
        page.push_str(
            "</table>\n<h2>Growth after warm-up</h2>\n<table><tr><th>curve</th>\
             <th>points</th><th>mean</th><th>slope /min</th><th>rise</th><th>allowed</th>\
             <th>growing</th></tr>\n",
        );
        for g in &self.growth {
            writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.1}</td>\
                 <td>{:.1}</td><td>{}</td></tr>",
                escape(&g.curve),
                g.points,
                g.mean,
                g.slope_per_min,
                g.rise,
                g.allowed,
                g.growing
                    .map_or("not judged", |g| if g { "YES" } else { "no" })
            )?;
        }
        page.push_str(
            "</table>\n<h2>Faults</h2>\n<table><tr><th>at (s)</th><th>fault</th>\
             <th>back after (s)</th><th>what happened</th><th>error</th></tr>\n",
        );
        for fault in &self.injected {
            writeln!(
                page,
                "<tr><td>{:.0}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
                fault.at_secs,
                escape(&fault.fault),
                fault.took_secs,
                escape(fault.detail.as_deref().unwrap_or("")),
                escape(fault.error.as_deref().unwrap_or(""))
            )?;
        }
        page.push_str("</table>\n");
        if !self.not_measured.is_empty() {
            page.push_str("<h2>Not measured</h2>\n<ul>\n");
            for line in &self.not_measured {
                writeln!(page, "<li>{}</li>", escape(line))?;
            }
            page.push_str("</ul>\n");
        }
        for (title, unit, lines) in self.plots() {
            writeln!(
                page,
                "<h2>{}</h2>\n{}",
                escape(&title),
                plot(&unit, &lines)?
            )?;
        }
        page.push_str("</body></html>\n");
        Ok(page)
    }

    /// Every plot: its title, y axis and lines.
    fn plots(&self) -> Vec<(String, String, Vec<Line>)> {
        let c = |v: fn(&ClientRow) -> f64| self.series(move |row| Some(v(&row.clients)));
        let mut plots = vec![
            (
                "Throughput".to_owned(),
                "per second".to_owned(),
                vec![
                    ("posts/s".to_owned(), c(|r| r.posts_per_sec)),
                    ("reads/s".to_owned(), c(|r| r.reads_per_sec)),
                ],
            ),
            (
                "Post latency".to_owned(),
                "ms".to_owned(),
                vec![
                    ("p50".to_owned(), c(|r| r.post_p50_ms)),
                    ("p99".to_owned(), c(|r| r.post_p99_ms)),
                ],
            ),
            (
                "Read latency".to_owned(),
                "ms".to_owned(),
                vec![
                    ("p50".to_owned(), c(|r| r.read_p50_ms)),
                    ("p99".to_owned(), c(|r| r.read_p99_ms)),
                ],
            ),
        ];
        let mut delays = Vec::new();
        for (i, bucket) in super::tally::Bucket::ALL.iter().enumerate() {
            for (q, value) in [("p50", 0), ("p99", 1)] {
                let points = self.series(|row| {
                    let d = &row.clients.fanout[i];
                    (d.seen > 0).then_some(if value == 0 { d.p50_ms } else { d.p99_ms })
                });
                if !points.is_empty() {
                    delays.push((format!("{} {q}", bucket.label()), points));
                }
            }
        }
        plots.push((
            "Fan-out delay by follower count".to_owned(),
            "ms".to_owned(),
            delays,
        ));
        let s = |v: fn(&SystemSample) -> Option<f64>| self.series(move |row| v(&row.system));
        plots.push((
            "Consumer lag and outbox".to_owned(),
            "messages / rows / seconds".to_owned(),
            vec![
                ("consumer lag".to_owned(), s(|x| x.consumer_lag)),
                (
                    "outbox depth".to_owned(),
                    s(|x| x.outbox_depth.map(|d| d as f64)),
                ),
                ("outbox oldest (s)".to_owned(), s(|x| x.outbox_oldest_secs)),
                ("dead letters".to_owned(), s(|x| x.dead_letters)),
            ],
        ));
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        plots.push((
            "Redis used memory".to_owned(),
            "MiB".to_owned(),
            vec![(
                "used_memory".to_owned(),
                s(|x| x.redis_used_bytes.map(|b| b as f64 / (1024.0 * 1024.0))),
            )],
        ));
        let mut names: Vec<&String> = self
            .intervals
            .iter()
            .flat_map(|row| row.system.rss_bytes.keys())
            .collect();
        names.sort();
        names.dedup();
        let rss = names
            .into_iter()
            .map(|name| {
                let points = self.series(|row| row.system.rss_bytes.get(name).map(|&b| mib(b)));
                (name.clone(), points)
            })
            .collect();
        plots.push((
            "Resident memory by process".to_owned(),
            "MiB".to_owned(),
            rss,
        ));
        plots
    }
}

/// The findings' table cells: lost, phantom, duplicates, paging gaps,
/// unfollowed visible, unreadable.
fn cells(f: &Findings) -> String {
    [
        f.lost,
        f.phantom,
        f.duplicates,
        f.paging_gaps,
        f.unfollowed_visible,
        f.unreadable,
    ]
    .iter()
    .map(|n| format!("<td>{n}</td>"))
    .collect()
}

/// A named line of (minute, value) points.
type Line = (String, Vec<(f64, f64)>);

/// One plot of `lines` over the minutes of the soak.
fn plot(unit: &str, lines: &[Line]) -> anyhow::Result<String> {
    let points = lines.iter().flat_map(|(_, points)| points);
    let end = points.clone().map(|(x, _)| *x).fold(1.0, f64::max);
    let top = points.map(|(_, y)| *y).fold(1.0, f64::max) * 1.1;
    svg(|area| {
        let mut chart = ChartBuilder::on(&area)
            .margin(16)
            .margin_right(40)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..end, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc("minutes into the steady load")
            .y_desc(unit)
            .draw()?;
        for (i, (label, points)) in lines.iter().enumerate() {
            let color = if i < PALETTE.len() {
                PALETTE[i].to_rgba()
            } else {
                Palette99::pick(i).to_rgba()
            };
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        legend(&mut chart)
    })
}

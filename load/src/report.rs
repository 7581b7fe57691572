//! The report of a run: `report.json` for scripts and for comparing runs,
//! `report.html` for people.
//!
//! The HTML page is self-contained (inline SVG drawn with plotters, inline
//! CSS, no JavaScript), so it can be archived, mailed or opened offline and
//! looks the same in ten years. Two plots: latency over the run, which shows
//! *when* things went wrong (warm-up, a stall, a slow drift), and the
//! percentile spectrum on HdrHistogram's axis, where x is 1/(1-p) on a log
//! scale, so that 90 %, 99 %, 99.9 % and 99.99 % are evenly spaced and the
//! tail, where the interesting latencies are, gets most of the width.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use crate::recorder::{Latency, Percentile, Recording, SecondSummary, Summary};
use crate::schedule::{Mode, Plan, Target, drive};

/// Everything about one run, as written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was run, e.g. the workload's name.
    pub title: String,
    /// What was loaded, e.g. the gateway's URL.
    pub target: String,
    pub mode: Mode,
    pub duration_secs: f64,
    pub timeout_ms: f64,
    pub started_at_unix_ms: u64,
    /// Requests the schedule intended: `counts.sent + counts.dropped`.
    pub scheduled: u64,
    pub throughput: Throughput,
    #[serde(flatten)]
    pub summary: Summary,
    /// How to read the numbers: the measurement's rules, in words.
    pub notes: Vec<String>,
}

/// Requests per second over the run: its duration, or longer if the last
/// answers came in after it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Throughput {
    /// The open loop's `--rate`; a closed loop has none.
    pub target_per_sec: Option<f64>,
    pub sent_per_sec: f64,
    pub ok_per_sec: f64,
}

impl Report {
    pub fn new(
        title: &str,
        target: &str,
        plan: &Plan,
        recording: &Recording,
        started_at: SystemTime,
    ) -> Self {
        let summary = recording.summary();
        let counts = summary.counts;
        // The schedule's length, or longer when the last answers came later.
        let elapsed = recording
            .elapsed()
            .max(plan.duration)
            .as_secs_f64()
            .max(1e-9);
        let target_per_sec = match plan.mode {
            Mode::OpenLoop { rate, .. } => Some(rate),
            Mode::ClosedLoop { .. } => None,
        };
        Self {
            title: title.to_owned(),
            target: target.to_owned(),
            mode: plan.mode,
            duration_secs: plan.duration.as_secs_f64(),
            timeout_ms: plan.timeout.as_secs_f64() * 1e3,
            started_at_unix_ms: started_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as u64),
            scheduled: counts.sent + counts.dropped,
            throughput: Throughput {
                target_per_sec,
                sent_per_sec: counts.sent as f64 / elapsed,
                ok_per_sec: counts.ok as f64 / elapsed,
            },
            notes: notes(plan, &summary),
            summary,
        }
    }

    /// Drives `target` (named `target_name` in the report) through `plan`
    /// and sums the recording up as a report titled `title`.
    pub async fn measure<T: Target>(title: &str, target_name: &str, target: T, plan: Plan) -> Self {
        let started_at = SystemTime::now();
        let recording = drive(Arc::new(target), plan).await;
        Self::new(title, target_name, &plan, &recording, started_at)
    }

    /// Writes `report.json` and `report.html` into `dir` (created if need
    /// be); returns the HTML page's path.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let json = serde_json::to_string_pretty(self)? + "\n";
        write_files(dir, [("report.json", json), ("report.html", self.html()?)])?;
        Ok(dir.join("report.html"))
    }

    fn mode_text(&self) -> String {
        match self.mode {
            Mode::OpenLoop {
                rate,
                max_in_flight,
                connections,
            } => match connections {
                Some(connections) => format!(
                    "open loop at {rate} req/s over {connections} connections (at most \
                     {max_in_flight} in flight)"
                ),
                None => format!("open loop at {rate} req/s (at most {max_in_flight} in flight)"),
            },
            Mode::ClosedLoop { connections } => format!("closed loop, {connections} connections"),
        }
    }

    /// The page: tables, two inline SVG plots, the notes.
    pub fn html(&self) -> anyhow::Result<String> {
        let counts = self.summary.counts;
        let mut page = String::new();
        write!(
            page,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>chirp load test: {title}</title><style>{STYLE}</style></head><body>\n\
             <h1>{title}</h1>\n<p>{target}: {mode} for {duration} s, timeout {timeout} ms. \
             Started at {started} (Unix ms).</p>\n",
            title = escape(&self.title),
            target = escape(&self.target),
            mode = self.mode_text(),
            duration = self.duration_secs,
            timeout = self.timeout_ms,
            started = self.started_at_unix_ms,
        )?;
        let target = self.throughput.target_per_sec.map_or_else(
            || "none (closed loop)".to_owned(),
            |rate| format!("{rate:.1}"),
        );
        write!(
            page,
            "<h2>Requests</h2>\n<table><tr><th>scheduled</th><th>sent</th><th>ok</th>\
             <th>errors</th><th>timeouts</th><th>dropped</th><th>target/s</th>\
             <th>sent/s</th><th>ok/s</th></tr>\n<tr><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{target}</td><td>{:.1}</td><td>{:.1}</td>\
             </tr></table>\n",
            self.scheduled,
            counts.sent,
            counts.ok,
            counts.errors,
            counts.timeouts,
            counts.dropped,
            self.throughput.sent_per_sec,
            self.throughput.ok_per_sec,
        )?;
        page.push_str(
            "<h2>Latency (ms)</h2>\n<table><tr><th>operation</th><th>answered</th>\
             <th>errors</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>\
             <th>mean</th></tr>\n",
        );
        for (name, operation) in &self.summary.operations {
            latency_row(
                &mut page,
                name,
                operation.answered,
                operation.errors,
                &operation.latency,
            )?;
        }
        let all = &self.summary.latency;
        latency_row(&mut page, ALL, all.samples, counts.errors, all)?;
        page.push_str("</table>\n");
        if !self.summary.errors_by_kind.is_empty() {
            page.push_str("<h2>Errors</h2>\n<table><tr><th>kind</th><th>count</th></tr>\n");
            for (kind, count) in &self.summary.errors_by_kind {
                writeln!(page, "<tr><td>{}</td><td>{count}</td></tr>", escape(kind))?;
            }
            page.push_str("</table>\n");
        }
        write!(
            page,
            "<h2>Latency over time</h2>\n{}\n<h2>Percentile spectrum</h2>\n{}\n",
            self.latency_over_time()?,
            self.percentile_spectrum()?,
        )?;
        page.push_str("<h2>How to read this</h2>\n<ul>\n");
        for note in &self.notes {
            writeln!(page, "<li>{}</li>", escape(note))?;
        }
        page.push_str("</ul>\n</body></html>\n");
        Ok(page)
    }

    /// p50, p99 and max of each second of the run.
    fn latency_over_time(&self) -> anyhow::Result<String> {
        let seconds = &self.summary.seconds;
        let end = (seconds.len() as f64).max(1.0);
        let top = seconds.iter().map(|s| s.max_ms).fold(1.0, f64::max) * 1.1;
        svg(|area| {
            let mut chart = ChartBuilder::on(&area)
                .margin(16)
                .margin_right(40)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..end, 0f64..top)?;
            chart
                .configure_mesh()
                .x_desc("seconds into the run (by intended send time)")
                .y_desc("latency (ms)")
                .draw()?;
            let lines: [(&str, RGBColor, SecondValue); 3] = [
                ("p50", BLUE, |s| s.p50_ms),
                ("p99", RED, |s| s.p99_ms),
                ("max", BLACK, |s| s.max_ms),
            ];
            for (label, color, value) in lines {
                // Each second's value is drawn at the middle of that second.
                let points = seconds
                    .iter()
                    .filter(|s| s.counts.sent > 0)
                    .map(|s| (s.second as f64 + 0.5, value(s)));
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            }
            legend(&mut chart)
        })
    }

    /// Latency by percentile, one line per operation and one for all.
    fn percentile_spectrum(&self) -> anyhow::Result<String> {
        let mut lines: Vec<(&str, &[Percentile])> = self
            .summary
            .operations
            .iter()
            .map(|(name, operation)| (name.as_str(), operation.spectrum.as_slice()))
            .collect();
        if lines.len() != 1 {
            lines.push((ALL, &self.summary.spectrum));
        }
        let x = |point: &Percentile| 1.0 / (1.0 - point.percentile / 100.0);
        let finite = |point: &&Percentile| point.percentile < 100.0;
        let widest = lines
            .iter()
            .flat_map(|(_, points)| points.iter().filter(finite).map(x))
            .fold(100.0, f64::max);
        let decades = widest.log10().ceil() as i32;
        let end = 10f64.powi(decades);
        let top = lines
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.latency_ms))
            .fold(1.0, f64::max)
            * 1.1;
        svg(|area| {
            let key_points: Vec<f64> = (0..=decades).map(|d| 10f64.powi(d)).collect();
            let mut chart = ChartBuilder::on(&area)
                .margin(16)
                .margin_right(40)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(
                    (1f64..end).log_scale().with_key_points(key_points),
                    0f64..top,
                )?;
            chart
                .configure_mesh()
                .x_desc("percentile")
                .y_desc("latency (ms)")
                .x_label_formatter(&|x| percentile_label(*x))
                .draw()?;
            for (index, (name, points)) in lines.iter().enumerate() {
                let color = if *name == ALL {
                    BLACK
                } else {
                    PALETTE[index % PALETTE.len()]
                };
                let points = points.iter().filter(finite).map(|p| (x(p), p.latency_ms));
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            }
            legend(&mut chart)
        })
    }
}

/// One number of a second of the run, for a line of the time plot.
type SecondValue = fn(&SecondSummary) -> f64;

pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;\
    padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0}\
    th,td{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}\
    th:first-child,td:first-child{text-align:left}li{margin:.3em 0}";

pub(crate) const PLOT_SIZE: (u32, u32) = (960, 420);

/// Line colours that stay legible on white; "all requests" is black.
pub const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

/// The row and the line of every request together.
const ALL: &str = "all requests";

/// Draws one plot into an SVG string.
pub fn svg(
    draw: impl FnOnce(
        DrawingArea<SVGBackend<'_>, Shift>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        area.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        draw(area.clone()).map_err(|e| anyhow::anyhow!("draw a plot: {e}"))?;
        area.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(svg)
}

pub fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// `x` = 1/(1-p) as a percentile: 10 → "90%", 1000 → "99.9%".
fn percentile_label(x: f64) -> String {
    let percentile = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{percentile:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn latency_row(
    page: &mut String,
    name: &str,
    answered: u64,
    errors: u64,
    latency: &Latency,
) -> fmt::Result {
    writeln!(
        page,
        "<tr><td>{}</td><td>{answered}</td><td>{errors}</td><td>{:.2}</td><td>{:.2}</td>\
         <td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
        escape(name),
        latency.p50_ms,
        latency.p90_ms,
        latency.p99_ms,
        latency.p999_ms,
        latency.max_ms,
        latency.mean_ms,
    )
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The rules of the measurement, in words, for the report's readers.
fn notes(plan: &Plan, summary: &Summary) -> Vec<String> {
    let timeout_ms = plan.timeout.as_millis();
    let mut notes = vec![match plan.mode {
        Mode::OpenLoop {
            rate,
            max_in_flight,
            connections,
        } => format!(
            "Open loop: requests were sent on a fixed schedule of {rate} per second, whatever \
             the answers, and each latency is measured from the request's intended send time, \
             not from when it was actually sent. A stall therefore counts for every request \
             it delayed (coordinated omission corrected, as in wrk2).{} At most \
             {max_in_flight} requests were in flight; a request due when that many were \
             outstanding was dropped: {} were.",
            connections.map_or(String::new(), |connections| format!(
                " Requests were sent over at most {connections} connections at once; a due \
                 request waited for a free one, and that wait is in its latency."
            )),
            summary.counts.dropped
        ),
        Mode::ClosedLoop { connections } => format!(
            "Closed loop: each of {connections} connections sent its next request as soon as \
             the previous one answered, and latency is measured from the actual send. A stall \
             shows as one slow request per connection while the requests it held back are \
             never sent (coordinated omission is not corrected); use an open loop (--rate) \
             for latency under a given load."
        ),
    }];
    notes.push(format!(
        "Every sent request is in the latency numbers, errors included (an error that came \
         back fast was still waited for). A request unanswered after {timeout_ms} ms is a \
         timeout, recorded at the moment it was abandoned: a lower bound of its latency. \
         Dropped requests were never sent and are in no latency number."
    ));
    notes.push(
        "Counts: sent = ok + errors + timeouts; scheduled = sent + dropped. Throughput is \
         over the run's duration, or longer if the last answers came in after it. Percentiles \
         come from HDR histograms holding every sample (3 significant digits; 2 for the \
         per-second series)."
            .to_owned(),
    );
    notes
}

impl fmt::Display for Report {
    /// The summary printed at the end of a run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.summary.counts;
        let all = &self.summary.latency;
        writeln!(
            f,
            "{} against {}: {} for {} s",
            self.title,
            self.target,
            self.mode_text(),
            self.duration_secs
        )?;
        writeln!(
            f,
            "requests    {} scheduled, {} sent: {} ok, {} errors, {} timeouts; {} dropped",
            self.scheduled, counts.sent, counts.ok, counts.errors, counts.timeouts, counts.dropped
        )?;
        let target = self
            .throughput
            .target_per_sec
            .map_or_else(String::new, |rate| format!(" (target {rate}/s)"));
        writeln!(
            f,
            "throughput  {:.1} sent/s, {:.1} ok/s{target}",
            self.throughput.sent_per_sec, self.throughput.ok_per_sec
        )?;
        writeln!(
            f,
            "latency ms  {:<34} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "", "answered", "p50", "p90", "p99", "p99.9", "max"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, answered: u64, l: &Latency| {
            writeln!(
                f,
                "            {name:<34} {answered:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            )
        };
        for (name, operation) in &self.summary.operations {
            row(f, name, operation.answered, &operation.latency)?;
        }
        row(f, ALL, all.samples, all)?;
        for (kind, count) in &self.summary.errors_by_kind {
            writeln!(f, "error       {kind}: {count}")?;
        }
        Ok(())
    }
}

/// Writes each `(file name, text)` into `dir`, creating it first: the
/// outputs of a report, of the bench and of an experiment.
pub fn write_files<const N: usize>(dir: &Path, files: [(&str, String); N]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::schedule::Outcome;

    #[test]
    fn percentiles_on_the_hdr_axis() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1_000.0), "99.9%");
        assert_eq!(percentile_label(10_000.0), "99.99%");
    }

    struct Instant;

    impl Target for Instant {
        async fn call(&self, n: u64) -> Outcome {
            Outcome {
                operation: "GET /<anything>",
                result: if n.is_multiple_of(10) {
                    Err(crate::schedule::Failure("http 503".to_owned()))
                } else {
                    Ok(())
                },
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_page_is_self_contained_and_escaped() {
        let plan = Plan {
            mode: Mode::OpenLoop {
                rate: 50.0,
                max_in_flight: 10,
                connections: None,
            },
            duration: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
        };
        let recording = drive(Arc::new(Instant), plan).await;
        let report = Report::new("test", "http://x", &plan, &recording, SystemTime::now());
        assert_eq!(report.scheduled, 100);
        assert_eq!(report.summary.errors_by_kind["http 503"], 10);
        let html = report.html().unwrap();
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("GET /&lt;anything&gt;"));
        assert!(!html.contains("<script") && !html.contains("<link"));
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["counts"]["sent"], 100);
        assert_eq!(json["mode"]["open_loop"]["rate"], 50.0);
        assert_eq!(json["latency"]["p99.9_ms"], report.summary.latency.p999_ms);
    }
}

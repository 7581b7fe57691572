//! What a run measured: latency histograms per operation, outcome counts,
//! failures by kind, and a per-second series.
//!
//! Latencies go into HDR histograms (HdrHistogram, Gil Tene's design): fixed
//! relative precision over the whole range, from microseconds to minutes, in
//! constant memory and with O(1) recording, so a long run keeps *every*
//! sample and p99.9 and the maximum are exact to three significant digits
//! instead of estimated from a sample or averaged away.
//!
//! Every sent request is in the histograms, failed or not, because an error
//! page that comes back fast is still an answer a user waited for; a timed-out
//! request is in at the moment it was given up on, a lower bound of its
//! latency. Dropped requests were never sent and have no latency: they are
//! only counted.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::schedule::Failure;

/// The longest latency a histogram tells apart; longer ones are recorded as
/// this. An hour is far beyond any timeout worth setting.
const HIGHEST_MICROS: u64 = 3_600_000_000;

/// How one sent request ended.
#[derive(Debug, Clone)]
pub enum Completion {
    Ok {
        operation: &'static str,
    },
    Failed {
        operation: &'static str,
        failure: Failure,
    },
    /// Given up on; which operation it was is lost with its future.
    TimedOut,
}

/// The counts every report starts with: `sent = ok + errors + timeouts`, and
/// in an open loop `sent + dropped` is every request the schedule intended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub dropped: u64,
}

/// Collects samples while a run is going on.
#[derive(Debug)]
pub struct Recorder {
    counts: Counts,
    all: Histogram<u64>,
    operations: BTreeMap<&'static str, Operation>,
    errors: BTreeMap<Failure, u64>,
    seconds: Vec<Second>,
}

#[derive(Debug)]
struct Operation {
    answered: u64,
    errors: u64,
    latency: Histogram<u64>,
}

/// One second of the run, by intended send time (open loop) or actual send
/// time (closed loop).
#[derive(Debug)]
struct Second {
    counts: Counts,
    /// Two significant digits: a per-second plot needs no more, and a long
    /// run keeps one of these per second.
    latency: Histogram<u64>,
}

fn histogram(significant_digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, significant_digits)
        .unwrap_or_else(|error| unreachable!("constant histogram bounds are valid: {error}"))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            counts: Counts::default(),
            all: histogram(3),
            operations: BTreeMap::new(),
            errors: BTreeMap::new(),
            seconds: Vec::new(),
        }
    }

    fn second(&mut self, offset: Duration) -> &mut Second {
        let index = offset.as_secs() as usize;
        while self.seconds.len() <= index {
            self.seconds.push(Second {
                counts: Counts::default(),
                latency: histogram(2),
            });
        }
        &mut self.seconds[index]
    }

    /// A request sent `offset` into the run that ended after `latency`.
    pub fn record(&mut self, offset: Duration, latency: Duration, completion: Completion) {
        let value = micros(latency).clamp(1, HIGHEST_MICROS);
        let mut counts = Counts {
            sent: 1,
            ..Counts::default()
        };
        let operation = match completion {
            Completion::Ok { operation } => {
                counts.ok = 1;
                Some(operation)
            }
            Completion::Failed { operation, failure } => {
                counts.errors = 1;
                *self.errors.entry(failure).or_default() += 1;
                Some(operation)
            }
            Completion::TimedOut => {
                counts.timeouts = 1;
                None
            }
        };
        self.counts.add(counts);
        self.all.saturating_record(value);
        let second = self.second(offset);
        second.counts.add(counts);
        second.latency.saturating_record(value);
        if let Some(name) = operation {
            let operation = self.operations.entry(name).or_insert_with(|| Operation {
                answered: 0,
                errors: 0,
                latency: histogram(3),
            });
            operation.answered += 1;
            operation.errors += counts.errors;
            operation.latency.saturating_record(value);
        }
    }

    /// A request the schedule intended `offset` into the run but could not
    /// send: too many were in flight.
    pub fn dropped(&mut self, offset: Duration) {
        let dropped = Counts {
            dropped: 1,
            ..Counts::default()
        };
        self.second(offset).counts.add(dropped);
        self.counts.add(dropped);
    }

    /// Ends the recording; `elapsed` is the run's wall time, drain included.
    pub fn finish(self, elapsed: Duration) -> Recording {
        Recording {
            recorder: self,
            elapsed,
        }
    }
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.dropped += other.dropped;
    }
}

/// A finished run's measurements.
#[derive(Debug)]
pub struct Recording {
    recorder: Recorder,
    elapsed: Duration,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    #[serde(rename = "p99.9_ms")]
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// One point of a percentile spectrum: `percentile` % of requests took at
/// most `latency_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentile {
    pub percentile: f64,
    pub latency_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationSummary {
    /// Sent and answered (timeouts cannot be told apart by operation).
    pub answered: u64,
    pub errors: u64,
    pub latency: Latency,
    pub spectrum: Vec<Percentile>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondSummary {
    pub second: u64,
    #[serde(flatten)]
    pub counts: Counts,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Everything a report shows, ready to serialise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub counts: Counts,
    /// Failed requests by kind: `http 503`, `transport: connect`, ...
    pub errors_by_kind: BTreeMap<String, u64>,
    pub elapsed_secs: f64,
    pub latency: Latency,
    pub spectrum: Vec<Percentile>,
    pub operations: BTreeMap<String, OperationSummary>,
    pub seconds: Vec<SecondSummary>,
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1e3
}

fn latency(histogram: &Histogram<u64>) -> Latency {
    let at = |quantile| millis(histogram.value_at_quantile(quantile));
    Latency {
        samples: histogram.len(),
        mean_ms: histogram.mean() / 1e3,
        p50_ms: at(0.5),
        p90_ms: at(0.9),
        p99_ms: at(0.99),
        p999_ms: at(0.999),
        max_ms: millis(histogram.max()),
    }
}

/// The percentile spectrum, five points per halving of the distance to
/// 100 %: dense where the tail is, as HdrHistogram plots it.
fn spectrum(histogram: &Histogram<u64>) -> Vec<Percentile> {
    histogram
        .iter_quantiles(5)
        .map(|point| Percentile {
            percentile: point.quantile_iterated_to() * 100.0,
            latency_ms: millis(point.value_iterated_to()),
        })
        .collect()
}

impl Recording {
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    pub fn summary(&self) -> Summary {
        let recorder = &self.recorder;
        Summary {
            counts: recorder.counts,
            errors_by_kind: recorder
                .errors
                .iter()
                .map(|(failure, &count)| (failure.0.clone(), count))
                .collect(),
            elapsed_secs: self.elapsed.as_secs_f64(),
            latency: latency(&recorder.all),
            spectrum: spectrum(&recorder.all),
            operations: recorder
                .operations
                .iter()
                .map(|(&name, operation)| {
                    let summary = OperationSummary {
                        answered: operation.answered,
                        errors: operation.errors,
                        latency: latency(&operation.latency),
                        spectrum: spectrum(&operation.latency),
                    };
                    (name.to_owned(), summary)
                })
                .collect(),
            seconds: recorder
                .seconds
                .iter()
                .enumerate()
                .map(|(index, second)| SecondSummary {
                    second: index as u64,
                    counts: second.counts,
                    p50_ms: millis(second.latency.value_at_quantile(0.5)),
                    p99_ms: millis(second.latency.value_at_quantile(0.99)),
                    max_ms: millis(second.latency.max()),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = "read";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn counts_add_up_by_outcome_operation_and_second() {
        let mut recorder = Recorder::new();
        recorder.record(ms(100), ms(2), Completion::Ok { operation: READ });
        recorder.record(ms(900), ms(4), Completion::Ok { operation: READ });
        let failure = Failure("http 503".to_owned());
        let failed = Completion::Failed {
            operation: READ,
            failure,
        };
        recorder.record(ms(1_100), ms(1), failed);
        recorder.record(ms(2_500), ms(5_000), Completion::TimedOut);
        recorder.dropped(ms(2_600));
        let summary = recorder.finish(ms(3_000)).summary();

        let expected = Counts {
            sent: 4,
            ok: 2,
            errors: 1,
            timeouts: 1,
            dropped: 1,
        };
        assert_eq!(summary.counts, expected);
        assert_eq!(summary.errors_by_kind["http 503"], 1);
        let read = &summary.operations[READ];
        assert_eq!((read.answered, read.errors), (3, 1));
        assert_eq!(read.latency.samples, 3);
        let per_second: Vec<(u64, u64)> = summary
            .seconds
            .iter()
            .map(|s| (s.counts.sent, s.counts.dropped))
            .collect();
        assert_eq!(per_second, vec![(2, 0), (1, 0), (1, 1)]);
        // The timeout is in the histogram, at the time it was given up on.
        assert!(summary.latency.max_ms >= 4_990.0, "{:?}", summary.latency);
    }

    #[test]
    fn percentiles_come_from_every_sample() {
        let mut recorder = Recorder::new();
        for n in 1..=1_000 {
            recorder.record(ms(n), ms(n), Completion::Ok { operation: READ });
        }
        let summary = recorder.finish(ms(1_000)).summary();
        let latency = summary.latency;
        let close = |value: f64, expected: f64| (value - expected).abs() <= expected * 0.002;
        assert!(close(latency.p50_ms, 500.0), "{latency:?}");
        assert!(close(latency.p99_ms, 990.0), "{latency:?}");
        assert!(close(latency.p999_ms, 999.0), "{latency:?}");
        assert!(close(latency.max_ms, 1_000.0), "{latency:?}");
        let last = summary.spectrum.last().expect("a spectrum");
        assert_eq!(last.percentile, 100.0);
        assert!(
            summary
                .spectrum
                .windows(2)
                .all(|w| w[0].percentile <= w[1].percentile && w[0].latency_ms <= w[1].latency_ms)
        );
    }
}

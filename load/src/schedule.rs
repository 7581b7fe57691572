//! When requests are sent: an open loop at a fixed arrival rate, or a closed
//! loop of connections that each wait for their previous answer.
//!
//! **Coordinated omission.** A closed-loop generator (and any generator that
//! waits for a slow answer before sending the next request) quietly stops
//! sending while the system stalls, so the stall shows up as *one* slow
//! request instead of the hundreds that real users, who do not wait for each
//! other, would have suffered; its percentiles describe a system nobody
//! uses. The open loop here fixes each request's *intended* send time in
//! advance (`start + n / rate`) and measures latency from that time to the
//! answer, as wrk2 does: when the system stalls, the requests that should
//! have gone out meanwhile are still sent, late, and their wait counts.
//! Requests are never skipped; they pile up as in-flight tasks, up to
//! `--max-in-flight`, and past that are counted as *dropped* (a dropped
//! request's latency is unknown, so any at all means the system was
//! saturated). An open loop may also be held to a fixed number of
//! connections, as wrk2's `-R` with `-c` is: a due request then waits for a
//! free connection, and that wait counts in its latency. Without the cap,
//! every request that finds no idle connection opens one, so a burst costs
//! the server hundreds of TCP handshakes at the worst moment, which measures
//! the connection storm rather than the service. The closed loop is kept because it answers a different
//! question, the most a fixed number of clients can push through, and
//! because comparing the two on one stall is the clearest demonstration of
//! the difference (see the tests).
//!
//! The driver is generic over [`Target`]: anything that can send request
//! number `n` and say how it went. The gateway workloads are one target; a
//! gRPC service or a raw Redis loop can be another, measured the same way.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout};

use crate::recorder::{Completion, Recorder, Recording};

/// Something to load: sends request number `n` and reports what it was and
/// how it ended. The driver measures the time and enforces the timeout.
pub trait Target: Send + Sync + 'static {
    fn call(&self, n: u64) -> impl Future<Output = Outcome> + Send;
}

/// How one request ended, as a [`Target`] saw it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What the request was, e.g. `GET /users/{id}/timeline`: the report
    /// keeps one histogram per operation.
    pub operation: &'static str,
    pub result: Result<(), Failure>,
}

/// Why a request failed, as the report groups failures: `http 503`,
/// `transport: connect`, `grpc Unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Failure(pub String);

/// A failed gateway call, by the name its `Display` gives it.
impl From<chirp_client::Error> for Failure {
    fn from(error: chirp_client::Error) -> Self {
        Self(error.to_string())
    }
}

/// When requests go out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `rate` requests per second on a fixed schedule, whatever the answers;
    /// with `connections`, at most that many are being sent at once and the
    /// others wait their turn (measured from their intended time all the
    /// same).
    OpenLoop {
        rate: f64,
        max_in_flight: usize,
        connections: Option<usize>,
    },
    /// `connections` workers, each sending its next request when the
    /// previous one has returned.
    ClosedLoop { connections: usize },
}

/// A whole run: how requests are sent, for how long, how long each may take.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub mode: Mode,
    pub duration: Duration,
    /// A request still unanswered after this long counts as a timeout.
    pub timeout: Duration,
}

/// Runs `plan` against `target` and returns everything recorded. Returns
/// once the last request has answered or timed out.
pub async fn drive<T: Target>(target: Arc<T>, plan: Plan) -> Recording {
    let recorder = Arc::new(Mutex::new(Recorder::new()));
    let start = Instant::now();
    match plan.mode {
        Mode::OpenLoop {
            rate,
            max_in_flight,
            connections,
        } => {
            let limits = Limits {
                max_in_flight,
                connections,
            };
            open_loop(target, &plan, rate, limits, start, &recorder).await;
        }
        Mode::ClosedLoop { connections } => {
            closed_loop(target, &plan, connections, start, &recorder).await;
        }
    }
    let elapsed = start.elapsed();
    let recorder = Arc::into_inner(recorder)
        .map(|mutex| mutex.into_inner().unwrap_or_else(PoisonError::into_inner))
        .unwrap_or_else(|| unreachable!("every request task has finished"));
    recorder.finish(elapsed)
}

/// The intended send time of request `n`, as an offset from the start.
pub fn intended_offset(n: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(n as f64 / rate)
}

/// How many requests a run of `duration` at `rate` intends to send.
pub fn planned_requests(rate: f64, duration: Duration) -> u64 {
    (rate * duration.as_secs_f64()).floor() as u64
}

/// What bounds an open loop's concurrency: requests outstanding (past it,
/// due requests are dropped), and requests being sent (past it, they wait).
struct Limits {
    max_in_flight: usize,
    connections: Option<usize>,
}

async fn open_loop<T: Target>(
    target: Arc<T>,
    plan: &Plan,
    rate: f64,
    limits: Limits,
    start: Instant,
    recorder: &Arc<Mutex<Recorder>>,
) {
    match limits.connections {
        None => open_loop_of_tasks(target, plan, rate, limits.max_in_flight, start, recorder).await,
        Some(connections) => {
            let max_in_flight = limits.max_in_flight;
            open_loop_over_connections(
                target,
                plan,
                rate,
                connections,
                max_in_flight,
                start,
                recorder,
            )
            .await;
        }
    }
}

/// Every request its own task, spawned at its intended time.
async fn open_loop_of_tasks<T: Target>(
    target: Arc<T>,
    plan: &Plan,
    rate: f64,
    max_in_flight: usize,
    start: Instant,
    recorder: &Arc<Mutex<Recorder>>,
) {
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let mut tasks = JoinSet::new();
    for n in 0..planned_requests(rate, plan.duration) {
        let offset = intended_offset(n, rate);
        let intended = start + offset;
        sleep_until(intended).await;
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            lock(recorder).dropped(offset);
            continue;
        };
        let (target, recorder, limit) = (target.clone(), recorder.clone(), plan.timeout);
        tasks.spawn(async move {
            let completion = send(&*target, n, limit).await;
            // From the intended time, not from when the task got to run:
            // a late send is the system's (or the generator's) delay too.
            let latency = intended.elapsed();
            lock(&recorder).record(offset, latency, completion);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// A fixed set of connections, as in wrk2: each takes the next request in
/// schedule order, waits for its intended time if that is still ahead, and
/// sends it. When every connection is busy, due requests wait in order for
/// the next free one, and the wait counts in their latency. This costs the
/// generator one task per connection rather than one per request, which
/// matters when it shares the machine with what it measures.
async fn open_loop_over_connections<T: Target>(
    target: Arc<T>,
    plan: &Plan,
    rate: f64,
    connections: usize,
    max_in_flight: usize,
    start: Instant,
    recorder: &Arc<Mutex<Recorder>>,
) {
    let planned = planned_requests(rate, plan.duration);
    let next = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..connections {
        let (target, recorder, limit) = (target.clone(), recorder.clone(), plan.timeout);
        let (next, finished) = (next.clone(), finished.clone());
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= planned {
                    break;
                }
                let offset = intended_offset(n, rate);
                let intended = start + offset;
                sleep_until(intended).await;
                // Requests due by now and not finished: past the limit, this
                // one is dropped as the task-per-request loop would have.
                let due = planned_requests(rate, start.elapsed()).min(planned) + 1;
                let outstanding = due.saturating_sub(finished.load(Ordering::Relaxed));
                if outstanding > max_in_flight as u64 {
                    lock(&recorder).dropped(offset);
                } else {
                    let completion = send(&*target, n, limit).await;
                    lock(&recorder).record(offset, intended.elapsed(), completion);
                }
                finished.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

async fn closed_loop<T: Target>(
    target: Arc<T>,
    plan: &Plan,
    connections: usize,
    start: Instant,
    recorder: &Arc<Mutex<Recorder>>,
) {
    let next = Arc::new(AtomicU64::new(0));
    let end = start + plan.duration;
    let mut workers = JoinSet::new();
    for _ in 0..connections {
        let (target, recorder, next, limit) =
            (target.clone(), recorder.clone(), next.clone(), plan.timeout);
        workers.spawn(async move {
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                let completion = send(&*target, n, limit).await;
                lock(&recorder).record(sent - start, sent.elapsed(), completion);
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

/// One request, cut off at `limit`.
async fn send<T: Target>(target: &T, n: u64, limit: Duration) -> Completion {
    match timeout(limit, target.call(n)).await {
        Ok(Outcome {
            operation,
            result: Ok(()),
        }) => Completion::Ok { operation },
        Ok(Outcome {
            operation,
            result: Err(failure),
        }) => Completion::Failed { operation, failure },
        Err(_) => Completion::TimedOut,
    }
}

/// The recorder's lock, held for a few histogram increments. A panic while
/// holding it cannot leave the counts half-updated in a way that matters, so
/// a poisoned lock is used as is.
fn lock(recorder: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service whose answer time is a pure function of when the request
    /// was sent: 1 ms, except that everything sent during a one-second stall
    /// is answered when the stall ends.
    struct Stalling {
        epoch: Instant,
    }

    /// The stall: 1 s, from just before the request intended at 3 s to just
    /// before the one at 4 s, so that at 100 req/s it catches exactly the
    /// hundred requests from 3.00 s to 3.99 s.
    const STALL: (Duration, Duration) =
        (Duration::from_millis(2_995), Duration::from_millis(3_995));

    impl Target for Stalling {
        async fn call(&self, _n: u64) -> Outcome {
            let sent = self.epoch.elapsed();
            let answered = if (STALL.0..STALL.1).contains(&sent) {
                STALL.1
            } else {
                sent + Duration::from_millis(1)
            };
            sleep_until(self.epoch + answered).await;
            Outcome {
                operation: "stalling",
                result: Ok(()),
            }
        }
    }

    fn plan(mode: Mode) -> Plan {
        Plan {
            mode,
            duration: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }

    async fn run(mode: Mode) -> Recording {
        let target = Arc::new(Stalling {
            epoch: Instant::now(),
        });
        drive(target, plan(mode)).await
    }

    // Tokio's paused clock is virtual: it jumps straight to the next timer
    // whenever every task is waiting, so these ten-second runs take
    // milliseconds and measure exactly the same every time.

    #[tokio::test(start_paused = true)]
    async fn the_open_loop_charges_the_stall_to_every_request_it_delayed() {
        let recording = run(Mode::OpenLoop {
            rate: 100.0,
            max_in_flight: 1_000,
            connections: None,
        })
        .await;
        let summary = recording.summary();
        assert_eq!(summary.counts.sent, 1_000);
        assert_eq!(summary.counts.ok, 1_000);
        // 100 of the 1 000 requests were intended during the stall and waited
        // for its end: from 995 ms down to 5 ms.
        assert!(summary.latency.p99_ms > 500.0, "{:?}", summary.latency);
        assert!(summary.latency.p90_ms < 10.0, "{:?}", summary.latency);
        let max = summary.latency.max_ms;
        assert!((990.0..1_000.0).contains(&max), "{max}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_loop_sees_the_same_stall_as_one_slow_request() {
        let recording = run(Mode::ClosedLoop { connections: 1 }).await;
        let summary = recording.summary();
        // About 9 000 requests of 1 ms, and one that waited for the stall.
        assert!(summary.counts.sent > 8_000, "{:?}", summary.counts);
        assert!(summary.latency.p99_ms < 2.0, "{:?}", summary.latency);
        assert!(summary.latency.max_ms > 900.0, "{:?}", summary.latency);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_over_one_connection_charges_the_queue_behind_the_stall() {
        let recording = run(Mode::OpenLoop {
            rate: 100.0,
            max_in_flight: 1_000,
            connections: Some(1),
        })
        .await;
        let summary = recording.summary();
        assert_eq!(summary.counts.sent, 1_000);
        assert_eq!(summary.counts.ok, 1_000);
        // The stalled request holds the only connection for a second: the
        // hundred due meanwhile queue behind it, and their wait counts; then
        // they go one at a time, so the queue takes a while longer to drain
        // than without the cap, and charges the requests due meanwhile too.
        let latency = summary.latency;
        assert!(latency.p99_ms > 500.0, "{latency:?}");
        assert!(latency.p50_ms < 2.0, "{latency:?}");
        assert!(latency.p90_ms > 10.0, "{latency:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn past_max_in_flight_requests_are_dropped_and_counted() {
        let recording = run(Mode::OpenLoop {
            rate: 100.0,
            max_in_flight: 10,
            connections: None,
        })
        .await;
        let counts = recording.summary().counts;
        // The requests of 3.00 s to 3.09 s wait out the stall; the ninety
        // after them find no room.
        assert_eq!(counts.dropped, 90);
        assert_eq!(counts.sent + counts.dropped, 1_000);
        assert_eq!(counts.ok, counts.sent);
    }

    #[tokio::test(start_paused = true)]
    async fn over_connections_too_requests_past_max_in_flight_are_dropped() {
        let recording = run(Mode::OpenLoop {
            rate: 100.0,
            max_in_flight: 10,
            connections: Some(4),
        })
        .await;
        let counts = recording.summary().counts;
        assert!(counts.dropped > 50, "{counts:?}");
        assert_eq!(counts.sent + counts.dropped, 1_000);
        assert_eq!(counts.ok, counts.sent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_the_timeout_counts_as_one() {
        let target = Arc::new(Stalling {
            epoch: Instant::now(),
        });
        let plan = Plan {
            timeout: Duration::from_millis(500),
            ..plan(Mode::OpenLoop {
                rate: 100.0,
                max_in_flight: 1_000,
                connections: None,
            })
        };
        let counts = drive(target, plan).await.summary().counts;
        // The requests of 3.00 s to 3.49 s would be answered over 500 ms late.
        assert_eq!(counts.timeouts, 50);
        assert_eq!(counts.ok + counts.timeouts, counts.sent);
    }

    #[test]
    fn the_schedule_is_fixed_in_advance() {
        assert_eq!(planned_requests(100.0, Duration::from_secs(10)), 1_000);
        assert_eq!(planned_requests(2.5, Duration::from_secs(3)), 7);
        assert_eq!(intended_offset(250, 100.0), Duration::from_millis(2_500));
    }
}

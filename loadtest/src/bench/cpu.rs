//! CPU time spent by each process of the read path during a stage, from
//! Linux's `/proc`: where a page's cost goes.
//!
//! Throughput on one machine is bounded by CPU shared between the load
//! generator and every process it drives, so "the gateway reaches 0.2× the
//! Redis floor" is only half an answer. Dividing each process's CPU time
//! during a stage by the pages it served gives microseconds of CPU per page,
//! per process: the gap to the floor, itemised. Processes are found by name
//! (`gateway`, `timeline`, `redis-server`, `postgres`, …) plus this process itself, so
//! the services must run as their own binaries (as `deploy/bench.sh` runs
//! them); services run inside this process (the tests) show up as `loadtest`.
//! Elsewhere than Linux nothing is measured.

use std::collections::BTreeMap;
use std::time::Duration;

/// The processes whose CPU is accounted, by their `comm` name: the
/// services, and the backends they call while serving (Postgres's many
/// processes summed; `java` is Cassandra and Kafka together).
const PROCESSES: &[&str] = &[
    "gateway",
    "timeline",
    "tweet",
    "graph",
    "redis-server",
    "postgres",
    "java",
];

/// CPU time (user + system) of each process found, by name; this process as
/// `loadtest`.
#[derive(Debug, Clone, Default)]
pub struct CpuTimes(BTreeMap<String, Duration>);

impl CpuTimes {
    pub fn now() -> Self {
        let mut times = BTreeMap::new();
        if let Some(own) = cpu_time("self") {
            times.insert("loadtest".to_owned(), own);
        }
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Self(times);
        };
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
                continue;
            };
            let comm = comm.trim();
            if let Some(name) = PROCESSES.iter().find(|name| **name == comm)
                && let Some(time) = cpu_time(&pid)
            {
                *times.entry((*name).to_owned()).or_default() += time;
            }
        }
        Self(times)
    }

    /// Microseconds of CPU per request, by process, between `self` (before)
    /// and `after`, for the processes that used any.
    pub fn per_request(&self, after: &Self, requests: u64) -> BTreeMap<String, f64> {
        after
            .0
            .iter()
            .filter_map(|(name, end)| {
                let spent = end.saturating_sub(self.0.get(name).copied().unwrap_or_default());
                (!spent.is_zero() && requests > 0)
                    .then(|| (name.clone(), spent.as_secs_f64() * 1e6 / requests as f64))
            })
            .collect()
    }
}

/// User plus system time of `/proc/{pid}`, from fields 14 and 15 of its
/// `stat`, in clock ticks of 1/100 s (USER_HZ, 100 on every Linux
/// architecture Rust targets).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name, field 2, is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks = |index: usize| fields.get(index)?.parse::<u64>().ok();
    // Field 14 is the 12th after the name (field 3 is the first).
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_accounted_and_its_time_only_grows() {
        let before = CpuTimes::now();
        let mut spin = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(100) {
            spin = spin.wrapping_add(std::hint::black_box(1));
        }
        let after = CpuTimes::now();
        if cfg!(target_os = "linux") {
            let per_request = before.per_request(&after, 1);
            assert!(
                per_request["loadtest"] > 0.0,
                "{per_request:?} after {spin} spins"
            );
        }
        assert!(before.per_request(&after, 0).is_empty());
    }
}

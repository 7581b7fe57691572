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

/// User plus system time of `/proc/{pid}`.
fn cpu_time(pid: &str) -> Option<Duration> {
    Stat::read(pid).map(|stat| ticks(stat.utime + stat.stime))
}

/// Clock ticks as time: `/proc` counts CPU in ticks of 1/100 s (USER_HZ,
/// 100 on every Linux architecture Rust targets).
pub(crate) fn ticks(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 10)
}

/// The fields of `/proc/{pid}/stat` the CPU accounting reads (proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Field 3: `Z` for a process that exited and was not waited for yet.
    pub state: char,
    /// Field 4.
    pub ppid: u32,
    /// Fields 14 and 15, in ticks: its own CPU time.
    pub utime: u64,
    pub stime: u64,
    /// Fields 16 and 17, in ticks: the CPU time of the children it has
    /// waited for, once they exited.
    pub cutime: u64,
    pub cstime: u64,
    /// Field 22, in ticks since boot: with the pid, names one process, as
    /// pids are reused.
    pub starttime: u64,
}

impl Stat {
    /// `/proc/{pid}/stat`, or `None` if there is no such process (or no
    /// `/proc`).
    pub(crate) fn read(pid: &str) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    fn parse(stat: &str) -> Option<Self> {
        // The name, field 2, is in parentheses and may hold spaces.
        let after_name = stat.get(stat.rfind(')')? + 2..)?;
        let fields: Vec<&str> = after_name.split(' ').collect();
        // Field 3 is the first after the name.
        let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
        Some(Self {
            state: fields.first()?.chars().next()?,
            ppid: u32::try_from(number(4)?).ok()?,
            utime: number(14)?,
            stime: number(15)?,
            cutime: number(16)?,
            cstime: number(17)?,
            starttime: number(22)?,
        })
    }

    /// Its own CPU time and that of the children it waited for, in ticks.
    pub(crate) fn with_waited_children(&self) -> u64 {
        self.utime + self.stime + self.cutime + self.cstime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_parsed_around_a_name_with_spaces_and_parentheses() {
        let line = "4242 (java (x) y) S 17 4242 4242 0 -1 4194560 1 2 3 4 120 30 7 8 20 0 \
                    41 0 555123 1000 10 18446744073709551615";
        let stat = Stat::parse(line).expect("parses");
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                ppid: 17,
                utime: 120,
                stime: 30,
                cutime: 7,
                cstime: 8,
                starttime: 555123,
            }
        );
        assert_eq!(stat.with_waited_children(), 165);
        assert_eq!(Stat::parse("4242 (cut"), None);
    }

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

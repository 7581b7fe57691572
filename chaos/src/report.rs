//! The one table `chaos` prints: a row per fault, what the clients got
//! accepted, and what the checks found.
//!
//! 5xx are split by the fault window (from the injection until the probe
//! saw a new post delivered again): inside it they are the fault showing,
//! and a client retries; outside it there must be none.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::checks::Findings;
use super::workload::Ledger;

#[derive(Debug, Clone)]
pub struct Row {
    pub fault: &'static str,
    pub posts_accepted: usize,
    pub deletes_accepted: usize,
    /// Posts and deletes the clients gave up on (never answered).
    pub unanswered: usize,
    pub findings: Findings,
    pub server_errors_in_window: usize,
    pub server_errors_outside: usize,
    /// From the injection until a new post was delivered again.
    pub recovered_after: Option<Duration>,
    /// From the end of the run until every check passed.
    pub converged_after: Option<Duration>,
}

impl Row {
    pub fn new(
        fault: &'static str,
        ledger: &Ledger,
        findings: Findings,
        window: (Instant, Option<Instant>),
        converged_after: Option<Duration>,
    ) -> Self {
        let (injected, recovered) = window;
        let inside = |started: Instant, finished: Instant| {
            finished >= injected && recovered.is_none_or(|recovered| started <= recovered)
        };
        let errors = ledger.attempts.iter().filter(|a| a.server_error);
        let in_window = errors
            .clone()
            .filter(|a| inside(a.started, a.finished))
            .count();
        Self {
            fault,
            posts_accepted: ledger.posts.len(),
            deletes_accepted: ledger.deletes.len(),
            unanswered: ledger.posts_unanswered.len() + ledger.deletes_unanswered.len(),
            server_errors_in_window: in_window,
            server_errors_outside: errors.count() - in_window,
            findings,
            recovered_after: recovered.map(|at| at - injected),
            converged_after,
        }
    }

    /// Whether the row shows the system kept every promise.
    pub fn passed(&self) -> bool {
        self.findings.clean()
            && self.unanswered == 0
            && self.server_errors_outside == 0
            && self.recovered_after.is_some()
    }
}

fn seconds(duration: Option<Duration>) -> String {
    match duration {
        Some(duration) => format!("{:.1} s", duration.as_secs_f64()),
        None => "never".to_owned(),
    }
}

/// The table, in Markdown (readable in a terminal, pasteable into docs).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| fault | posts accepted | deletes | lost | phantom | duplicates | paging gaps \
         | unfollowed visible | unanswered | 5xx in window | 5xx outside | time to recover \
         | checks clean after |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let f = &row.findings;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.fault,
            row.posts_accepted,
            row.deletes_accepted,
            f.lost,
            f.phantom,
            f.duplicates,
            f.paging_gaps,
            f.unfollowed_visible,
            row.unanswered,
            row.server_errors_in_window,
            row.server_errors_outside,
            seconds(row.recovered_after),
            seconds(row.converged_after),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Attempt;

    #[test]
    fn server_errors_are_split_by_the_fault_window() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut ledger = Ledger::default();
        for (started, finished) in [(0, 5), (95, 105), (150, 160), (300, 310)] {
            ledger.attempts.push(Attempt {
                started: at(started),
                finished: at(finished),
                server_error: true,
            });
        }
        ledger.attempts.push(Attempt {
            started: at(0),
            finished: at(1),
            server_error: false,
        });
        let row = Row::new(
            "x",
            &ledger,
            Findings::default(),
            (at(100), Some(at(200))),
            None,
        );
        assert_eq!(
            (row.server_errors_in_window, row.server_errors_outside),
            (2, 2)
        );
        assert_eq!(row.recovered_after, Some(Duration::from_millis(100)));
        assert!(!row.passed());
    }
}

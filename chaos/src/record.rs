//! The run record `chaos --json FILE` writes: what the table shows, with
//! when, where, how and on which commit it was measured.
//!
//! The docs quote no chaos figure by hand: a run's record is committed under
//! `docs/runs/` and `deploy/render-docs.py` renders docs/RELIABILITY.md's
//! table from it, so the table always says which run it shows.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::Serialize;

use super::report::Row;
use chirp_load::machine::Machine;

#[derive(Debug, Serialize)]
pub struct Record {
    /// When the run ended (UTC, RFC 3339).
    pub date: String,
    pub machine: Machine,
    /// The command line, as typed.
    pub command: String,
    /// The commit of the repository whose scripts and binaries ran, with
    /// `-dirty` when it had uncommitted changes.
    pub commit: String,
    pub profile: String,
    pub short: bool,
    pub bound_secs: u64,
    /// Whether every row kept every promise.
    pub passed: bool,
    pub rows: Vec<RowRecord>,
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub struct RowRecord {
    pub fault: &'static str,
    pub posts_accepted: usize,
    pub deletes_accepted: usize,
    pub lost: usize,
    pub phantom: usize,
    pub duplicates: usize,
    pub paging_gaps: usize,
    pub unreadable: usize,
    pub unanswered: usize,
    pub server_errors_in_window: usize,
    pub server_errors_outside: usize,
    /// From the injection until a new post was delivered again; none: never.
    pub recovered_after_secs: Option<f64>,
    /// From the end of the run until every check passed; none: never.
    pub converged_after_secs: Option<f64>,
    pub passed: bool,
}

impl From<&Row> for RowRecord {
    fn from(row: &Row) -> Self {
        let f = &row.findings;
        Self {
            fault: row.fault,
            posts_accepted: row.posts_accepted,
            deletes_accepted: row.deletes_accepted,
            lost: f.lost,
            phantom: f.phantom,
            duplicates: f.duplicates,
            paging_gaps: f.paging_gaps,
            unreadable: f.unreadable,
            unanswered: row.unanswered,
            server_errors_in_window: row.server_errors_in_window,
            server_errors_outside: row.server_errors_outside,
            recovered_after_secs: row.recovered_after.as_ref().map(Duration::as_secs_f64),
            converged_after_secs: row.converged_after.as_ref().map(Duration::as_secs_f64),
            passed: row.passed(),
        }
    }
}

impl Record {
    pub fn new(args: &super::ChaosArgs, repo: &Path, rows: &[Row]) -> Self {
        Self {
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            machine: Machine::this(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            commit: commit(repo),
            profile: args.stack.profile.clone(),
            short: args.short,
            bound_secs: args.bound_secs,
            passed: rows.iter().all(Row::passed),
            rows: rows.iter().map(RowRecord::from).collect(),
        }
    }

    /// Writes the record to `path`, making its folder (e.g. a new
    /// `docs/runs/chaos/`).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        let json = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
    }
}

/// `git rev-parse HEAD` of `repo`, `-dirty` appended when the work tree has
/// changes; "unknown" outside a git checkout (a record without a commit is
/// still a record).
fn commit(repo: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(head) if git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty()) => {
            format!("{head}-dirty")
        }
        Some(head) => head,
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Findings;

    /// The field names are a contract with deploy/render-docs.py.
    #[test]
    fn a_row_records_what_the_table_shows() {
        let row = Row {
            fault: "x",
            posts_accepted: 3,
            deletes_accepted: 1,
            unanswered: 0,
            findings: Findings {
                lost: 1,
                ..Findings::default()
            },
            server_errors_in_window: 2,
            server_errors_outside: 0,
            recovered_after: Some(Duration::from_millis(1500)),
            converged_after: None,
        };
        let json = serde_json::to_value(RowRecord::from(&row)).unwrap();
        assert_eq!(json["fault"], "x");
        assert_eq!(json["lost"], 1);
        assert_eq!(json["server_errors_in_window"], 2);
        assert_eq!(json["recovered_after_secs"], 1.5);
        assert!(json["converged_after_secs"].is_null());
        assert_eq!(json["passed"], false);
    }

    #[test]
    fn the_record_is_written_into_a_folder_that_does_not_exist_yet() {
        let folder = std::env::temp_dir().join(format!("chirp-record-{}", std::process::id()));
        let path = folder.join("chaos").join("run.json");
        let record = Record {
            date: "2026-12-07T00:00:00Z".to_owned(),
            machine: Machine::this(),
            command: "loadtest chaos".to_owned(),
            commit: commit(Path::new("/nonexistent")),
            profile: "debug".to_owned(),
            short: true,
            bound_secs: 60,
            passed: true,
            rows: Vec::new(),
        };
        record.write(&path).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        std::fs::remove_dir_all(&folder).unwrap();
        assert_eq!(back["commit"], "unknown");
        assert_eq!(back["rows"], serde_json::json!([]));
    }
}

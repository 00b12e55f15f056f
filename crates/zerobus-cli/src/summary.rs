//! The end of an ingest: rows read, sent, acknowledged and failed (grouped by reason),
//! time and throughput, as text or JSON, and the exit code they make.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow_zerobus_sdk_wrapper::{TransmissionResult, ZerobusError};
use indicatif::{HumanBytes, HumanCount, HumanDuration};
use serde_json::json;

use crate::exit;

/// What became of the rows of one `zerobus ingest`.
#[derive(Debug)]
pub struct Summary {
    table: String,
    dry_run: bool,
    started: Instant,
    /// Input files found.
    pub files: usize,
    /// Rows read from the files.
    pub rows_read: u64,
    /// Bytes of the files read so far.
    pub bytes_read: u64,
    /// Rows handed to the wrapper (read and not stopped by an error of their batch).
    pub rows_sent: u64,
    /// Rows acknowledged as durable (in a dry run: rows that encoded).
    pub rows_acked: u64,
    /// Rows that failed, each with its reason.
    pub rows_failed: u64,
    groups: BTreeMap<String, Group>,
    /// Errors that are not a row's: an unreadable file, a failed shutdown, what stopped
    /// the ingest.
    pub errors: Vec<String>,
    /// The quarantine files written, with their row counts.
    pub quarantine_files: Vec<(PathBuf, u64)>,
    /// Ctrl-C was pressed: reading stopped, what was in flight was waited for.
    pub interrupted: bool,
    /// When interrupted: the files not read to their end.
    pub unfinished: Vec<Unfinished>,
    /// When interrupted: the rows not read, if the row count of every unfinished file is
    /// known (Parquet files).
    pub rows_not_read: Option<u64>,
    elapsed: Option<Duration>,
}

/// A file whose reading an interrupt stopped (or never started).
#[derive(Debug)]
pub struct Unfinished {
    /// The file.
    pub file: String,
    /// Its rows read (and sent): rows `0..rows_read`.
    pub rows_read: u64,
    /// Its rows, where its metadata says (Parquet).
    pub rows: Option<u64>,
}

impl Unfinished {
    /// `FILE: rows R.. (of N) not read`.
    fn line(&self) -> String {
        let of = self
            .rows
            .map(|n| format!(" of {}", HumanCount(n)))
            .unwrap_or_default();
        format!(
            "{}: rows {}..{of} not read",
            self.file,
            HumanCount(self.rows_read)
        )
    }
}

/// Unfinished files listed one a line in the text summary, at most.
const UNFINISHED_LINES: usize = 10;

/// The failed rows of one reason.
#[derive(Debug)]
struct Group {
    rows: u64,
    first_file: String,
    first_row: u64,
    first_error: String,
}

impl Group {
    /// `N × reason (first: FILE row R: error)`.
    fn line(&self, reason: &str) -> String {
        format!(
            "{} × {reason} (first: {} row {}: {})",
            self.rows, self.first_file, self.first_row, self.first_error
        )
    }
}

/// The reason a row failed, for grouping: the error type, and for conversion errors the
/// kind (`ConversionError (ValueOutOfRange)`).
pub fn reason(error: &ZerobusError) -> String {
    match error.conversion_failure() {
        Some(failure) => format!("{} ({})", error.error_type(), failure.kind),
        None => error.error_type().to_string(),
    }
}

impl Summary {
    /// An empty summary of an ingest into `table`, timed from now.
    pub fn new(table: &str, dry_run: bool) -> Self {
        Self {
            table: table.to_string(),
            dry_run,
            started: Instant::now(),
            files: 0,
            rows_read: 0,
            bytes_read: 0,
            rows_sent: 0,
            rows_acked: 0,
            rows_failed: 0,
            groups: BTreeMap::new(),
            errors: Vec::new(),
            quarantine_files: Vec::new(),
            interrupted: false,
            unfinished: Vec::new(),
            rows_not_read: None,
            elapsed: None,
        }
    }

    /// Counts `result`, the outcome of the rows `first_row..` of `file`.
    pub fn record(&mut self, file: &str, first_row: u64, result: &TransmissionResult) {
        self.rows_acked += result.successful_count as u64;
        self.rows_failed += result.failed_count as u64;
        for (row, error) in &result.failed_rows {
            self.groups
                .entry(reason(error))
                .and_modify(|g| g.rows += 1)
                .or_insert_with(|| Group {
                    rows: 1,
                    first_file: file.to_string(),
                    first_row: first_row + *row as u64,
                    first_error: error.to_string(),
                });
        }
    }

    /// Stops the clock.
    pub fn finish(&mut self) {
        self.elapsed = Some(self.started.elapsed());
    }

    fn elapsed(&self) -> Duration {
        self.elapsed.unwrap_or_else(|| self.started.elapsed())
    }

    /// Rows acknowledged per second.
    pub fn rows_per_second(&self) -> f64 {
        self.rows_acked as f64 / self.elapsed().as_secs_f64().max(1e-9)
    }

    /// [`exit::INTERRUPTED`] after Ctrl-C, else [`exit::SUCCESS`] if every row read
    /// landed and nothing else failed, [`exit::PARTIAL`] if some landed, else
    /// [`exit::FAILED`].
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.rows_acked == self.rows_read
            && self.rows_failed == 0
            && self.errors.is_empty()
        {
            exit::SUCCESS
        } else if self.rows_acked > 0 {
            exit::PARTIAL
        } else {
            exit::FAILED
        }
    }

    /// One line per failure reason: `N × reason (first: FILE row R: error)`.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .groups
            .iter()
            .map(|(reason, g)| g.line(reason))
            .collect();
        lines.extend(self.errors.iter().cloned());
        lines
    }

    /// The summary for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let landed = if self.dry_run {
            "would land (dry run: encoded, nothing sent)"
        } else {
            "landed (acknowledged)"
        };
        if self.interrupted {
            let _ = writeln!(
                out,
                "interrupted (Ctrl-C): reading stopped; the rows sent were waited for"
            );
        }
        let _ = writeln!(
            out,
            "{} {} row(s) from {} file(s) ({}) into {}",
            if self.dry_run { "checked" } else { "ingested" },
            HumanCount(self.rows_read),
            self.files,
            HumanBytes(self.bytes_read),
            self.table
        );
        let _ = writeln!(out, "  sent:     {} rows", HumanCount(self.rows_sent));
        let _ = writeln!(out, "  {landed}: {} rows", HumanCount(self.rows_acked));
        let _ = writeln!(out, "  failed:   {} rows", HumanCount(self.rows_failed));
        for (reason, g) in &self.groups {
            let _ = writeln!(out, "    {}", g.line(reason));
        }
        if self.interrupted {
            let not_read = self.rows_not_read.map_or_else(
                || "an unknown number of rows (CSV, JSON and Arrow files have no row count)".into(),
                |n| format!("{} rows", HumanCount(n)),
            );
            let _ = writeln!(out, "  not read: {not_read}");
            for file in self.unfinished.iter().take(UNFINISHED_LINES) {
                let _ = writeln!(out, "    {}", file.line());
            }
            if self.unfinished.len() > UNFINISHED_LINES {
                let more = self.unfinished.len() - UNFINISHED_LINES;
                let _ = writeln!(out, "    and {more} more file(s) (--json lists them all)");
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "  errors:");
            for error in &self.errors {
                let _ = writeln!(out, "    {error}");
            }
        }
        for (path, rows) in &self.quarantine_files {
            let _ = writeln!(out, "  quarantine: {} ({rows} rows)", path.display());
        }
        let _ = writeln!(
            out,
            "  time:     {} ({:.3} s), {} rows/s",
            HumanDuration(self.elapsed()),
            self.elapsed().as_secs_f64(),
            HumanCount(self.rows_per_second() as u64)
        );
        out
    }

    /// The summary for scripts.
    pub fn json(&self) -> serde_json::Value {
        let failures: Vec<_> = self
            .groups
            .iter()
            .map(|(reason, g)| {
                json!({
                    "reason": reason,
                    "rows": g.rows,
                    "first_file": g.first_file,
                    "first_row": g.first_row,
                    "first_error": g.first_error,
                })
            })
            .collect();
        let quarantine: Vec<_> = self
            .quarantine_files
            .iter()
            .map(|(path, rows)| json!({"path": path.display().to_string(), "rows": rows}))
            .collect();
        let unfinished: Vec<_> = self
            .unfinished
            .iter()
            .map(|f| json!({"file": f.file, "rows_read": f.rows_read, "rows": f.rows}))
            .collect();
        json!({
            "table": self.table,
            "dry_run": self.dry_run,
            "files": self.files,
            "rows_read": self.rows_read,
            "bytes_read": self.bytes_read,
            "rows_sent": self.rows_sent,
            "rows_acknowledged": self.rows_acked,
            "rows_failed": self.rows_failed,
            "failures": failures,
            "errors": self.errors,
            "quarantine_files": quarantine,
            "interrupted": self.interrupted,
            "rows_not_read": self.rows_not_read,
            "unfinished_files": unfinished,
            "seconds": self.elapsed().as_secs_f64(),
            "rows_per_second": self.rows_per_second(),
            "exit_code": self.exit_code(),
        })
    }
}

//! Progress of an ingest: an indicatif bar on a terminal, plain periodic lines otherwise,
//! nothing with `--quiet`. On stderr, so stdout keeps the summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanCount, HumanDuration, ProgressBar, ProgressStyle};

use crate::summary::Summary;

/// Where progress goes.
pub enum Progress {
    /// A bar (stderr is a terminal).
    Bar(ProgressBar),
    /// A line every `interval` (stderr is a file or a pipe).
    Lines {
        /// The bytes of every input file.
        total_bytes: u64,
        /// Time between lines.
        interval: Duration,
        /// When the last line was printed.
        last: Instant,
        /// When the ingest started.
        started: Instant,
    },
    /// Nothing (`--quiet`).
    Off,
}

impl Progress {
    /// Progress over `total_bytes` of input: a bar on a terminal, else a line every
    /// `interval`; nothing if `quiet`.
    pub fn new(total_bytes: u64, quiet: bool, interval: Duration) -> Self {
        if quiet {
            return Self::Off;
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total_bytes);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.enable_steady_tick(Duration::from_millis(200));
            return Self::Bar(bar);
        }
        Self::Lines {
            total_bytes,
            interval,
            last: Instant::now(),
            started: Instant::now(),
        }
    }

    /// Shows the counts of `summary`.
    pub fn update(&mut self, summary: &Summary) {
        match self {
            Self::Bar(bar) => {
                bar.set_position(summary.bytes_read);
                bar.set_message(format!(
                    "{} rows, {} rows/s, {} failed",
                    HumanCount(summary.rows_read),
                    HumanCount(summary.rows_per_second() as u64),
                    HumanCount(summary.rows_failed)
                ));
            }
            Self::Lines {
                total_bytes,
                interval,
                last,
                started,
            } => {
                if last.elapsed() < *interval {
                    return;
                }
                *last = Instant::now();
                let fraction = summary.bytes_read as f64 / (*total_bytes).max(1) as f64;
                let elapsed = started.elapsed();
                let eta = if fraction > 0.0 {
                    let left = elapsed.as_secs_f64() * (1.0 - fraction) / fraction;
                    HumanDuration(Duration::from_secs_f64(left.max(0.0))).to_string()
                } else {
                    "unknown".to_string()
                };
                eprintln!(
                    "zerobus: {} rows read, {} of {} ({:.0}%), {} landed, {} failed, {} rows/s, ETA {eta}",
                    HumanCount(summary.rows_read),
                    HumanBytes(summary.bytes_read),
                    HumanBytes(*total_bytes),
                    fraction * 100.0,
                    HumanCount(summary.rows_acked),
                    HumanCount(summary.rows_failed),
                    HumanCount(summary.rows_per_second() as u64),
                );
            }
            Self::Off => {}
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

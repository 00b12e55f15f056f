//! `zerobus ingest FILES... --table NAME`.
//!
//! `--jobs` reader threads (2) take the files in turn and read each batch by batch into a
//! channel of two batches; the async side submits each batch to the wrapper
//! ([`ZerobusWrapper::submit_batch`]) and keeps at most `--max-inflight` batches waiting
//! for their acknowledgements. Memory therefore stays bounded by a few batches whatever
//! the size of the input, and reading (decoding Parquet, parsing CSV) overlaps encoding
//! and sending.
//!
//! Every row read ends acknowledged or failed with its reason (counted, and with
//! `--quarantine` written to a file). A batch in which every row failed for a reason
//! other than its values (authentication, connection, a table that refuses the schema)
//! stops the ingest: the next batches would fail the same way.
//!
//! Ctrl-C ([`crate::interrupt`]) stops the reading too: the batches already submitted are
//! settled, and the summary names the rows not read.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use arrow_zerobus_sdk_wrapper::{TransmissionResult, ZerobusError, ZerobusWrapper};
use clap::Args;
use tokio::sync::mpsc;

use crate::connection::ConnectionArgs;
use crate::error::{CliError, CliResult};
use crate::input::{discover, row_count, InputFile, ReadOptions, Reading};
use crate::interrupt::Interrupt;
use crate::progress::Progress;
use crate::quarantine::Quarantine;
use crate::summary::Summary;

/// `zerobus ingest`.
#[derive(Args)]
#[command(after_help = "\
Examples:
  zerobus ingest events.parquet --table main.demo.events --endpoint http://127.0.0.1:50051
  zerobus ingest 'data/2024-*.csv' data/extra/ --table main.demo.events \\
      --endpoint https://1234.zerobus.us-west-2.cloud.databricks.com \\
      --unity-catalog-url https://my-workspace.cloud.databricks.com --quarantine failed/
  zerobus ingest events.ndjson --table main.demo.events --dry-run
  zerobus ingest dump.bin --format arrows --table main.demo.events --config zerobus.yaml --json

Exit codes: 0 every row landed, 1 nothing landed, 3 some rows landed and some did not
(see the summary, and the files of --quarantine), 130 interrupted: the first Ctrl-C
stops reading and waits for the rows sent, the second exits at once.")]
pub struct IngestArgs {
    /// Input files, globs ('data/*.parquet') or directories (their Parquet, CSV, JSON and
    /// Arrow files, recursively).
    #[arg(required = true, value_name = "FILES")]
    files: Vec<String>,

    /// The Zerobus table, catalog.schema.table.
    #[arg(long, short = 't', value_name = "NAME")]
    table: String,

    /// Check the schema mapping and encode every row, send nothing (no endpoint needed).
    #[arg(long)]
    dry_run: bool,

    /// Write the rows that did not land, with their error, to Arrow IPC files in DIR
    /// (<input stem>.failed.arrows).
    #[arg(long, value_name = "DIR")]
    quarantine: Option<PathBuf>,

    /// Files read at the same time (each by its own thread).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..65))]
    jobs: u64,

    /// Batches sent and not yet acknowledged, at most.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..1025))]
    max_inflight: u64,

    /// No progress and no summary (errors still go to stderr; see the exit code).
    #[arg(long, short = 'q')]
    quiet: bool,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,

    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    progress_interval: f64,

    // Last but the connection: clap's `next_help_heading` of a flattened struct carries
    // over to the arguments after it.
    #[command(flatten)]
    read: ReadOptions,

    #[command(flatten)]
    connection: ConnectionArgs,
}

/// Runs `zerobus ingest` and prints its summary; the exit code of [`Summary::exit_code`].
///
/// An error before any row was read (no file, no endpoint, a bad option) is printed alone
/// on stderr (and in the `--json` summary).
pub async fn run(args: IngestArgs) -> ExitCode {
    let mut summary = Summary::new(&args.table, args.dry_run);
    let failure = ingest(&args, &mut summary).await.err();
    summary.finish();
    let before_reading = failure.is_some() && summary.rows_read == 0;
    if let Some(error) = failure {
        summary.errors.push(error.to_string());
    }
    if args.json {
        println!("{}", summary.json());
    } else if !args.quiet && !before_reading {
        print!("{}", summary.text());
    }
    if args.quiet || args.json || before_reading {
        for line in summary.failure_lines() {
            eprintln!("zerobus: error: {line}");
        }
    }
    ExitCode::from(summary.exit_code())
}

/// What the reader threads send.
enum Read {
    /// Rows `first_row..` of input file `file`.
    Batch {
        file: usize,
        first_row: u64,
        batch: RecordBatch,
    },
    /// Input file `file` could not be read (further): the message names it.
    Failed { file: usize, error: String },
    /// Input file `file` was read to its end.
    Finished { file: usize },
}

/// A batch waiting for its outcome.
struct InFlight {
    file: usize,
    first_row: u64,
    batch: RecordBatch,
    outcome: Outcome,
}

type Outcome = Pin<Box<dyn Future<Output = TransmissionResult> + Send>>;

async fn ingest(args: &IngestArgs, summary: &mut Summary) -> CliResult<()> {
    let mut interrupt = Interrupt::listen(args.quiet || args.json);
    let files = discover(&args.files, args.read.format)?;
    summary.files = files.len();
    let mut target = tokio::select! {
        biased;
        () = interrupt.pressed() => {
            summary.interrupted = true;
            return Err(CliError::new("interrupted (Ctrl-C) before sending"));
        }
        target = Target::new(args) => target?,
    };
    let mut quarantine = args
        .quarantine
        .as_deref()
        .map(Quarantine::new)
        .transpose()?;
    let total_bytes = files.iter().map(|f| f.size).sum();
    let interval = Duration::from_secs_f64(args.progress_interval.max(0.0));
    let mut progress = Progress::new(total_bytes, args.quiet || args.json, interval);

    let (sender, mut receiver) = mpsc::channel(2);
    let files = Arc::new(files);
    let next_file = Arc::new(AtomicUsize::new(0));
    let bytes_read = Arc::new(AtomicU64::new(0));
    let jobs = usize::try_from(args.jobs)
        .unwrap_or(1)
        .min(files.len())
        .max(1);
    let readers: Vec<_> = (0..jobs)
        .map(|_| {
            let queue = FileQueue {
                files: Arc::clone(&files),
                next: Arc::clone(&next_file),
                bytes_read: Arc::clone(&bytes_read),
            };
            let options = args.read.clone();
            let sender = sender.clone();
            std::thread::spawn(move || queue.read(&options, &sender))
        })
        .collect();
    drop(sender);
    let max_inflight = usize::try_from(args.max_inflight).unwrap_or(1);
    let mut window: VecDeque<InFlight> = VecDeque::new();
    let mut ledger = Ledger {
        files: &files,
        summary,
        quarantine: &mut quarantine,
    };
    let mut stopped = None;
    // Per file: rows taken from the readers, and whether it ended.
    let mut rows_taken = vec![0u64; files.len()];
    let mut finished = vec![false; files.len()];
    loop {
        let read = tokio::select! {
            biased;
            () = interrupt.pressed() => break,
            read = receiver.recv() => read,
        };
        let Some(read) = read else { break };
        match read {
            Read::Batch {
                file,
                first_row,
                batch,
            } => {
                ledger.summary.rows_read += batch.num_rows() as u64;
                rows_taken[file] += batch.num_rows() as u64;
                let outcome = target.submit(&batch).await;
                if !matches!(outcome, Submitted::Refused(_)) {
                    ledger.summary.rows_sent += batch.num_rows() as u64;
                }
                window.push_back(InFlight {
                    file,
                    first_row,
                    outcome: outcome.into_future(batch.num_rows()),
                    batch,
                });
            }
            Read::Failed { file, error } => {
                finished[file] = true;
                ledger.summary.errors.push(error);
            }
            Read::Finished { file } => finished[file] = true,
        }
        while window.len() >= max_inflight && stopped.is_none() {
            if let Some(flight) = window.pop_front() {
                stopped = ledger.settle(flight).await?;
            }
        }
        ledger.summary.bytes_read = bytes_read.load(Ordering::Relaxed);
        progress.update(ledger.summary);
        if stopped.is_some() {
            break;
        }
    }
    // Stops the reader (its next send fails) and settles what is in flight.
    drop(receiver);
    for flight in window {
        ledger.settle(flight).await?;
    }
    if interrupt.is_pressed() {
        note_unread(ledger.summary, &files, &rows_taken, &finished);
    }
    if let Err(e) = target.shutdown().await {
        summary.errors.push(e.to_string());
    }
    let crashed = readers
        .into_iter()
        .map(std::thread::JoinHandle::join)
        .filter(Result::is_err)
        .count();
    if crashed > 0 {
        summary
            .errors
            .push("a file reader stopped unexpectedly".to_string());
    }
    summary.bytes_read = bytes_read.load(Ordering::Relaxed);
    progress.update(summary);
    progress.finish();
    if let Some(quarantine) = quarantine {
        summary.quarantine_files = quarantine.finish()?;
    }
    if let Some(reason) = stopped {
        summary.errors.push(reason);
    }
    Ok(())
}

/// Marks `summary` interrupted, with the files not read to their end (`rows_taken` of
/// each read, `finished` or not) and the rows not read where their count is known.
fn note_unread(summary: &mut Summary, files: &[InputFile], rows_taken: &[u64], finished: &[bool]) {
    summary.interrupted = true;
    summary.unfinished = files
        .iter()
        .zip(rows_taken.iter().zip(finished))
        .filter(|(_, (_, finished))| !**finished)
        .map(|(file, (taken, _))| crate::summary::Unfinished {
            file: file.name(),
            rows_read: *taken,
            rows: row_count(file),
        })
        .collect();
    summary.rows_not_read = summary
        .unfinished
        .iter()
        .map(|f| f.rows.map(|rows| rows.saturating_sub(f.rows_read)))
        .sum();
}

/// Where the outcomes of the batches go: the summary and the quarantine files.
struct Ledger<'a> {
    files: &'a [InputFile],
    summary: &'a mut Summary,
    quarantine: &'a mut Option<Quarantine>,
}

impl Ledger<'_> {
    /// Waits for the outcome of `flight`, counts (and quarantines) it; `Some(reason)` if
    /// the ingest must stop (every row failed, not for its values).
    async fn settle(&mut self, flight: InFlight) -> CliResult<Option<String>> {
        let result = flight.outcome.await;
        let input = &self.files[flight.file];
        self.summary
            .record(&input.name(), flight.first_row, &result);
        if let Some(quarantine) = self.quarantine {
            quarantine.write(
                flight.file,
                &input.path,
                flight.first_row,
                &flight.batch,
                &result,
            )?;
        }
        let stop = result.successful_count == 0
            && result.failed_count > 0
            && result
                .failed_rows
                .iter()
                .all(|(_, e)| e.conversion_failure().is_none());
        Ok(stop.then(|| {
            let error = &result.failed_rows[0].1;
            format!(
                "stopped after {} rows read: every row of {} rows {}..{} failed: {error}",
                self.summary.rows_read,
                input.name(),
                flight.first_row,
                flight.first_row + flight.batch.num_rows() as u64
            )
        }))
    }
}

/// The input files, taken in turn by the reader threads.
struct FileQueue {
    files: Arc<Vec<InputFile>>,
    next: Arc<AtomicUsize>,
    /// Bytes of the files read so far, for the progress.
    bytes_read: Arc<AtomicU64>,
}

impl FileQueue {
    /// Reads the next file not taken yet into `sender`, and the next, until there is none
    /// or the receiver is gone.
    fn read(&self, options: &ReadOptions, sender: &mpsc::Sender<Read>) {
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(file) = self.files.get(index) else {
                return;
            };
            if !self.read_file(index, file, options, sender) {
                return;
            }
        }
    }

    /// Sends the batches of `file` (number `index`), or its error; `false` once the
    /// receiver is gone.
    fn read_file(
        &self,
        index: usize,
        file: &InputFile,
        options: &ReadOptions,
        sender: &mpsc::Sender<Read>,
    ) -> bool {
        // Bytes of this file counted in `bytes_read`; the rest when it ends.
        let mut counted = 0;
        let mut count = |position: u64| {
            let position = position.min(file.size);
            if position > counted {
                self.bytes_read
                    .fetch_add(position - counted, Ordering::Relaxed);
                counted = position;
            }
        };
        let mut reading = match Reading::open(file, options) {
            Ok(reading) => reading,
            Err(e) => {
                count(file.size);
                return sender
                    .blocking_send(Read::Failed {
                        file: index,
                        error: e.to_string(),
                    })
                    .is_ok();
            }
        };
        let mut first_row = 0;
        while let Some(next) = reading.next_batch() {
            let read = match next {
                Ok((batch, position)) => {
                    count(position);
                    let rows = batch.num_rows() as u64;
                    let read = Read::Batch {
                        file: index,
                        first_row,
                        batch,
                    };
                    first_row += rows;
                    read
                }
                Err(e) => Read::Failed {
                    file: index,
                    error: format!(
                        "{}: after row {first_row}: {e} (the rest of the file was not read)",
                        file.name()
                    ),
                },
            };
            let end = matches!(read, Read::Failed { .. });
            if sender.blocking_send(read).is_err() {
                return false;
            }
            if end {
                break;
            }
        }
        count(file.size);
        sender.blocking_send(Read::Finished { file: index }).is_ok()
    }
}

/// Where batches go: the wrapper, or (`--dry-run`) the encoder alone.
enum Target {
    Wrapper(ZerobusWrapper),
    DryRun {
        table: String,
        max_record_size: Option<usize>,
        encoders: HashMap<SchemaRef, RowEncoder>,
    },
}

/// What became of a submitted batch.
enum Submitted {
    /// On its way: its outcome comes later.
    Queued(Outcome),
    /// Known at once (dry run).
    Done(TransmissionResult),
    /// Refused as a whole (a schema Zerobus cannot take): every row failed with it.
    Refused(ZerobusError),
}

impl Submitted {
    fn into_future(self, rows: usize) -> Outcome {
        match self {
            Self::Queued(outcome) => outcome,
            Self::Done(result) => Box::pin(std::future::ready(result)),
            Self::Refused(error) => Box::pin(std::future::ready(
                TransmissionResult::batch_failure(rows, error, 0, None),
            )),
        }
    }
}

impl Target {
    async fn new(args: &IngestArgs) -> CliResult<Self> {
        if args.dry_run {
            return Ok(Self::DryRun {
                table: args.table.clone(),
                max_record_size: args.connection.max_record_size_bytes,
                encoders: HashMap::new(),
            });
        }
        let config = args.connection.configuration(&args.table)?;
        let wrapper = ZerobusWrapper::new(config)
            .await
            .map_err(|e| CliError::new(e.to_string()))?;
        Ok(Self::Wrapper(wrapper))
    }

    async fn submit(&mut self, batch: &RecordBatch) -> Submitted {
        match self {
            Self::Wrapper(wrapper) => match wrapper.submit_batch(batch.clone()).await {
                Ok(pending) => Submitted::Queued(Box::pin(pending)),
                Err(error) => Submitted::Refused(error),
            },
            Self::DryRun {
                table,
                max_record_size,
                encoders,
            } => {
                let encoder = match encoders.get(batch.schema_ref()) {
                    Some(encoder) => encoder,
                    None => match TableSchema::try_new(batch.schema(), table) {
                        Ok(schema) => {
                            let mut encoder = RowEncoder::new(Arc::new(schema));
                            if let Some(bytes) = max_record_size {
                                encoder = encoder.with_max_record_size(*bytes);
                            }
                            encoders.entry(batch.schema()).or_insert(encoder)
                        }
                        Err(error) => return Submitted::Refused(error),
                    },
                };
                match encoder.encode(batch) {
                    Ok(encoded) => Submitted::Done(TransmissionResult::from_row_outcomes(
                        batch.num_rows(),
                        encoded.row_errors(),
                        0,
                        None,
                        encoded.encoded_len(),
                    )),
                    Err(error) => Submitted::Refused(error),
                }
            }
        }
    }

    async fn shutdown(&self) -> Result<(), ZerobusError> {
        match self {
            Self::Wrapper(wrapper) => wrapper.shutdown().await,
            Self::DryRun { .. } => Ok(()),
        }
    }
}

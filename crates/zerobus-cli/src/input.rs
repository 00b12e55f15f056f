//! Input files: finding them (paths, globs, directories), their format (extension or
//! `--format`), and reading them batch by batch in bounded memory.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use clap::{Args, ValueEnum};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{CliError, CliResult, Context};

/// The file formats `zerobus` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Parquet (`.parquet`, `.pq`).
    Parquet,
    /// CSV with a header row (`.csv`); types inferred from the first rows.
    Csv,
    /// Newline-delimited JSON (`.json`, `.ndjson`, `.jsonl`); types inferred.
    #[value(alias = "ndjson")]
    Json,
    /// Arrow IPC file (`.arrow`, `.feather`, `.ipc`).
    Arrow,
    /// Arrow IPC stream (`.arrows`, the wrapper's debug files).
    Arrows,
}

impl Format {
    /// The format of `path` from its extension (any case).
    fn from_extension(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match extension.as_str() {
            "parquet" | "pq" => Self::Parquet,
            "csv" => Self::Csv,
            "json" | "ndjson" | "jsonl" => Self::Json,
            "arrow" | "feather" | "ipc" => Self::Arrow,
            "arrows" => Self::Arrows,
            _ => return None,
        })
    }
}

/// How files are read: `--format`, `--batch-rows`, CSV and JSON options.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Input")]
pub struct ReadOptions {
    /// The format of every input file (default: from each file's extension).
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Rows per batch read and sent.
    #[arg(long, value_name = "ROWS", default_value_t = 65_536,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_rows: u64,

    /// CSV and JSON: rows read to infer the column types.
    #[arg(long, value_name = "ROWS", default_value_t = 1000)]
    pub infer_rows: usize,

    /// CSV: the field delimiter.
    #[arg(long, value_name = "CHAR", default_value_t = ',')]
    pub delimiter: char,

    /// CSV: the files have no header row (columns are then column_1, column_2, ...).
    #[arg(long)]
    pub no_header: bool,
}

/// One input file, found and typed.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Its path, as found.
    pub path: PathBuf,
    /// How it is read.
    pub format: Format,
    /// Its size in bytes.
    pub size: u64,
}

impl InputFile {
    /// The path for messages.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// The files named by `patterns` (paths, globs, directories: the files with a known
/// extension in them, recursively), in order, each once.
///
/// # Errors
/// A path that does not exist, a glob or directory without files, a file whose format
/// is unknown; the message names it.
pub fn discover(patterns: &[String], format: Option<Format>) -> CliResult<Vec<InputFile>> {
    let mut paths = Vec::new();
    for pattern in patterns {
        if pattern.contains(['*', '?', '[']) {
            let matches = glob::glob(pattern).context(format!("pattern {pattern}"))?;
            let before = paths.len();
            for path in matches {
                let path = path.context(format!("pattern {pattern}"))?;
                push_path(&path, format, &mut paths)?;
            }
            if paths.len() == before {
                return Err(CliError::new(format!("{pattern}: matched no files")));
            }
        } else {
            push_path(Path::new(pattern), format, &mut paths)?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    paths.retain(|path| seen.insert(path.clone()));
    paths
        .into_iter()
        .map(|path| {
            let format = match format.or_else(|| Format::from_extension(&path)) {
                Some(format) => format,
                None => {
                    return Err(CliError::new(format!(
                        "{}: unknown format (give --format parquet|csv|json|arrow|arrows)",
                        path.display()
                    )))
                }
            };
            let size = std::fs::metadata(&path).context(path.display())?.len();
            Ok(InputFile { path, format, size })
        })
        .collect()
}

/// Adds `path`, or the files of a directory (with a known format, or any file when
/// `format` is given), sorted.
fn push_path(path: &Path, format: Option<Format>, paths: &mut Vec<PathBuf>) -> CliResult<()> {
    let metadata = std::fs::metadata(path).context(path.display())?;
    if !metadata.is_dir() {
        paths.push(path.to_path_buf());
        return Ok(());
    }
    let before = paths.len();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries = std::fs::read_dir(&dir)
            .context(dir.display())?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .context(dir.display())?;
        entries.sort();
        for entry in entries.into_iter().rev() {
            let hidden = entry
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(['.', '_']));
            if hidden {
                continue;
            }
            if entry.is_dir() {
                stack.push(entry);
            } else if format.is_some() || Format::from_extension(&entry).is_some() {
                paths.push(entry);
            }
        }
    }
    paths[before..].sort();
    if paths.len() == before {
        return Err(CliError::new(format!(
            "{}: a directory without Parquet, CSV, JSON or Arrow files",
            path.display()
        )));
    }
    Ok(())
}

/// The rows of `file` as its metadata gives them, without reading its data: Parquet
/// files only (`None` for the other formats, or a file that cannot be read).
pub fn row_count(file: &InputFile) -> Option<u64> {
    if file.format != Format::Parquet {
        return None;
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&file.path).ok()?).ok()?;
    u64::try_from(builder.metadata().file_metadata().num_rows()).ok()
}

/// The batches of one file as they are read, with the bytes of the file read so far.
pub struct Reading {
    /// The schema of every batch.
    pub schema: SchemaRef,
    batches: Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>,
    position: Position,
    batch_rows: usize,
    /// The rest of a batch larger than `batch_rows` (Arrow IPC batches come as written).
    pending: Option<RecordBatch>,
    /// Bytes of the file read so far.
    read: u64,
}

/// How far into its file a [`Reading`] is.
enum Position {
    /// Bytes read so far, counted under the reader.
    Counted(Arc<AtomicU64>),
    /// Estimated from the rows read of `total` (Parquet).
    Rows { size: u64, total: u64, read: u64 },
    /// Estimated from the batches read of `total` (Arrow IPC files).
    Batches { size: u64, total: u64, read: u64 },
}

impl Position {
    /// Counts `batch`, just read, and returns the bytes of the file read so far.
    fn advance(&mut self, batch: &RecordBatch) -> u64 {
        let (size, total, read) = match self {
            Self::Counted(read) => return read.load(Ordering::Relaxed),
            Self::Rows { size, total, read } => {
                *read += batch.num_rows() as u64;
                (*size, *total, *read)
            }
            Self::Batches { size, total, read } => {
                *read += 1;
                (*size, *total, *read)
            }
        };
        let fraction = u128::from(read.min(total)) * u128::from(size) / u128::from(total.max(1));
        u64::try_from(fraction).unwrap_or(size)
    }
}

impl Reading {
    /// Opens `file` for reading batches of at most `options.batch_rows` rows; CSV and
    /// JSON types are inferred here.
    ///
    /// # Errors
    /// The file cannot be opened or is not in its format; the message names it.
    pub fn open(file: &InputFile, options: &ReadOptions) -> CliResult<Self> {
        Self::open_format(file, options).context(file.name())
    }

    fn open_format(file: &InputFile, options: &ReadOptions) -> Result<Self, String> {
        let batch_rows = usize::try_from(options.batch_rows).unwrap_or(usize::MAX);
        let mut handle = File::open(&file.path).map_err(|e| e.to_string())?;
        let read = Arc::new(AtomicU64::new(0));
        let counted = |handle: File| Counting {
            inner: handle,
            read: Arc::clone(&read),
        };
        let error = |e: ArrowError| e.to_string();
        let (schema, batches, position): (SchemaRef, Box<dyn Iterator<Item = _> + Send>, _) =
            match file.format {
                Format::Parquet => {
                    let builder = ParquetRecordBatchReaderBuilder::try_new(handle)
                        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
                    let total =
                        u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
                    let schema = Arc::clone(builder.schema());
                    let reader = builder
                        .with_batch_size(batch_rows)
                        .build()
                        .map_err(|e| e.to_string())?;
                    let position = Position::Rows {
                        size: file.size,
                        total,
                        read: 0,
                    };
                    (schema, Box::new(reader), position)
                }
                Format::Csv => {
                    let delimiter = u8::try_from(options.delimiter).map_err(|_| {
                        format!(
                            "--delimiter {:?} is not a single-byte character",
                            options.delimiter
                        )
                    })?;
                    let format = arrow::csv::reader::Format::default()
                        .with_header(!options.no_header)
                        .with_delimiter(delimiter);
                    let (schema, _) = format
                        .infer_schema(&mut handle, Some(options.infer_rows))
                        .map_err(error)?;
                    handle.rewind().map_err(|e| e.to_string())?;
                    let schema = Arc::new(schema);
                    let reader = arrow::csv::ReaderBuilder::new(Arc::clone(&schema))
                        .with_format(format)
                        .with_batch_size(batch_rows)
                        .build(counted(handle))
                        .map_err(error)?;
                    (
                        schema,
                        Box::new(reader),
                        Position::Counted(Arc::clone(&read)),
                    )
                }
                Format::Json => {
                    let (schema, _) = arrow::json::reader::infer_json_schema_from_seekable(
                        BufReader::new(&mut handle),
                        Some(options.infer_rows),
                    )
                    .map_err(error)?;
                    handle.rewind().map_err(|e| e.to_string())?;
                    let schema = Arc::new(schema);
                    let reader = arrow::json::ReaderBuilder::new(Arc::clone(&schema))
                        .with_batch_size(batch_rows)
                        .build(BufReader::new(counted(handle)))
                        .map_err(error)?;
                    (
                        schema,
                        Box::new(reader),
                        Position::Counted(Arc::clone(&read)),
                    )
                }
                Format::Arrow | Format::Arrows => {
                    let mut magic = [0u8; 6];
                    let is_file = handle.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
                    handle.rewind().map_err(|e| e.to_string())?;
                    if is_file {
                        let reader = arrow::ipc::reader::FileReader::try_new(handle, None)
                            .map_err(|e| format!("not a readable Arrow IPC file: {e}"))?;
                        // The footer is read first: the position follows the batches.
                        let position = Position::Batches {
                            size: file.size,
                            total: reader.num_batches() as u64,
                            read: 0,
                        };
                        (reader.schema(), Box::new(reader), position)
                    } else {
                        let reader = arrow::ipc::reader::StreamReader::try_new(
                            BufReader::new(counted(handle)),
                            None,
                        )
                        .map_err(|e| format!("not a readable Arrow IPC stream: {e}"))?;
                        (
                            reader.schema(),
                            Box::new(reader),
                            Position::Counted(Arc::clone(&read)),
                        )
                    }
                }
            };
        Ok(Self {
            schema,
            batches,
            position,
            batch_rows,
            pending: None,
            read: 0,
        })
    }

    /// The next batch and the bytes of the file read so far; `None` at the end.
    ///
    /// # Errors
    /// The file is corrupt or a value does not parse (the message says where; the
    /// caller adds the file name).
    pub fn next_batch(&mut self) -> Option<Result<(RecordBatch, u64), String>> {
        let batch = match self.pending.take() {
            Some(batch) => batch,
            None => match self.batches.next()? {
                Ok(batch) => {
                    self.read = self.position.advance(&batch);
                    batch
                }
                Err(e) => return Some(Err(e.to_string())),
            },
        };
        let batch = if batch.num_rows() > self.batch_rows {
            let rest = batch.num_rows() - self.batch_rows;
            self.pending = Some(batch.slice(self.batch_rows, rest));
            batch.slice(0, self.batch_rows)
        } else {
            batch
        };
        Some(Ok((batch, self.read)))
    }
}

/// A reader counting the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

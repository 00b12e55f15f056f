//! `--quarantine DIR`: the rows that did not land, one Arrow IPC stream file per input
//! file (`<stem>.failed.arrows`), with the input's columns (nullable), the row's error
//! reason and text, and its row number in the input file (the columns of
//! [`quarantine_schema`], as `on_error = 'quarantine'` of the SQL sink writes them).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use arrow_zerobus_sdk_wrapper::sql::quarantine_schema;
use arrow_zerobus_sdk_wrapper::TransmissionResult;

use crate::error::{CliResult, Context};
use crate::summary::reason;

/// The quarantine files of one ingest, created on the first failed row of each input.
pub struct Quarantine {
    dir: PathBuf,
    files: HashMap<usize, QuarantineFile>,
    /// Input file indices in the order their quarantine file was opened.
    order: Vec<usize>,
}

struct QuarantineFile {
    path: PathBuf,
    schema: SchemaRef,
    writer: StreamWriter<BufWriter<File>>,
    rows: u64,
}

impl Quarantine {
    /// Quarantine files in `dir` (created if missing).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(dir: &Path) -> CliResult<Self> {
        std::fs::create_dir_all(dir).context(format!("--quarantine {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            files: HashMap::new(),
            order: Vec::new(),
        })
    }

    /// Writes the failed rows of `batch` (the rows `first_row..` of input file number
    /// `input` at `input_path`), with their errors from `result`.
    ///
    /// # Errors
    /// The quarantine file cannot be created or written.
    pub fn write(
        &mut self,
        input: usize,
        input_path: &Path,
        first_row: u64,
        batch: &RecordBatch,
        result: &TransmissionResult,
    ) -> CliResult<()> {
        let Some(failed) = result.extract_failed_batch(batch) else {
            return Ok(());
        };
        if !self.files.contains_key(&input) {
            let file = self.create(input_path, batch.schema_ref())?;
            self.files.insert(input, file);
            self.order.push(input);
        }
        let Some(file) = self.files.get_mut(&input) else {
            return Ok(());
        };
        let errors = &result.failed_rows;
        let mut columns: Vec<ArrayRef> = failed.columns().to_vec();
        columns.push(Arc::new(StringArray::from_iter_values(
            errors.iter().map(|(_, e)| reason(e)),
        )));
        columns.push(Arc::new(StringArray::from_iter_values(
            errors.iter().map(|(_, e)| e.to_string()),
        )));
        columns.push(Arc::new(UInt64Array::from_iter_values(
            errors.iter().map(|(row, _)| first_row + *row as u64),
        )));
        let rows =
            RecordBatch::try_new(Arc::clone(&file.schema), columns).context(file.path.display())?;
        file.writer.write(&rows).context(file.path.display())?;
        file.rows += rows.num_rows() as u64;
        Ok(())
    }

    /// `<dir>/<stem>.failed.arrows`, numbered if that name is taken.
    fn create(&self, input_path: &Path, schema: &SchemaRef) -> CliResult<QuarantineFile> {
        let stem = input_path
            .file_stem()
            .map_or_else(|| "input".into(), |s| s.to_string_lossy());
        let mut number = 1;
        loop {
            let name = match number {
                1 => format!("{stem}.failed.arrows"),
                n => format!("{stem}-{n}.failed.arrows"),
            };
            let path = self.dir.join(name);
            let file = match File::create_new(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    number += 1;
                    continue;
                }
                Err(e) => return Err(e).context(path.display()),
            };
            let schema = quarantine_schema(schema);
            let writer =
                StreamWriter::try_new(BufWriter::new(file), &schema).context(path.display())?;
            return Ok(QuarantineFile {
                path,
                schema,
                writer,
                rows: 0,
            });
        }
    }

    /// Finishes every file; their paths and row counts, in the order they were opened.
    ///
    /// # Errors
    /// A file cannot be finished.
    pub fn finish(mut self) -> CliResult<Vec<(PathBuf, u64)>> {
        let mut written = Vec::new();
        for input in &self.order {
            if let Some(mut file) = self.files.remove(input) {
                file.writer.finish().context(file.path.display())?;
                written.push((file.path, file.rows));
            }
        }
        Ok(written)
    }
}

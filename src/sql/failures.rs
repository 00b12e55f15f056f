//! Rows that did not land: counted and grouped by error type for the INSERT's error, and
//! with `on_error = 'quarantine'` written to an Arrow IPC stream file with their error text.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::StreamWriter;

use crate::error::ZerobusError;

/// The column of a quarantine file holding the error type of the row.
pub const QUARANTINE_ERROR_TYPE_COLUMN: &str = "_zerobus_error_type";
/// The column of a quarantine file holding the error text of the row.
pub const QUARANTINE_ERROR_COLUMN: &str = "_zerobus_error";
/// The column of a quarantine file holding the row's position in the INSERT's input.
pub const QUARANTINE_INPUT_ROW_COLUMN: &str = "_zerobus_input_row";

/// One failed row: its position in the INSERT's input, its group and its error text.
#[derive(Debug, Clone)]
pub(crate) struct RowFailure {
    pub(crate) input_row: u64,
    pub(crate) group: String,
    pub(crate) message: String,
}

impl RowFailure {
    /// The failure of input row `input_row` with `error`; conversion errors are grouped by
    /// their kind, other errors by their type.
    pub(crate) fn new(input_row: u64, error: &ZerobusError) -> Self {
        let group = match error.conversion_failure() {
            Some(failure) => format!("{} ({})", error.error_type(), failure.kind),
            None => error.error_type().to_string(),
        };
        Self {
            input_row,
            group,
            message: error.to_string(),
        }
    }
}

/// The count and first example of one error group.
#[derive(Debug)]
struct Group {
    count: u64,
    first_row: u64,
    first_message: String,
}

/// Every failure of one INSERT (shared by its workers behind a mutex).
#[derive(Debug)]
pub(crate) struct FailureLog {
    table: String,
    groups: BTreeMap<String, Group>,
    total: u64,
    quarantine: Option<Quarantine>,
}

impl FailureLog {
    /// A log for `table`; with `quarantine_dir`, failed rows go to a file there.
    pub(crate) fn new(table: &str, quarantine_dir: Option<&Path>, schema: &SchemaRef) -> Self {
        Self {
            table: table.to_string(),
            groups: BTreeMap::new(),
            total: 0,
            quarantine: quarantine_dir.map(|dir| Quarantine::new(dir, table, schema)),
        }
    }

    /// Records `failures`, the rows of `rows` (in the same order).
    ///
    /// # Errors
    /// The quarantine file cannot be created or written.
    pub(crate) fn record(
        &mut self,
        rows: &RecordBatch,
        failures: &[RowFailure],
    ) -> Result<(), ZerobusError> {
        for failure in failures {
            self.total += 1;
            self.groups
                .entry(failure.group.clone())
                .and_modify(|g| g.count += 1)
                .or_insert_with(|| Group {
                    count: 1,
                    first_row: failure.input_row,
                    first_message: failure.message.clone(),
                });
        }
        match &mut self.quarantine {
            Some(quarantine) => quarantine.write(rows, failures),
            None => Ok(()),
        }
    }

    /// The number of failed rows.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// `N rows failed: k × Group (first: input row r: message); ...`.
    pub(crate) fn summary(&self) -> String {
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|(name, g)| {
                format!(
                    "{} × {name} (first: input row {}: {})",
                    g.count, g.first_row, g.first_message
                )
            })
            .collect();
        format!("{} row(s) failed: {}", self.total, groups.join("; "))
    }

    /// Closes the quarantine file, returning its path if rows were written.
    ///
    /// # Errors
    /// The file cannot be finished.
    pub(crate) fn finish(&mut self) -> Result<Option<PathBuf>, ZerobusError> {
        match self.quarantine.take() {
            Some(quarantine) => quarantine.finish(),
            None => Ok(None),
        }
    }

    /// The table the log is for.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }
}

/// A quarantine file, created on the first failed row.
struct Quarantine {
    path: PathBuf,
    schema: SchemaRef,
    writer: Option<StreamWriter<BufWriter<File>>>,
}

impl std::fmt::Debug for Quarantine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quarantine")
            .field("path", &self.path)
            .field("open", &self.writer.is_some())
            .finish()
    }
}

impl Quarantine {
    fn new(dir: &Path, table: &str, table_schema: &SchemaRef) -> Self {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let millis = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
        let name = format!(
            "{table}-{millis}-{}-{}.arrow",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            path: dir.join(name),
            schema: quarantine_schema(table_schema),
            writer: None,
        }
    }

    fn write(&mut self, rows: &RecordBatch, failures: &[RowFailure]) -> Result<(), ZerobusError> {
        if failures.is_empty() {
            return Ok(());
        }
        let io = |e: std::io::Error| ZerobusError::io(&self.path, e);
        if self.writer.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let file = File::create(&self.path).map_err(io)?;
            self.writer = Some(StreamWriter::try_new(BufWriter::new(file), &self.schema)?);
        }
        let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
        let types = failures.iter().map(|f| f.group.as_str());
        columns.push(Arc::new(StringArray::from_iter_values(types)));
        let messages = failures.iter().map(|f| f.message.as_str());
        columns.push(Arc::new(StringArray::from_iter_values(messages)));
        let input_rows = failures.iter().map(|f| f.input_row);
        columns.push(Arc::new(UInt64Array::from_iter_values(input_rows)));
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        if let Some(writer) = &mut self.writer {
            writer.write(&batch)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Option<PathBuf>, ZerobusError> {
        match self.writer.take() {
            Some(mut writer) => {
                writer.finish()?;
                Ok(Some(self.path))
            }
            None => Ok(None),
        }
    }
}

/// The schema of a quarantine file: the table's columns (all nullable: a quarantined row
/// may hold the null that failed it) plus [`QUARANTINE_ERROR_TYPE_COLUMN`],
/// [`QUARANTINE_ERROR_COLUMN`] and [`QUARANTINE_INPUT_ROW_COLUMN`]. Also the schema of the
/// quarantine files of `zerobus ingest`.
pub fn quarantine_schema(table_schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = table_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(
        QUARANTINE_ERROR_TYPE_COLUMN,
        DataType::Utf8,
        false,
    ));
    fields.push(Field::new(QUARANTINE_ERROR_COLUMN, DataType::Utf8, false));
    fields.push(Field::new(
        QUARANTINE_INPUT_ROW_COLUMN,
        DataType::UInt64,
        false,
    ));
    Arc::new(Schema::new(fields))
}

//! The columnar protobuf encoder: a [`RecordBatch`] becomes one protobuf record per row,
//! written straight from the Arrow columns.
//!
//! Two passes, each column by column:
//! Both passes go over blocks of rows that fit in cache, and within a block column by column:
//!
//! 1. **size**: every column adds its field's encoded size to each row's total and reports
//!    values it cannot encode (an unsigned value out of range, a null list element, ...).
//!    Rows over the size limit fail too. Failed rows get no bytes.
//! 2. **write**: one buffer of exactly the total size is allocated, each row gets a cursor
//!    at its offset, and every column writes its field into each row at the row's cursor.
//!    Columns are written in field-number order, so each record has its fields in order.
//!
//! The codec of each column is chosen once per batch; the per-row loops are monomorphized
//! per codec type. There is no per-row message object and no per-field allocation: the
//! output is one `Vec<u8>` plus row offsets ([`EncodedBatch`]).
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, StringArray, RecordBatch};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
//! use arrow_zerobus_sdk_wrapper::schema::TableSchema;
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("name", DataType::Utf8, true),
//! ]));
//! let batch = RecordBatch::try_new(schema.clone(), vec![
//!     Arc::new(Int64Array::from(vec![1, 150])),
//!     Arc::new(StringArray::from(vec![Some("a"), None])),
//! ])?;
//! let encoder = RowEncoder::new(Arc::new(TableSchema::try_new(schema, "t")?));
//! let encoded = encoder.encode(&batch)?;
//! // field 1 varint 1; field 2 "a"   |   field 1 varint 150 (name is null: absent)
//! assert_eq!(encoded.record(0), Some(&[0x08, 0x01, 0x12, 0x01, b'a'][..]));
//! assert_eq!(encoded.record(1), Some(&[0x08, 0x96, 0x01][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod codec;
mod nested;
mod scalar;
mod wire;

use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::error::{ConversionErrorKind, ConversionFailure, ZerobusError};
use crate::rows::{row_runs, rows_except};
use crate::schema::TableSchema;
use codec::{BoxedCodec, Rows, ValueError};
pub(crate) use wire::varint_len;

/// Default (and practical maximum) size of one encoded record: 10 MiB − 64 KiB
/// = 10,420,224 bytes.
///
/// This is the default `max_ingest_payload_bytes` of the official Databricks Zerobus
/// Rust SDK 2.12: the SDK rejects any ingest call whose record bytes exceed it with
/// `InvalidArgument`, before any I/O, so a single record can never be larger. The
/// "4 MB" figure in the original wrapper's README described an older service limit.
pub const DEFAULT_MAX_RECORD_SIZE_BYTES: usize = 10 * 1024 * 1024 - 64 * 1024;

/// Encodes batches of one [`TableSchema`] into protobuf records.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    schema: Arc<TableSchema>,
    max_record_size: usize,
    first_row: usize,
}

impl RowEncoder {
    /// An encoder for `schema` with the default record size limit
    /// ([`DEFAULT_MAX_RECORD_SIZE_BYTES`]).
    pub fn new(schema: Arc<TableSchema>) -> Self {
        Self {
            schema,
            max_record_size: DEFAULT_MAX_RECORD_SIZE_BYTES,
            first_row: 0,
        }
    }

    /// Sets the largest record accepted, in bytes; larger rows fail with
    /// [`ConversionErrorKind::RecordTooLarge`].
    pub fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record_size = bytes;
        self
    }

    /// Numbers the rows of the batches it encodes from `row` (default 0), for a batch that
    /// is a slice of a larger one: the [`EncodedBatch`]'s row arguments and failures (and
    /// each [`ConversionFailure::row`](crate::ConversionFailure::row)) are then the larger
    /// batch's rows.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow::array::{RecordBatch, UInt64Array};
    /// use arrow::datatypes::{DataType, Field, Schema};
    /// use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
    /// use arrow_zerobus_sdk_wrapper::schema::TableSchema;
    ///
    /// let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::UInt64, false)]));
    /// let batch = RecordBatch::try_new(
    ///     schema.clone(),
    ///     vec![Arc::new(UInt64Array::from(vec![1, 2, u64::MAX, 4]))],
    /// )?;
    /// let encoder = RowEncoder::new(Arc::new(TableSchema::try_new(schema, "t")?));
    /// // Rows 2 and 3 of the batch, encoded on their own.
    /// let tail = encoder.with_first_row(2).encode(&batch.slice(2, 2))?;
    /// assert_eq!(tail.rows(), 2..4);
    /// assert_eq!(tail.failures()[0].0, 2);
    /// assert_eq!(tail.failures()[0].1.row, Some(2));
    /// assert_eq!(tail.record(3), Some(&[0x08, 0x04][..]));
    /// assert_eq!(tail.record(1), None, "not in this slice");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_first_row(mut self, row: usize) -> Self {
        self.first_row = row;
        self
    }

    /// The schema this encoder writes.
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    /// Encodes every row of `batch`.
    ///
    /// Rows that cannot be encoded do not stop the batch: each becomes an entry in
    /// [`EncodedBatch::failures`] naming the row, the column and the reason.
    ///
    /// # Errors
    /// Only when the batch's schema is not the encoder's (a
    /// [`ConversionErrorKind::SchemaMismatch`] conversion error).
    pub fn encode(&self, batch: &RecordBatch) -> Result<EncodedBatch, ZerobusError> {
        self.run(batch, true)
    }

    /// Validates and sizes every row of `batch` without writing any record: the size pass
    /// of [`encode`](Self::encode) alone.
    ///
    /// The result has exactly the failures, [`record_len`](EncodedBatch::record_len)s and
    /// [`encoded_len`](EncodedBatch::encoded_len) that `encode` gives for the same batch,
    /// but no bytes ([`EncodedBatch::has_records`] is `false`). For a transport that sends
    /// the rows in another form (Arrow Flight) but reports the same per-row outcomes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow::array::{RecordBatch, UInt64Array};
    /// use arrow::datatypes::{DataType, Field, Schema};
    /// use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
    /// use arrow_zerobus_sdk_wrapper::schema::TableSchema;
    ///
    /// let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::UInt64, true)]));
    /// let batch = RecordBatch::try_new(
    ///     schema.clone(),
    ///     vec![Arc::new(UInt64Array::from(vec![Some(150), Some(u64::MAX), None]))],
    /// )?;
    /// let encoder = RowEncoder::new(Arc::new(TableSchema::try_new(schema, "t")?));
    /// let measured = encoder.measure(&batch)?;
    /// assert!(!measured.has_records());
    /// // field 1, varint 150 (3 bytes); u64::MAX does not fit BIGINT; null: empty record
    /// assert_eq!(measured.record_len(0), Some(3));
    /// assert_eq!(measured.record_len(1), None);
    /// assert_eq!(measured.record_len(2), Some(0));
    /// assert_eq!(measured.failures()[0].0, 1);
    /// assert_eq!(measured.encoded_len(), encoder.encode(&batch)?.encoded_len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn measure(&self, batch: &RecordBatch) -> Result<EncodedBatch, ZerobusError> {
        self.run(batch, false)
    }

    /// Sizes (and, if `write`, writes) every row of `batch`.
    fn run(&self, batch: &RecordBatch, write: bool) -> Result<EncodedBatch, ZerobusError> {
        self.check_schema(batch)?;
        let rows = batch.num_rows();
        let fields = self.schema.arrow_schema().fields();
        let codecs = fields
            .iter()
            .zip(batch.columns())
            .zip(self.schema.columns())
            .map(|((field, column), table_column)| {
                build::codec(
                    column.as_ref(),
                    table_column.field_number,
                    build::on_null_for(field.is_nullable()),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut block = BlockState {
            first_row: self.first_row,
            ..BlockState::default()
        };
        let mut encoded = EncodedBatch {
            data: Vec::new(),
            offsets: Vec::with_capacity(rows + 1),
            failures: Vec::new(),
            written: write,
            first_row: self.first_row,
        };
        encoded.offsets.push(0);
        for rows in blocks(rows) {
            block.size(rows.clone(), &codecs, fields, self.max_record_size);
            if !write {
                block.place(&mut encoded);
                encoded.failures.append(&mut block.failures);
                continue;
            }
            if rows.start == 0 && rows.end < batch.num_rows() {
                // Reserve for the whole batch from the first block's size, with headroom: a
                // short estimate would reallocate (and copy) the whole buffer near the end.
                let estimate = block.total() * batch.num_rows().div_ceil(rows.len());
                let estimate = estimate + estimate / 8;
                encoded.data.reserve(estimate);
            }
            block.write(rows, &codecs, &mut encoded);
        }
        // Failures are keyed by the slice's rows while encoding; the caller's numbering
        // from here on.
        for (row, _) in &mut encoded.failures {
            *row += self.first_row;
        }
        Ok(encoded)
    }

    fn check_schema(&self, batch: &RecordBatch) -> Result<(), ZerobusError> {
        let expected = self.schema.arrow_schema().fields();
        let actual = batch.schema_ref().fields();
        if expected.len() == actual.len()
            && expected
                .iter()
                .zip(actual.iter())
                .all(|(e, a)| e.name() == a.name() && e.data_type() == a.data_type())
        {
            return Ok(());
        }
        Err(ZerobusError::conversion(
            ConversionErrorKind::SchemaMismatch,
            format!(
                "batch schema {actual:?} differs from the encoder's schema {expected:?}; build \
                 a RowEncoder for each schema (ZerobusWrapper does this for you)"
            ),
        ))
    }
}

/// Rows per block. Both passes go block by block, and within a block column by column, so
/// the rows being written (a few hundred records) stay in cache while every column visits
/// them: a whole-batch column pass would stream the entire output buffer once per column.
const BLOCK_ROWS: usize = 256;

fn blocks(rows: usize) -> impl Iterator<Item = Range<usize>> {
    (0..rows)
        .step_by(BLOCK_ROWS)
        .map(move |start| start..(start + BLOCK_ROWS).min(rows))
}

/// The failure of `row` (of the batch being encoded), which the caller calls
/// `first_row + row`.
fn value_failure(
    row: usize,
    first_row: usize,
    column: &str,
    error: ValueError,
) -> (usize, ConversionFailure) {
    let path = error.column_path(column);
    let named = first_row + row;
    let message = format!("column `{path}`: {}", error.detail);
    let failure = ConversionFailure::new(error.kind, message)
        .with_column(path)
        .with_row(named);
    (row, failure)
}

fn too_large(
    row: usize,
    first_row: usize,
    size: usize,
    limit: usize,
) -> (usize, ConversionFailure) {
    let named = first_row + row;
    let message = format!(
        "record of {size} bytes exceeds Zerobus limit of {limit} bytes (max_record_size_bytes)"
    );
    let failure =
        ConversionFailure::new(ConversionErrorKind::RecordTooLarge, message).with_row(named);
    (row, failure)
}

/// Whether `row` is in `failures` (sorted by row).
fn contains_row(failures: &[(usize, ConversionFailure)], row: usize) -> bool {
    failures
        .binary_search_by_key(&row, |(failed, _)| *failed)
        .is_ok()
}

/// The per-block scratch space of [`RowEncoder::encode`].
///
/// Each block of rows is sized and then written while its input values and its sizes are
/// still in cache; the output grows block by block.
#[derive(Default)]
struct BlockState {
    /// Added to a row of the batch to name it in a failure ([`RowEncoder::with_first_row`]).
    first_row: usize,
    sizes: Vec<usize>,
    cursors: Vec<usize>,
    failures: Vec<(usize, ConversionFailure)>,
    column_failures: Vec<(usize, ValueError)>,
    ok_rows: Vec<usize>,
}

impl BlockState {
    /// Sizes every row of `rows`; rows that cannot be encoded get size 0 and a failure.
    fn size(
        &mut self,
        rows: Range<usize>,
        codecs: &[BoxedCodec<'_>],
        fields: &arrow::datatypes::Fields,
        max_record_size: usize,
    ) {
        self.sizes.clear();
        self.sizes.resize(rows.len(), 0);
        self.failures.clear();
        for (codec, field) in codecs.iter().zip(fields.iter()) {
            codec.size_column(rows.clone(), &mut self.sizes, &mut self.column_failures);
            self.failures.extend(
                self.column_failures
                    .drain(..)
                    .map(|(row, error)| value_failure(row, self.first_row, field.name(), error)),
            );
        }
        for (row, &size) in rows.clone().zip(&self.sizes) {
            if size > max_record_size {
                self.failures
                    .push(too_large(row, self.first_row, size, max_record_size));
            }
        }
        // One failure per row: the first column's, in column order (the sort is stable).
        self.failures.sort_by_key(|(row, _)| *row);
        self.failures.dedup_by_key(|(row, _)| *row);
        for (row, _) in &self.failures {
            self.sizes[row - rows.start] = 0;
        }
    }

    fn total(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// Appends the end offsets of the block's rows (sized by [`BlockState::size`]) to
    /// `encoded`; returns the block's length in bytes.
    fn place(&self, encoded: &mut EncodedBatch) -> usize {
        let start = encoded.offsets.last().copied().unwrap_or(0);
        let mut end = 0;
        // A running sum through `extend` (one reservation, no capacity test per row).
        encoded.offsets.extend(self.sizes.iter().map(|size| {
            end += size;
            start + end
        }));
        end
    }

    /// Appends the records of `rows` (sized by [`BlockState::size`]) to `encoded`.
    fn write(&mut self, rows: Range<usize>, codecs: &[BoxedCodec<'_>], encoded: &mut EncodedBatch) {
        let start = encoded.data.len();
        debug_assert_eq!(
            encoded.offsets.last(),
            Some(&start),
            "a written batch's offsets"
        );
        let end = self.place(encoded);
        // Each row's start, relative to the block's first byte: the offsets before its end.
        let starts = &encoded.offsets[rows.start..rows.end];
        self.cursors.clear();
        self.cursors
            .extend(starts.iter().map(|&row_start| row_start - start));
        encoded.data.reserve(end);
        // The block's bytes, written by the columns without being zeroed first.
        let out = &mut encoded.data.spare_capacity_mut()[..end];
        let which = if self.failures.is_empty() {
            Rows::Range(rows.clone())
        } else {
            self.ok_rows.clear();
            let failed = self.failures.iter().map(|(row, _)| row - rows.start);
            self.ok_rows
                .extend(rows_except(rows.len(), failed).map(|k| k + rows.start));
            Rows::Only(&self.ok_rows)
        };
        for codec in codecs {
            codec.write_column(which.clone(), rows.start, out, &mut self.cursors);
        }
        // Each write advances its row's cursor by the bytes it stored, from the row's
        // first byte on; a row whose cursor ends exactly at its end therefore had every byte
        // written (failed rows are empty). Checked always: a codec whose size and write
        // disagreed would otherwise send uninitialized memory.
        let sizes_met = self
            .cursors
            .iter()
            .zip(&encoded.offsets[rows.start + 1..])
            .all(|(&cursor, &row_end)| start + cursor == row_end);
        if !sizes_met {
            out.fill(std::mem::MaybeUninit::new(0));
            self.fail_block(rows.clone());
        }
        // SAFETY: every byte of `start..start + end` is initialized: written by the
        // columns (checked just above) or zeroed.
        #[allow(unsafe_code)]
        unsafe {
            encoded.data.set_len(start + end)
        };
        encoded.failures.append(&mut self.failures);
    }

    /// Fails every row of the block that had not failed yet: an encoder bug (a codec wrote
    /// a different number of bytes than it sized), reported rather than sent.
    #[cold]
    fn fail_block(&mut self, rows: Range<usize>) {
        for row in rows {
            if !contains_row(&self.failures, row) {
                let named = self.first_row + row;
                let message = "internal encoder error: the bytes written differ from the size \
                               computed for the record; the row was not sent (please report this)";
                let failure =
                    ConversionFailure::new(ConversionErrorKind::Other, message).with_row(named);
                self.failures.push((row, failure));
            }
        }
        self.failures.sort_by_key(|(row, _)| *row);
    }
}

/// The records of one batch: one buffer, row offsets, and the rows that failed.
///
/// From [`RowEncoder::measure`], only the offsets and the failures: every method but
/// [`record`](Self::record) and [`records`](Self::records) answers as for the written
/// batch, those two give nothing ([`has_records`](Self::has_records)).
#[derive(Debug, Clone, Default)]
pub struct EncodedBatch {
    data: Vec<u8>,
    offsets: Vec<usize>,
    failures: Vec<(usize, ConversionFailure)>,
    /// Whether `data` holds the records (false: measured only).
    written: bool,
    /// The caller's number of the first row ([`RowEncoder::with_first_row`]).
    first_row: usize,
}

impl EncodedBatch {
    /// Rows in the input batch (encoded or failed).
    pub fn num_rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The numbers of the input batch's rows: `0..num_rows()`, unless the encoder numbered
    /// them from another row ([`RowEncoder::with_first_row`]). Every method that takes or
    /// returns a row uses these numbers.
    pub fn rows(&self) -> Range<usize> {
        self.first_row..self.first_row + self.num_rows()
    }

    /// Index of `row` in `offsets`, if it is one of this batch's rows.
    fn index(&self, row: usize) -> Option<usize> {
        row.checked_sub(self.first_row)
            .filter(|index| *index < self.num_rows())
    }

    /// The rows that encoded, as indices into `offsets`, in row order.
    fn encoded_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.encoded_runs().flatten()
    }

    /// The runs of consecutive rows that encoded, as ranges of indices into `offsets`.
    fn encoded_runs(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let failed = self.failures.iter().map(|(row, _)| row - self.first_row);
        row_runs(self.num_rows(), failed)
    }

    /// Whether the records were written ([`RowEncoder::encode`]), not only measured
    /// ([`RowEncoder::measure`]).
    pub fn has_records(&self) -> bool {
        self.written
    }

    /// The record of `row`, or `None` if the row failed or is out of range, or the batch
    /// was only measured. An all-null row is a valid, empty record.
    pub fn record(&self, row: usize) -> Option<&[u8]> {
        let len = self.record_len(row)?;
        let start = self.offsets[row - self.first_row];
        self.written.then(|| &self.data[start..start + len])
    }

    /// `(row, record)` for every row that encoded, in row order (nothing if the batch was
    /// only measured).
    pub fn records(&self) -> impl Iterator<Item = (usize, &[u8])> + '_ {
        self.encoded_indices()
            .take_while(|_| self.written)
            .map(|i| {
                (
                    self.first_row + i,
                    &self.data[self.offsets[i]..self.offsets[i + 1]],
                )
            })
    }

    /// The length of `row`'s record in bytes, or `None` if the row failed or is out of
    /// range (written or measured alike).
    pub fn record_len(&self, row: usize) -> Option<usize> {
        let index = self.index(row)?;
        if self.is_failed(row) {
            return None;
        }
        Some(self.offsets[index + 1] - self.offsets[index])
    }

    /// The runs of consecutive rows that encoded, in row order, each with the offsets of
    /// its records (one more than its rows: record `k` of the run spans
    /// `offsets[k]..offsets[k + 1]`; written or measured alike).
    pub(crate) fn runs(&self) -> impl Iterator<Item = (Range<usize>, &[usize])> + '_ {
        self.encoded_runs().map(|run| {
            let offsets = &self.offsets[run.start..=run.end];
            (
                run.start + self.first_row..run.end + self.first_row,
                offsets,
            )
        })
    }

    /// `(row, record length)` for every row that encoded, in row order (written or
    /// measured alike).
    pub fn record_lens(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.encoded_indices()
            .map(|i| (self.first_row + i, self.offsets[i + 1] - self.offsets[i]))
    }

    /// The rows that could not be encoded, in row order, one entry per row.
    pub fn failures(&self) -> &[(usize, ConversionFailure)] {
        &self.failures
    }

    /// The failures as the per-row errors of a [`TransmissionResult`](crate::TransmissionResult).
    pub fn row_errors(&self) -> Vec<(usize, ZerobusError)> {
        self.failures
            .iter()
            .map(|(row, failure)| (*row, ZerobusError::ConversionError(failure.clone())))
            .collect()
    }

    /// Rows that encoded.
    pub fn successful_count(&self) -> usize {
        self.num_rows() - self.failures.len()
    }

    /// Total bytes of the encoded records (written or measured alike).
    pub fn encoded_len(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// Whether `row` failed.
    pub fn is_failed(&self, row: usize) -> bool {
        contains_row(&self.failures, row)
    }
}

#[cfg(test)]
mod tests;

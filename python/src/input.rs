//! Arrow data from Python, zero-copy, through the Arrow PyCapsule interface
//! (`__arrow_c_array__`, `__arrow_c_stream__`): pyarrow, Polars, DuckDB, nanoarrow, arro3
//! and anything else that implements it. No IPC round trip, no per-row Python objects.

use arrow::array::RecordBatch;
use arrow::ffi_stream::ArrowArrayStreamReader;
use arrow_pyarrow::FromPyArrow;
use pyo3::prelude::*;

use crate::errors::wrong_type;

/// One record batch: a `pyarrow.RecordBatch` or any object with `__arrow_c_array__`
/// exporting a struct array.
pub(crate) fn record_batch(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<RecordBatch> {
    if !value.hasattr("__arrow_c_array__")? && !is_pyarrow(value, "RecordBatch") {
        let hint = if value.hasattr("__arrow_c_stream__")? {
            " (this object is a stream of batches: use send() for it)"
        } else {
            ""
        };
        return Err(wrong_type(
            argument,
            &format!(
                "a pyarrow.RecordBatch or an object with __arrow_c_array__ (the Arrow \
                 PyCapsule interface){hint}"
            ),
            value,
        ));
    }
    RecordBatch::from_pyarrow_bound(value)
}

/// A stream of record batches: any object with `__arrow_c_stream__` (a pyarrow Table or
/// RecordBatchReader, a Polars DataFrame, a DuckDB relation, ...), or a single batch with
/// `__arrow_c_array__`.
pub(crate) fn batch_stream(argument: &str, value: &Bound<'_, PyAny>) -> PyResult<BatchStream> {
    if value.hasattr("__arrow_c_stream__")? || is_pyarrow(value, "RecordBatchReader") {
        return ArrowArrayStreamReader::from_pyarrow_bound(value).map(BatchStream::Stream);
    }
    if value.hasattr("__arrow_c_array__")? {
        return record_batch(argument, value).map(BatchStream::One);
    }
    Err(wrong_type(
        argument,
        "an object with __arrow_c_stream__ or __arrow_c_array__ (the Arrow PyCapsule \
         interface: a pyarrow Table / RecordBatch / RecordBatchReader, a Polars DataFrame, \
         a DuckDB relation, ...)",
        value,
    ))
}

/// What [`batch_stream`] read: a stream, or one batch.
pub(crate) enum BatchStream {
    /// The producer's stream, read batch by batch.
    Stream(ArrowArrayStreamReader),
    /// A single batch.
    One(RecordBatch),
}

/// Whether `value` is an instance of `pyarrow.<class>` (only if pyarrow is already
/// imported: never imports it).
fn is_pyarrow(value: &Bound<'_, PyAny>, class: &str) -> bool {
    let py = value.py();
    let Ok(modules) = py.import("sys").and_then(|sys| sys.getattr("modules")) else {
        return false;
    };
    modules
        .get_item("pyarrow")
        .and_then(|pyarrow| pyarrow.getattr(class))
        .and_then(|class| value.is_instance(&class))
        .unwrap_or(false)
}

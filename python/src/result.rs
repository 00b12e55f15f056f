//! `TransmissionResult` in Python: every field and method of the Rust one.

use arrow::array::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use arrow_zerobus_sdk_wrapper::TransmissionResult;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::errors::exception;
use crate::input::record_batch;

/// What became of every row of a batch (or of a whole stream, for `send`): `success`,
/// `failed_rows` as `(row, exception)` pairs, the successful rows, counts, and helpers to
/// cut the input into its failed and successful rows.
#[pyclass(
    name = "TransmissionResult",
    module = "arrow_zerobus_sdk_wrapper._internal",
    frozen
)]
pub(crate) struct PyTransmissionResult {
    pub(crate) inner: TransmissionResult,
    /// The failed rows of a `send(..., keep_failed_rows=True)`, batch by batch.
    pub(crate) failed_batches: Option<Vec<RecordBatch>>,
}

impl PyTransmissionResult {
    /// The rows of `batch` that `cut` selects, as a `pyarrow.RecordBatch`.
    fn extract<'py>(
        &self,
        py: Python<'py>,
        batch: &Bound<'py, PyAny>,
        cut: fn(&TransmissionResult, &RecordBatch) -> Option<RecordBatch>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let batch = record_batch("batch", batch)?;
        cut(&self.inner, &batch)
            .map(|rows| rows.to_pyarrow(py))
            .transpose()
    }

    /// The result of one batch.
    pub(crate) fn new(inner: TransmissionResult) -> Self {
        Self {
            inner,
            failed_batches: None,
        }
    }
}

#[pymethods]
impl PyTransmissionResult {
    /// True if there was no batch-level error and at least one row was delivered (or the
    /// batch was empty). A partial success is a success: check `failed_rows` either way.
    #[getter]
    fn success(&self) -> bool {
        self.inner.success
    }

    /// The batch-level error (for a batch where every row failed, the first row's error).
    #[getter]
    fn error<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .error
            .as_ref()
            .map(|error| exception(py, error))
            .transpose()
    }

    /// Transmission attempts made (0 when nothing was sent).
    #[getter]
    fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Time taken, in milliseconds, when measured.
    #[getter]
    fn latency_ms(&self) -> Option<u64> {
        self.inner.latency_ms
    }

    /// Encoded bytes of the rows that were sent and accepted.
    #[getter]
    fn batch_size_bytes(&self) -> usize {
        self.inner.batch_size_bytes
    }

    /// `(row, exception)` for every failed row, sorted by row; each exception is an instance
    /// of the `ZerobusError` subclass of its kind.
    #[getter]
    fn failed_rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let rows = self
            .inner
            .failed_rows
            .iter()
            .map(|(row, error)| {
                PyTuple::new(
                    py,
                    [row.into_pyobject(py)?.into_any(), exception(py, error)?],
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, rows)
    }

    /// The indices of the rows that succeeded, sorted.
    #[getter]
    fn successful_rows(&self) -> Vec<usize> {
        self.inner.successful_rows.clone()
    }

    #[getter]
    fn total_rows(&self) -> usize {
        self.inner.total_rows
    }

    #[getter]
    fn successful_count(&self) -> usize {
        self.inner.successful_count
    }

    #[getter]
    fn failed_count(&self) -> usize {
        self.inner.failed_count
    }

    /// Some rows succeeded and some failed.
    fn is_partial_success(&self) -> bool {
        self.inner.is_partial_success()
    }

    /// At least one row failed.
    fn has_failed_rows(&self) -> bool {
        self.inner.has_failed_rows()
    }

    /// At least one row succeeded.
    fn has_successful_rows(&self) -> bool {
        self.inner.has_successful_rows()
    }

    /// For `send(..., keep_failed_rows=True)`: the failed rows of the input as
    /// `pyarrow.RecordBatch`es, in row order (their errors are `failed_rows`, in the same
    /// order); `None` otherwise.
    #[getter]
    fn failed_batches<'py>(&self, py: Python<'py>) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        self.failed_batches
            .as_ref()
            .map(|batches| batches.iter().map(|b| b.to_pyarrow(py)).collect())
            .transpose()
    }

    /// The failed rows' indices, sorted.
    fn get_failed_row_indices(&self) -> Vec<usize> {
        self.inner.get_failed_row_indices()
    }

    /// The successful rows' indices, sorted.
    fn get_successful_row_indices(&self) -> Vec<usize> {
        self.inner.get_successful_row_indices()
    }

    /// The failed rows of `batch` (the batch that was sent) as a `pyarrow.RecordBatch`, in
    /// row order, for quarantine; `None` if no row failed or `batch` has another length.
    fn extract_failed_batch<'py>(
        &self,
        py: Python<'py>,
        batch: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.extract(py, batch, TransmissionResult::extract_failed_batch)
    }

    /// The successful rows of `batch` as a `pyarrow.RecordBatch`; `None` if none succeeded
    /// or `batch` has another length.
    fn extract_successful_batch<'py>(
        &self,
        py: Python<'py>,
        batch: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.extract(py, batch, TransmissionResult::extract_successful_batch)
    }

    /// The failed rows whose error is of `error_type` (e.g. `"ConversionError"`).
    fn get_failed_row_indices_by_error_type(&self, error_type: &str) -> Vec<usize> {
        self.inner.get_failed_row_indices_by_error_type(error_type)
    }

    /// Failed rows grouped by error type: `{"ConversionError": [1, 3], ...}`.
    fn group_errors_by_type<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let groups = PyDict::new(py);
        for (error_type, rows) in self.inner.group_errors_by_type() {
            groups.set_item(error_type, rows)?;
        }
        Ok(groups)
    }

    /// `{"total_rows", "successful_count", "failed_count", "success_rate",
    /// "failure_rate", "error_type_counts"}`.
    fn get_error_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.inner.get_error_statistics();
        let dict = PyDict::new(py);
        dict.set_item("total_rows", stats.total_rows)?;
        dict.set_item("successful_count", stats.successful_count)?;
        dict.set_item("failed_count", stats.failed_count)?;
        dict.set_item("success_rate", stats.success_rate)?;
        dict.set_item("failure_rate", stats.failure_rate)?;
        let counts = PyDict::new(py);
        for (error_type, count) in stats.error_type_counts {
            counts.set_item(error_type, count)?;
        }
        dict.set_item("error_type_counts", counts)?;
        Ok(dict)
    }

    /// One message per failed row, in row order: `"row 3: Conversion error: ..."`.
    fn get_error_messages(&self) -> Vec<String> {
        self.inner.get_error_messages()
    }

    fn __repr__(&self) -> String {
        let r = &self.inner;
        format!(
            "TransmissionResult(success={}, total_rows={}, successful_count={}, \
             failed_count={}, attempts={}, latency_ms={}, batch_size_bytes={})",
            if r.success { "True" } else { "False" },
            r.total_rows,
            r.successful_count,
            r.failed_count,
            r.attempts,
            r.latency_ms
                .map_or_else(|| "None".to_string(), |ms| ms.to_string()),
            r.batch_size_bytes,
        )
    }
}

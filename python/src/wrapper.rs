//! The engine behind the Python `ZerobusWrapper`: the Rust `ZerobusWrapper`, driven
//! blocking (GIL released) or as asyncio awaitables. The Python class
//! (`arrow_zerobus_sdk_wrapper/__init__.py`) adds the constructor keywords and the
//! context managers.

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use arrow::ffi_stream::ArrowArrayStreamReader;
use arrow_zerobus_sdk_wrapper::{TransmissionResult, ZerobusError, ZerobusWrapper};
use futures::stream::{self, BoxStream, StreamExt};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::config::PyWrapperConfiguration;
use crate::errors::to_py_err;
use crate::input::{batch_stream, record_batch, BatchStream};
use crate::result::PyTransmissionResult;
use crate::runtime::{awaitable, wait};

/// Batches kept in flight by `send` unless told otherwise.
const DEFAULT_MAX_INFLIGHT_BATCHES: usize = 4;

/// The compiled wrapper; use `arrow_zerobus_sdk_wrapper.ZerobusWrapper`.
#[pyclass(
    name = "RawWrapper",
    module = "arrow_zerobus_sdk_wrapper._internal",
    frozen
)]
pub(crate) struct PyRawWrapper {
    wrapper: ZerobusWrapper,
    config: PyWrapperConfiguration,
}

#[pymethods]
impl PyRawWrapper {
    #[new]
    fn new(py: Python<'_>, config: PyWrapperConfiguration) -> PyResult<Self> {
        let rust_config = config.inner.clone();
        let wrapper = wait(py, ZerobusWrapper::new(rust_config))?.map_err(|e| to_py_err(&e))?;
        Ok(Self { wrapper, config })
    }

    #[getter]
    fn config(&self) -> PyWrapperConfiguration {
        self.config.clone()
    }

    fn send_batch_sync(
        &self,
        py: Python<'_>,
        batch: &Bound<'_, PyAny>,
    ) -> PyResult<PyTransmissionResult> {
        let batch = record_batch("batch", batch)?;
        let wrapper = self.wrapper.clone();
        result(wait(py, async move { wrapper.send_batch(batch).await })?)
    }

    fn send_batch_async<'py>(
        &self,
        py: Python<'py>,
        batch: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let batch = record_batch("batch", batch)?;
        let wrapper = self.wrapper.clone();
        awaitable(py, async move { result(wrapper.send_batch(batch).await) })
    }

    #[pyo3(signature = (
        data,
        max_inflight_batches = DEFAULT_MAX_INFLIGHT_BATCHES,
        keep_failed_rows = false,
    ))]
    fn send_sync(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        max_inflight_batches: usize,
        keep_failed_rows: bool,
    ) -> PyResult<PyTransmissionResult> {
        let batches = batches(batch_stream("data", data)?);
        let window = window(max_inflight_batches)?;
        let wrapper = self.wrapper.clone();
        wait(py, send_all(wrapper, batches, window, keep_failed_rows))?
    }

    #[pyo3(signature = (
        data,
        max_inflight_batches = DEFAULT_MAX_INFLIGHT_BATCHES,
        keep_failed_rows = false,
    ))]
    fn send_async<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        max_inflight_batches: usize,
        keep_failed_rows: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let batches = batches(batch_stream("data", data)?);
        let window = window(max_inflight_batches)?;
        let wrapper = self.wrapper.clone();
        awaitable(py, send_all(wrapper, batches, window, keep_failed_rows))
    }

    fn flush_sync(&self, py: Python<'_>) -> PyResult<()> {
        let wrapper = self.wrapper.clone();
        unit(wait(py, async move { wrapper.flush().await })?)
    }

    fn flush_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let wrapper = self.wrapper.clone();
        awaitable(py, async move { unit(wrapper.flush().await) })
    }

    fn shutdown_sync(&self, py: Python<'_>) -> PyResult<()> {
        let wrapper = self.wrapper.clone();
        unit(wait(py, async move { wrapper.shutdown().await })?)
    }

    fn shutdown_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let wrapper = self.wrapper.clone();
        awaitable(py, async move { unit(wrapper.shutdown().await) })
    }

    fn __repr__(&self) -> String {
        format!("RawWrapper({})", self.config.__repr__())
    }
}

fn result(outcome: Result<TransmissionResult, ZerobusError>) -> PyResult<PyTransmissionResult> {
    outcome
        .map(PyTransmissionResult::new)
        .map_err(|e| to_py_err(&e))
}

/// Sends `batches` through `wrapper`, keeping the failed rows if asked.
async fn send_all(
    wrapper: ZerobusWrapper,
    batches: BoxStream<'static, Result<RecordBatch, ZerobusError>>,
    window: usize,
    keep_failed_rows: bool,
) -> PyResult<PyTransmissionResult> {
    let mut failed = Vec::new();
    let outcome = wrapper
        .send_stream_with_failures(batches, window, |rows| {
            if keep_failed_rows {
                failed.push(rows);
            }
        })
        .await;
    let mut result = result(outcome)?;
    result.failed_batches = keep_failed_rows.then_some(failed);
    Ok(result)
}

fn unit(outcome: Result<(), ZerobusError>) -> PyResult<()> {
    outcome.map_err(|e| to_py_err(&e))
}

fn window(max_inflight_batches: usize) -> PyResult<usize> {
    if max_inflight_batches == 0 {
        return Err(PyValueError::new_err(
            "max_inflight_batches: must be at least 1",
        ));
    }
    Ok(max_inflight_batches)
}

/// The batches of `source` as an async stream. A producer's stream is read on tokio's
/// blocking pool, one batch at a time: reading may run the producer's own work (a Polars
/// query, a DuckDB scan), which must not hold a runtime worker.
fn batches(source: BatchStream) -> BoxStream<'static, Result<RecordBatch, ZerobusError>> {
    match source {
        BatchStream::One(batch) => stream::once(async { Ok(batch) }).boxed(),
        BatchStream::Stream(reader) => stream::unfold(Some(reader), read_next).boxed(),
    }
}

async fn read_next(
    reader: Option<ArrowArrayStreamReader>,
) -> Option<(
    Result<RecordBatch, ZerobusError>,
    Option<ArrowArrayStreamReader>,
)> {
    let mut reader = reader?;
    let read = tokio::task::spawn_blocking(move || {
        let next = reader.next();
        (reader, next)
    })
    .await;
    let (reader, next) = match read {
        Ok(read) => read,
        Err(failed) => {
            let error = ZerobusError::transmission(format!(
                "reading the input stream ended abnormally: {failed}"
            ));
            return Some((Err(error), None));
        }
    };
    match next? {
        Ok(batch) => Some((Ok(batch), Some(reader))),
        Err(error) => Some((Err(read_error(error)), None)),
    }
}

fn read_error(error: ArrowError) -> ZerobusError {
    ZerobusError::arrow("reading the input stream", error)
}

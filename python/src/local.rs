//! The local Zerobus server (`zerobus-local`) in the Python process, for tests: the engine
//! of `arrow_zerobus_sdk_wrapper.testing.LocalZerobus`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::Schema;
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tonic::Code;
use zerobus_local::{Auth, Faults, Landing, LocalError, LocalZerobus};

use crate::runtime::wait;

/// A running local server; use `arrow_zerobus_sdk_wrapper.testing.LocalZerobus`.
#[pyclass(
    name = "RawLocalZerobus",
    module = "arrow_zerobus_sdk_wrapper._internal",
    frozen
)]
pub(crate) struct PyRawLocalZerobus {
    /// `None` once shut down.
    server: Arc<Mutex<Option<LocalZerobus>>>,
}

#[pymethods]
impl PyRawLocalZerobus {
    #[new]
    #[pyo3(signature = (
        tables = Vec::new(),
        *,
        landing = "memory",
        auth = false,
        data_dir = None,
        strict = false,
        stream_lifetime_secs = None,
        token_ttl_secs = None,
        commit_interval_ms = None,
        client_id = None,
        client_secret = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        tables: Vec<(String, Bound<'_, PyAny>)>,
        landing: &str,
        auth: bool,
        data_dir: Option<PathBuf>,
        strict: bool,
        stream_lifetime_secs: Option<f64>,
        token_ttl_secs: Option<f64>,
        commit_interval_ms: Option<u64>,
        client_id: Option<String>,
        client_secret: Option<String>,
    ) -> PyResult<Self> {
        let landing = match landing {
            "memory" => Landing::Memory,
            "delta" => Landing::Delta,
            "none" => Landing::None,
            other => {
                return Err(PyValueError::new_err(format!(
                    "landing: expected 'memory', 'delta' or 'none', got {other:?}"
                )))
            }
        };
        let mut builder = LocalZerobus::builder()
            .landing(landing)
            .strict(strict)
            .auth(if auth { Auth::OAuth } else { Auth::Disabled });
        for (name, schema) in tables {
            let schema = Schema::from_pyarrow_bound(&schema).map_err(|e| {
                PyValueError::new_err(format!("tables[{name:?}]: not an Arrow schema: {e}"))
            })?;
            builder = builder.table(name, Arc::new(schema));
        }
        if let Some(dir) = data_dir {
            builder = builder.data_dir(dir);
        }
        if let Some(secs) = stream_lifetime_secs {
            builder = builder.stream_lifetime(duration("stream_lifetime_secs", secs)?);
        }
        if let Some(secs) = token_ttl_secs {
            builder = builder.token_ttl(duration("token_ttl_secs", secs)?);
        }
        if let Some(ms) = commit_interval_ms {
            builder = builder.commit_interval(Duration::from_millis(ms));
        }
        match (client_id, client_secret) {
            (Some(id), Some(secret)) => {
                builder = builder.credentials(id, SecretString::from(secret))
            }
            (None, None) => {}
            _ => {
                return Err(PyValueError::new_err(
                    "client_id and client_secret: give both or neither",
                ))
            }
        }
        let server = wait(py, builder.start())?.map_err(local_error)?;
        Ok(Self {
            server: Arc::new(Mutex::new(Some(server))),
        })
    }

    /// The gRPC endpoint (`http://127.0.0.1:PORT`).
    #[getter]
    fn endpoint(&self) -> PyResult<String> {
        self.with(|s| s.endpoint())
    }

    /// The OAuth + Unity Catalog URL (`http://127.0.0.1:PORT`).
    #[getter]
    fn unity_catalog_url(&self) -> PyResult<String> {
        self.with(|s| s.unity_catalog_url())
    }

    #[getter]
    fn client_id(&self) -> PyResult<String> {
        self.with(|s| s.client_id().to_string())
    }

    /// The local server's own test secret (never a real credential).
    #[getter]
    fn client_secret(&self) -> PyResult<String> {
        self.with(|s| s.client_secret().expose_secret().to_string())
    }

    #[getter]
    fn auth(&self) -> PyResult<bool> {
        self.with(|s| s.auth() == Auth::OAuth)
    }

    #[getter]
    fn data_dir(&self) -> PyResult<PathBuf> {
        self.with(LocalZerobus::data_dir)
    }

    /// The tables that exist, sorted.
    fn tables(&self) -> PyResult<Vec<String>> {
        self.with(LocalZerobus::tables)
    }

    /// Every row landed in `name` so far, as one `pyarrow.RecordBatch`.
    fn read_table<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let server = Arc::clone(&self.server);
        let batch = wait(py, async move {
            let guard = server.lock().await;
            match guard.as_ref() {
                Some(server) => server.read_table(&name).await.map_err(local_error),
                None => Err(shut_down()),
            }
        })??;
        batch.to_pyarrow(py)
    }

    /// The table's record counts (`received`, `requests`, `committed`, `acknowledged`,
    /// `duplicates`, `streams_opened`, and the Flight batches by compression).
    fn counters<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let c = self.with(|s| s.counters(name))?;
        let dict = PyDict::new(py);
        for (key, value) in [
            ("received", c.received),
            ("requests", c.requests),
            ("committed", c.committed),
            ("acknowledged", c.acknowledged),
            ("duplicates", c.duplicates),
            ("streams_opened", c.streams_opened),
            ("flight_batches_uncompressed", c.flight_batches_uncompressed),
            ("flight_batches_lz4", c.flight_batches_lz4),
            ("flight_batches_zstd", c.flight_batches_zstd),
        ] {
            dict.set_item(key, value)?;
        }
        Ok(dict)
    }

    /// Fault: the next `times` stream creations of `table` fail with gRPC `code` (a name
    /// such as `"unavailable"`).
    fn fail_stream_creation(&self, table: &str, times: u32, code: &str) -> PyResult<()> {
        let code = grpc_code(code)?;
        self.faults(table, |f| f.fail_stream_creation(times, code))
    }

    /// Fault: once `records` more records arrive, the stream ends with gRPC `code`.
    fn fail_after_records(&self, table: &str, records: u64, code: &str) -> PyResult<()> {
        let code = grpc_code(code)?;
        self.faults(table, |f| f.fail_after_records(records, code))
    }

    /// Fault: once `records` more records arrive, the stream is asked to close.
    fn close_stream_after_records(&self, table: &str, records: u64) -> PyResult<()> {
        self.faults(table, |f| f.close_stream_after_records(records))
    }

    /// Fault: acknowledgements go out `seconds` late (`None`: at once).
    #[pyo3(signature = (table, seconds))]
    fn delay_acks(&self, table: &str, seconds: Option<f64>) -> PyResult<()> {
        let delay = seconds.map(|s| duration("seconds", s)).transpose()?;
        self.faults(table, |f| f.delay_acks(delay))
    }

    /// Fault: while `True`, no acknowledgement is sent.
    fn withhold_acks(&self, table: &str, withhold: bool) -> PyResult<()> {
        self.faults(table, |f| f.withhold_acks(withhold))
    }

    /// Fault: while `True`, new streams are refused with `UNAUTHENTICATED`.
    fn reject_connections(&self, table: &str, reject: bool) -> PyResult<()> {
        self.faults(table, |f| f.reject_connections(reject))
    }

    /// Fault: requests with a record containing `pattern` are refused (`None`: off).
    #[pyo3(signature = (table, pattern))]
    fn reject_records_containing(&self, table: &str, pattern: Option<Vec<u8>>) -> PyResult<()> {
        self.faults(table, |f| f.reject_records_containing(pattern))
    }

    /// Switches every fault of `table` off.
    fn clear_faults(&self, table: &str) -> PyResult<()> {
        self.faults(table, |f| f.clear())
    }

    /// Fault: every token issued so far is expired.
    fn expire_tokens(&self) -> PyResult<()> {
        self.with(LocalZerobus::expire_tokens)
    }

    /// Stops and restarts the server on the same ports, keeping what landed.
    fn restart(&self, py: Python<'_>) -> PyResult<()> {
        let server = Arc::clone(&self.server);
        wait(py, async move {
            match server.lock().await.as_mut() {
                Some(server) => server.restart().await.map_err(local_error),
                None => Err(shut_down()),
            }
        })?
    }

    /// Stops the server (pending Delta commits are made first). Idempotent.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let server = Arc::clone(&self.server);
        wait(py, async move {
            if let Some(server) = server.lock().await.take() {
                server.shutdown().await;
            }
        })
    }
}

impl PyRawLocalZerobus {
    /// `f` of the running server.
    fn with<T>(&self, f: impl FnOnce(&LocalZerobus) -> T) -> PyResult<T> {
        self.server
            .blocking_lock()
            .as_ref()
            .map(f)
            .ok_or_else(shut_down)
    }

    fn faults(&self, table: &str, f: impl FnOnce(&Faults)) -> PyResult<()> {
        self.with(|s| f(&s.faults(table)))
    }
}

fn local_error(error: LocalError) -> PyErr {
    PyRuntimeError::new_err(error.to_string())
}

fn shut_down() -> PyErr {
    PyRuntimeError::new_err("the local Zerobus server was shut down")
}

fn duration(argument: &str, secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!(
            "{argument}: expected a non-negative number of seconds, got {secs}"
        ))
    })
}

/// A gRPC status code from its name (`"unavailable"`, `"INTERNAL"`, ...).
fn grpc_code(name: &str) -> PyResult<Code> {
    let code = match name.to_ascii_lowercase().as_str() {
        "cancelled" => Code::Cancelled,
        "unknown" => Code::Unknown,
        "invalid_argument" => Code::InvalidArgument,
        "deadline_exceeded" => Code::DeadlineExceeded,
        "not_found" => Code::NotFound,
        "already_exists" => Code::AlreadyExists,
        "permission_denied" => Code::PermissionDenied,
        "resource_exhausted" => Code::ResourceExhausted,
        "failed_precondition" => Code::FailedPrecondition,
        "aborted" => Code::Aborted,
        "out_of_range" => Code::OutOfRange,
        "unimplemented" => Code::Unimplemented,
        "internal" => Code::Internal,
        "unavailable" => Code::Unavailable,
        "data_loss" => Code::DataLoss,
        "unauthenticated" => Code::Unauthenticated,
        _ => {
            return Err(PyValueError::new_err(format!(
                "code: {name:?} is not a gRPC status code name (e.g. 'unavailable', 'internal')"
            )))
        }
    };
    Ok(code)
}

//! `WrapperConfiguration` in Python (alias `PyWrapperConfiguration`, the original
//! wrapper's name): every option of the Rust configuration as a keyword argument.

use std::path::PathBuf;
use std::str::FromStr;

use arrow_zerobus_sdk_wrapper::config::DEFAULT_MAX_RECORD_SIZE_BYTES;
use arrow_zerobus_sdk_wrapper::{
    FlightCompression, OtlpConfig, TransportKind, WrapperConfiguration, DEFAULT_MAX_REQUEST_BYTES,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::to_py_err;

/// Everything the wrapper needs to know: where to send, what table, how to authenticate,
/// retry, debug output and observability. Secrets never appear in `repr()`.
#[pyclass(
    name = "WrapperConfiguration",
    module = "arrow_zerobus_sdk_wrapper._internal",
    frozen,
    from_py_object
)]
#[derive(Clone)]
pub(crate) struct PyWrapperConfiguration {
    pub(crate) inner: WrapperConfiguration,
}

#[pymethods]
impl PyWrapperConfiguration {
    #[new]
    #[pyo3(signature = (
        endpoint,
        table_name,
        *,
        client_id = None,
        client_secret = None,
        unity_catalog_url = None,
        debug_enabled = false,
        debug_output_dir = None,
        debug_arrow_enabled = None,
        debug_protobuf_enabled = None,
        debug_max_files_retained = Some(10),
        debug_flush_interval_secs = 5,
        debug_max_file_size = Some(10 * 1024 * 1024),
        debug_rotation_interval_secs = Some(3600),
        retry_max_attempts = 5,
        retry_base_delay_ms = 100,
        retry_max_delay_ms = 30_000,
        zerobus_writer_disabled = false,
        max_record_size_bytes = DEFAULT_MAX_RECORD_SIZE_BYTES,
        max_request_bytes = DEFAULT_MAX_REQUEST_BYTES,
        transport = "protobuf",
        multiplexed_streams = 1,
        flight_ipc_compression = "zstd",
        schema_check = false,
        observability_enabled = false,
        otlp_endpoint = None,
        otlp_service_name = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        endpoint: String,
        table_name: String,
        client_id: Option<String>,
        client_secret: Option<String>,
        unity_catalog_url: Option<String>,
        debug_enabled: bool,
        debug_output_dir: Option<PathBuf>,
        debug_arrow_enabled: Option<bool>,
        debug_protobuf_enabled: Option<bool>,
        debug_max_files_retained: Option<usize>,
        debug_flush_interval_secs: u64,
        debug_max_file_size: Option<u64>,
        debug_rotation_interval_secs: Option<u64>,
        retry_max_attempts: u32,
        retry_base_delay_ms: u64,
        retry_max_delay_ms: u64,
        zerobus_writer_disabled: bool,
        max_record_size_bytes: usize,
        max_request_bytes: usize,
        transport: &str,
        multiplexed_streams: usize,
        flight_ipc_compression: &str,
        schema_check: bool,
        observability_enabled: bool,
        otlp_endpoint: Option<String>,
        otlp_service_name: Option<String>,
    ) -> PyResult<Self> {
        let transport = TransportKind::from_str(transport)
            .map_err(|e| PyValueError::new_err(format!("transport: {}", e.message())))?;
        let compression = FlightCompression::from_str(flight_ipc_compression).map_err(|e| {
            PyValueError::new_err(format!("flight_ipc_compression: {}", e.message()))
        })?;
        let mut config = WrapperConfiguration::new(endpoint, table_name)
            .with_debug_flush_interval_secs(debug_flush_interval_secs)
            .with_debug_max_file_size(debug_max_file_size)
            .with_debug_rotation_interval_secs(debug_rotation_interval_secs)
            .with_debug_max_files_retained(debug_max_files_retained)
            .with_retry_config(retry_max_attempts, retry_base_delay_ms, retry_max_delay_ms)
            .with_zerobus_writer_disabled(zerobus_writer_disabled)
            .with_max_record_size_bytes(max_record_size_bytes)
            .with_max_request_bytes(max_request_bytes)
            .with_transport(transport)
            .with_multiplexed_streams(multiplexed_streams)
            .with_flight_ipc_compression(compression)
            .with_schema_check(schema_check);
        if let (Some(id), Some(secret)) = (&client_id, &client_secret) {
            config = config.with_credentials(id.clone(), secret.clone());
        } else if client_id.is_some() || client_secret.is_some() {
            return Err(PyValueError::new_err(
                "client_id and client_secret: give both or neither",
            ));
        }
        if let Some(url) = unity_catalog_url {
            config = config.with_unity_catalog(url);
        }
        if let Some(dir) = debug_output_dir {
            config = config.with_debug_output(dir);
        }
        config = config.with_debug_enabled(debug_enabled);
        if let Some(enabled) = debug_arrow_enabled {
            config = config.with_debug_arrow_enabled(enabled);
        }
        if let Some(enabled) = debug_protobuf_enabled {
            config = config.with_debug_protobuf_enabled(enabled);
        }
        if observability_enabled || otlp_endpoint.is_some() || otlp_service_name.is_some() {
            let mut otlp = OtlpConfig::default();
            otlp.endpoint = otlp_endpoint;
            otlp.service_name = otlp_service_name;
            config = config.with_observability(otlp);
        }
        Ok(Self { inner: config })
    }

    /// Loads a configuration from a YAML file (the keys of `docs/configuration.md`), then
    /// applies the `ZEROBUS_*` environment variables over it.
    #[staticmethod]
    fn from_yaml(path: PathBuf) -> PyResult<Self> {
        WrapperConfiguration::load(Some(&path))
            .map(|inner| Self { inner })
            .map_err(|e| to_py_err(&e))
    }

    /// Loads a configuration from the `ZEROBUS_*` environment variables alone
    /// (`ZEROBUS_ENDPOINT` and `ZEROBUS_TABLE_NAME` are required).
    #[staticmethod]
    fn from_env() -> PyResult<Self> {
        WrapperConfiguration::load(None)
            .map(|inner| Self { inner })
            .map_err(|e| to_py_err(&e))
    }

    /// Checks every option; raises `ConfigurationError` naming the option at fault.
    fn validate(&self) -> PyResult<()> {
        self.inner.validate().map_err(|e| to_py_err(&e))
    }

    #[getter]
    fn endpoint(&self) -> &str {
        self.inner.zerobus_endpoint()
    }

    #[getter]
    fn table_name(&self) -> &str {
        self.inner.table_name()
    }

    #[getter]
    fn client_id(&self) -> Option<&str> {
        self.inner.client_id()
    }

    /// Whether a client secret is set (the secret itself is not readable from Python).
    #[getter]
    fn has_client_secret(&self) -> bool {
        self.inner.client_secret().is_some()
    }

    #[getter]
    fn unity_catalog_url(&self) -> Option<&str> {
        self.inner.unity_catalog_url()
    }

    #[getter]
    fn transport(&self) -> &'static str {
        self.inner.transport().as_str()
    }

    #[getter]
    fn zerobus_writer_disabled(&self) -> bool {
        self.inner.zerobus_writer_disabled()
    }

    #[getter]
    fn debug_output_dir(&self) -> Option<PathBuf> {
        self.inner.debug_output_dir().map(PathBuf::from)
    }

    #[getter]
    fn debug_arrow_enabled(&self) -> bool {
        self.inner.debug_arrow_active()
    }

    #[getter]
    fn debug_protobuf_enabled(&self) -> bool {
        self.inner.debug_protobuf_active()
    }

    #[getter]
    fn debug_max_files_retained(&self) -> Option<usize> {
        self.inner.debug_max_files_retained()
    }

    #[getter]
    fn retry_max_attempts(&self) -> u32 {
        self.inner.retry_max_attempts()
    }

    #[getter]
    fn max_request_bytes(&self) -> usize {
        self.inner.max_request_bytes()
    }

    #[getter]
    fn max_record_size_bytes(&self) -> usize {
        self.inner.max_record_size_bytes()
    }

    #[getter]
    fn multiplexed_streams(&self) -> usize {
        self.inner.multiplexed_streams()
    }

    #[getter]
    fn flight_ipc_compression(&self) -> &'static str {
        self.inner.flight_ipc_compression().as_str()
    }

    #[getter]
    fn schema_check(&self) -> bool {
        self.inner.schema_check()
    }

    pub(crate) fn __repr__(&self) -> String {
        let config = &self.inner;
        format!(
            "WrapperConfiguration(endpoint={}, table_name={}, client_id={}, client_secret={}, \
             transport={}, zerobus_writer_disabled={})",
            py_str(Some(config.zerobus_endpoint())),
            py_str(Some(config.table_name())),
            py_str(config.client_id()),
            py_str(config.client_secret().map(|_| "<redacted>")),
            py_str(Some(config.transport().as_str())),
            if config.zerobus_writer_disabled() {
                "True"
            } else {
                "False"
            },
        )
    }
}

/// `value` as Python writes a `str | None` in a repr (`'text'` or `None`).
fn py_str(value: Option<&str>) -> String {
    value.map_or_else(
        || "None".to_string(),
        |text| format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
    )
}

//! The Zerobus table of the `datafusion` feature (`ZerobusTableProvider`) and its
//! `STORED AS ZEROBUS` factory for datafusion-python, exported through DataFusion's FFI by
//! the wrapper's `sql::ffi` and run on the package's runtime: the engines of
//! `arrow_zerobus_sdk_wrapper.datafusion.ZerobusTable` and `ZerobusTableFactory`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use arrow_zerobus_sdk_wrapper::sql::{
    ffi, TableOptions, ZerobusTableProvider, ZerobusTableProviderFactory,
};
use datafusion::error::DataFusionError;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::runtime::{runtime, wait};

/// The name datafusion-python looks for on a table provider's capsule.
const PROVIDER_CAPSULE: &std::ffi::CStr = c"datafusion_table_provider";
/// The name datafusion-python looks for on a table provider factory's capsule.
const FACTORY_CAPSULE: &std::ffi::CStr = c"datafusion_table_provider_factory";

/// A write-only Zerobus table; use `arrow_zerobus_sdk_wrapper.datafusion.ZerobusTable`.
#[pyclass(
    name = "RawZerobusTable",
    module = "arrow_zerobus_sdk_wrapper._internal",
    frozen
)]
pub(crate) struct PyRawZerobusTable {
    provider: Arc<ZerobusTableProvider>,
}

#[pymethods]
impl PyRawZerobusTable {
    /// The table `table_name` of `schema` (a pyarrow schema or any object with
    /// `__arrow_c_schema__`; `None`: read from Unity Catalog) with the options of
    /// `STORED AS ZEROBUS` (`docs/datafusion.md`), values as strings; the `ZEROBUS_*`
    /// environment variables stand in for the ones not given, as for the SQL factory.
    #[new]
    #[pyo3(signature = (table_name, schema, options))]
    fn new(
        py: Python<'_>,
        table_name: String,
        schema: Option<Bound<'_, PyAny>>,
        options: HashMap<String, String>,
    ) -> PyResult<Self> {
        let schema: Option<SchemaRef> = schema
            .map(|schema| {
                Schema::from_pyarrow_bound(&schema)
                    .map(Arc::new)
                    .map_err(|e| PyValueError::new_err(format!("schema: not an Arrow schema: {e}")))
            })
            .transpose()?;
        let options = TableOptions::parse(&table_name, &options, |name| std::env::var(name).ok())
            .map_err(|e| PyValueError::new_err(message(&e)))?;
        let from_uc = schema.is_none();
        let provider =
            wait(py, ZerobusTableProvider::from_options(schema, options))?.map_err(|e| {
                if from_uc {
                    PyRuntimeError::new_err(message(&e))
                } else {
                    PyValueError::new_err(format!("schema: {}", message(&e)))
                }
            })?;
        Ok(Self {
            provider: Arc::new(provider),
        })
    }

    /// An `FFI_TableProvider` capsule for datafusion-python's `register_table`. `session`
    /// (the caller's session or its codec) is not used (see the wrapper's `sql::ffi`).
    #[pyo3(signature = (session = None))]
    fn __datafusion_table_provider__<'py>(
        &self,
        py: Python<'py>,
        session: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = session;
        let exported = ffi::table_provider(Arc::clone(&self.provider), runtime().handle().clone());
        PyCapsule::new_with_value(py, exported, PROVIDER_CAPSULE)
    }

    /// The Zerobus table (`catalog.schema.table`).
    #[getter]
    fn table_name(&self) -> &str {
        self.provider.config().table_name()
    }

    /// The table's schema as declared (NOT NULL columns included), a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.provider.table_schema().as_ref().to_pyarrow(py)
    }

    #[getter]
    fn endpoint(&self) -> &str {
        self.provider.config().zerobus_endpoint()
    }

    #[getter]
    fn transport(&self) -> &'static str {
        self.provider.config().transport().as_str()
    }

    #[getter]
    fn client_id(&self) -> Option<&str> {
        self.provider.config().client_id()
    }

    /// Whether a client secret is set (the secret itself is not readable from Python).
    #[getter]
    fn has_client_secret(&self) -> bool {
        self.provider.config().client_secret().is_some()
    }

    #[getter]
    fn workers(&self) -> usize {
        self.provider.sink_options().workers
    }

    #[getter]
    fn max_inflight_batches(&self) -> usize {
        self.provider.sink_options().max_inflight_batches
    }

    #[getter]
    fn on_error(&self) -> &'static str {
        self.provider.sink_options().on_error.as_str()
    }
}

/// The `STORED AS ZEROBUS` factory; use
/// `arrow_zerobus_sdk_wrapper.datafusion.ZerobusTableFactory`.
#[pyclass(
    name = "RawZerobusTableFactory",
    module = "arrow_zerobus_sdk_wrapper._internal",
    frozen
)]
pub(crate) struct PyRawZerobusTableFactory {
    factory: ZerobusTableProviderFactory,
}

#[pymethods]
impl PyRawZerobusTableFactory {
    /// A factory reading the `ZEROBUS_*` fallbacks from `env` (`None`: the process
    /// environment).
    #[new]
    #[pyo3(signature = (env = None))]
    fn new(env: Option<HashMap<String, String>>) -> Self {
        let factory = match env {
            Some(env) => ZerobusTableProviderFactory::with_env(move |name| env.get(name).cloned()),
            None => ZerobusTableProviderFactory::new(),
        };
        Self { factory }
    }

    /// An `FFI_TableProviderFactory` capsule for datafusion-python's
    /// `register_table_factory`. `codec` (the caller's) is not used (see the wrapper's
    /// `sql::ffi`).
    #[pyo3(signature = (codec = None))]
    fn __datafusion_table_provider_factory__<'py>(
        &self,
        py: Python<'py>,
        codec: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = codec;
        let exported =
            ffi::table_provider_factory(self.factory.clone(), runtime().handle().clone());
        PyCapsule::new_with_value(py, exported, FACTORY_CAPSULE)
    }
}

/// A DataFusion error's text without the variant's prefix ("Error during planning: ").
fn message(error: &DataFusionError) -> String {
    match error {
        DataFusionError::Plan(text) | DataFusionError::Execution(text) => text.clone(),
        other => other.to_string(),
    }
}

//! `ZerobusError` as Python exceptions: one class per variant, defined in
//! `arrow_zerobus_sdk_wrapper/exceptions.py` and chosen by the variant (never by parsing
//! the message), with its structured fields as attributes.

use arrow_zerobus_sdk_wrapper::ZerobusError;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

/// The module that defines the exception classes.
const EXCEPTIONS: &str = "arrow_zerobus_sdk_wrapper.exceptions";

static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The Python exception instance for `error`: the class named after its variant (the base
/// `ZerobusError` for a variant the Python package does not know yet), with `is_retryable`,
/// `error_type`, and for conversion errors `kind`, `column` and `row`, for I/O errors
/// `path`.
pub(crate) fn exception<'py>(py: Python<'py>, error: &ZerobusError) -> PyResult<Bound<'py, PyAny>> {
    let module = MODULE
        .get_or_try_init(py, || py.import(EXCEPTIONS).map(Bound::unbind))?
        .bind(py);
    let class = module
        .getattr(error.error_type())
        .or_else(|_| module.getattr("ZerobusError"))?;
    let instance = class.call1((error.to_string(),))?;
    instance.setattr("is_retryable", error.is_retryable())?;
    instance.setattr("error_type", error.error_type())?;
    if let Some(failure) = error.conversion_failure() {
        instance.setattr("kind", failure.kind.as_str())?;
        instance.setattr("column", failure.column.as_deref())?;
        instance.setattr("row", failure.row)?;
    }
    if let ZerobusError::IoError { path, .. } = error {
        instance.setattr("path", path.display().to_string())?;
    }
    Ok(instance)
}

/// `error` raised as its Python exception.
pub(crate) fn to_py_err(error: &ZerobusError) -> PyErr {
    Python::attach(|py| match exception(py, error) {
        Ok(instance) => PyErr::from_value(instance),
        Err(import_failed) => import_failed,
    })
}

/// A `TypeError` naming the argument and what it must be.
pub(crate) fn wrong_type(argument: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let got = got
        .get_type()
        .fully_qualified_name()
        .map_or_else(|_| "?".to_string(), |name| name.to_string());
    PyTypeError::new_err(format!("{argument}: expected {expected}, got {got}"))
}

//! The compiled half of the Python package `arrow_zerobus_sdk_wrapper` (its private module
//! `_internal`): the Rust wrapper, its configuration and results, the local Zerobus server
//! and the Zerobus table for datafusion-python (through DataFusion's FFI), over PyO3. Arrow
//! data comes in through the Arrow PyCapsule interface, zero-copy; the work runs on one
//! tokio runtime with the GIL released. The user-facing classes and their docs are in
//! `python/arrow_zerobus_sdk_wrapper/`.

mod config;
mod errors;
mod input;
mod local;
mod result;
mod runtime;
mod sql_table;
mod wrapper;

use pyo3::prelude::*;

/// The module `arrow_zerobus_sdk_wrapper._internal`.
#[pymodule]
fn _internal(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<config::PyWrapperConfiguration>()?;
    module.add_class::<wrapper::PyRawWrapper>()?;
    module.add_class::<result::PyTransmissionResult>()?;
    module.add_class::<local::PyRawLocalZerobus>()?;
    module.add_class::<sql_table::PyRawZerobusTable>()?;
    module.add_class::<sql_table::PyRawZerobusTableFactory>()?;
    module.add(
        "DATAFUSION_FFI_MAJOR",
        arrow_zerobus_sdk_wrapper::sql::ffi::major_version(),
    )?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

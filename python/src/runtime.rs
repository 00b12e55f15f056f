//! The one tokio runtime the package runs its work on, and the two ways Python waits for
//! it: blocking (GIL released, Ctrl-C honoured) or as an asyncio awaitable.

use std::future::Future;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How often a blocking wait looks for Ctrl-C (Python's pending signals).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The package's runtime (multi-threaded, shared with the asyncio bridge).
pub(crate) fn runtime() -> &'static Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs `future` on the runtime and blocks until it is done, with the GIL released so other
/// Python threads run meanwhile. Every 100 ms it checks Python's signals: on Ctrl-C the
/// work is cancelled and `KeyboardInterrupt` is raised.
pub(crate) fn wait<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut task = runtime().spawn(future);
    loop {
        let waited = py.detach(|| {
            runtime().block_on(async { tokio::time::timeout(SIGNAL_CHECK, &mut task).await })
        });
        match waited {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(failed)) => {
                return Err(PyRuntimeError::new_err(format!(
                    "arrow_zerobus_sdk_wrapper: the operation ended abnormally: {failed}"
                )))
            }
            Err(_still_running) => {
                if let Err(interrupt) = py.check_signals() {
                    task.abort();
                    return Err(interrupt);
                }
            }
        }
    }
}

/// `future` as an asyncio awaitable of the running event loop; the runtime does the work,
/// so the event loop is never blocked.
pub(crate) fn awaitable<'py, T, F>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, future)
}

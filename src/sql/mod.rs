//! DataFusion integration (feature `datafusion`): `INSERT INTO` a Zerobus table from SQL.
//!
//! ```sql
//! CREATE EXTERNAL TABLE events (id BIGINT NOT NULL, name VARCHAR, ts TIMESTAMP)
//! STORED AS ZEROBUS LOCATION 'main.default.events'
//! OPTIONS ('endpoint' 'https://…', 'unity_catalog_url' 'https://…', 'workers' '2');
//!
//! INSERT INTO events SELECT id, name, ts FROM 'data.parquet';
//! ```
//!
//! - [`ZerobusTableProvider`]: a write-only [`TableProvider`](datafusion::catalog::TableProvider);
//!   `INSERT INTO` plans a `DataSinkExec` over a [`ZerobusDataSink`], which streams the
//!   input through [`ZerobusWrapper`](crate::ZerobusWrapper)s (the same encoder and
//!   transport as every other entry point) and returns the number of rows that landed.
//! - [`ZerobusTableProviderFactory`]: `CREATE EXTERNAL TABLE ... STORED AS ZEROBUS`, under
//!   the key [`FACTORY_KEY`].
//! - [`register`] / [`register_with`] / [`with_zerobus`]: the factory on a
//!   `SessionContext` / `SessionStateBuilder` in one call.
//! - [`ffi`]: the table and the factory for another library (datafusion-python) through
//!   DataFusion's FFI.
//!
//! Failure handling ([`OnError`]), options and metrics: `docs/datafusion.md`.

mod factory;
mod failures;
pub mod ffi;
mod options;
mod prepare;
mod provider;
mod sink;

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;

pub use factory::{fetch_uc_schema, ZerobusTableProviderFactory, FACTORY_KEY};
pub use failures::{
    quarantine_schema, QUARANTINE_ERROR_COLUMN, QUARANTINE_ERROR_TYPE_COLUMN,
    QUARANTINE_INPUT_ROW_COLUMN,
};
pub use options::{
    default_workers, OnError, SinkOptions, TableOptions, DEFAULT_MAX_INFLIGHT_BATCHES,
    KNOWN_OPTIONS,
};
pub use provider::{InsertPlan, ZerobusTableProvider};
pub use sink::ZerobusDataSink;

/// Registers the `STORED AS ZEROBUS` table factory on `ctx` (reading the `ZEROBUS_*`
/// fallbacks from the process environment).
pub fn register(ctx: &SessionContext) {
    register_with(ctx, ZerobusTableProviderFactory::new());
}

/// Registers `factory` (e.g. one made with
/// [`ZerobusTableProviderFactory::with_env`]) for `STORED AS ZEROBUS` on `ctx`.
pub fn register_with(ctx: &SessionContext, factory: ZerobusTableProviderFactory) {
    ctx.state_ref()
        .write()
        .table_factories_mut()
        .insert(FACTORY_KEY.to_string(), Arc::new(factory));
}

/// `builder` with the `STORED AS ZEROBUS` table factory (call after
/// `with_default_features`, which would not remove it either way).
pub fn with_zerobus(builder: SessionStateBuilder) -> SessionStateBuilder {
    builder.with_table_factory(
        FACTORY_KEY.to_string(),
        Arc::new(ZerobusTableProviderFactory::new()),
    )
}

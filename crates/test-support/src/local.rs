//! Helpers for tests that run against the local server.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use databricks_zerobus_ingest_sdk::{ZerobusError as SdkError, ZerobusSdk};
use zerobus_local::{Landing, LocalZerobus};

/// The official SDK pointed at `server`'s gRPC and Unity Catalog endpoints: plaintext, no
/// proxy.
pub fn sdk(server: &LocalZerobus) -> Result<ZerobusSdk, SdkError> {
    ZerobusSdk::builder()
        .endpoint(server.endpoint())
        .unity_catalog_url(server.unity_catalog_url())
        .no_tls()
        .connector_factory(Arc::new(|_: &str| None))
        .build()
}

/// A nullable microsecond timestamp column: TIMESTAMP (UTC) if `utc`, else TIMESTAMP_NTZ.
pub fn timestamp_field(name: &str, utc: bool) -> Field {
    let tz = utc.then(|| "UTC".into());
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, tz), true)
}

/// Serializes the million-row tests: each one alone saturates the two cores of a CI
/// machine in a debug build, and several at once can push a client past its flush timeout.
pub async fn heavy_test_slot() -> tokio::sync::MutexGuard<'static, ()> {
    static SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SLOT.lock().await
}

/// A server keeping rows in memory, with `table` created up front with `schema`.
pub async fn memory_server(table: &str, schema: SchemaRef) -> LocalZerobus {
    LocalZerobus::builder()
        .landing(Landing::Memory)
        .table(table, schema)
        .start()
        .await
        .expect("local server")
}

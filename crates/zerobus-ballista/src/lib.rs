//! `INSERT INTO zerobus_table SELECT ...` on [Apache Ballista](https://datafusion.apache.org/ballista/).
//!
//! Ballista ships plans between processes: the client sends the logical plan to the
//! scheduler, which plans it and sends stages to the executors. A Zerobus table (the
//! [`ZerobusTableProvider`](arrow_zerobus_sdk_wrapper::sql::ZerobusTableProvider) of
//! `arrow_zerobus_sdk_wrapper::sql`) and its sink must therefore be serializable:
//!
//! - [`ZerobusLogicalCodec`]: the table provider (table name, declared schema, wrapper
//!   configuration, sink options) in the logical plan (`INSERT INTO` targets);
//! - [`ZerobusPhysicalCodec`]: the `DataSinkExec` writing into a Zerobus table, in the
//!   stages the executors run (the executor opens the Zerobus streams and writes);
//! - [`with_zerobus`]: both on a `SessionConfig` in one call, wrapping the codecs already
//!   there (Ballista's by default), so other extensions compose.
//!
//! Each codec handles only Zerobus tables and delegates everything else to its inner codec.
//!
//! # Credentials
//! Plans never carry the OAuth client secret. They carry the client id (and everything
//! else of the configuration); the process that decodes a plan reads the secret from
//! `ZEROBUS_CLIENT_SECRET` ([`CLIENT_SECRET_VAR`]) in its own environment, or from the
//! lookup given to [`with_zerobus_env`] / the codecs' `with_env`. Every executor needs it
//! (decoding a sink without it fails, naming the variable); the scheduler does not.
//!
//! # Setup
//! ```no_run
//! # async fn example() -> datafusion::error::Result<()> {
//! use ballista::prelude::{SessionConfigExt, SessionContextExt};
//! use datafusion::execution::SessionStateBuilder;
//! use datafusion::prelude::{SessionConfig, SessionContext};
//!
//! // Client (and, in standalone mode, the in-process scheduler and executor).
//! let config = zerobus_ballista::with_zerobus(SessionConfig::new_with_ballista());
//! let state = arrow_zerobus_sdk_wrapper::sql::with_zerobus(
//!     SessionStateBuilder::new().with_config(config).with_default_features(),
//! )
//! .build();
//! let ctx = SessionContext::standalone_with_state(state).await?;
//! ctx.sql("CREATE EXTERNAL TABLE events (id BIGINT NOT NULL, name VARCHAR) \
//!          STORED AS ZEROBUS LOCATION 'main.default.events'").await?;
//! ctx.sql("INSERT INTO events SELECT id, name FROM 'data/*.parquet'").await?.collect().await?;
//! # Ok(())
//! # }
//! ```
//! A separate scheduler and executors take the codecs in their own configuration
//! (`SchedulerConfig::override_logical_codec` / `override_physical_codec`, the same fields
//! of `ExecutorProcessConfig`): `Some(Arc::new(ZerobusLogicalCodec::default()))` and
//! `Some(Arc::new(ZerobusPhysicalCodec::default()))`. See `docs/distributed.md`.
//!
//! # Partitions and failures
//! On the scheduler the logical codec decodes the table with the [`WritePerPartition`]
//! INSERT plan, which writes every input partition in its own task ([`ZerobusWriteExec`], on
//! whichever executor runs it, through the same `ZerobusDataSink` as single-process
//! DataFusion) and sums the counts ([`ZerobusCountSumExec`]). A task whose rows fail
//! fails with the sink's message (its count of rows that landed and its failed rows
//! grouped by reason), and Ballista fails the job with it; rows that landed stay (Zerobus
//! has no transactions). A task Ballista runs again may send rows again (Zerobus is
//! at-least-once). See `docs/distributed.md`.

mod codec;
mod node;
mod write;

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use datafusion::prelude::SessionConfig;

pub use codec::{ZerobusLogicalCodec, ZerobusPhysicalCodec};
pub use node::CLIENT_SECRET_VAR;
pub use write::{
    is_partitioned, partitioned, WritePerPartition, ZerobusCountSumExec, ZerobusWriteExec,
};

/// `config` with the Zerobus codecs registered as its Ballista codecs, each wrapping the
/// codec registered before (Ballista's own by default). Calling it again changes nothing.
///
/// It also turns off `datafusion.execution.enable_file_stream_work_stealing`, as
/// DataFusion advises for Ballista: with it on, a task running several partitions of a
/// file scan lets one partition take the files of another, so one write task may send
/// two files' rows and another none (every row still lands once, but the work is not
/// spread as planned). Set it back after this call if you want it.
///
/// Use it for the client's `SessionConfig` (and, in standalone mode, the scheduler's and
/// executor's, which `SessionContext::standalone_with_state` takes from the client's
/// state). Decoded sinks read their client secret from the process environment.
pub fn with_zerobus(config: SessionConfig) -> SessionConfig {
    with_codecs(config, ZerobusLogicalCodec::new, ZerobusPhysicalCodec::new)
}

/// Like [`with_zerobus`], with `ZEROBUS_CLIENT_SECRET` read through `lookup` instead of
/// the process environment (several executors in one process, each with its own
/// credentials; a test).
pub fn with_zerobus_env(
    config: SessionConfig,
    lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> SessionConfig {
    let lookup = Arc::new(lookup);
    let physical_lookup = Arc::clone(&lookup);
    with_codecs(
        config,
        |inner| ZerobusLogicalCodec::new(inner).with_env(move |name| lookup(name)),
        |inner| ZerobusPhysicalCodec::new(inner).with_env(move |name| physical_lookup(name)),
    )
}

/// DataFusion's option letting sibling partitions of a file scan take each other's files.
const WORK_STEALING: &str = "datafusion.execution.enable_file_stream_work_stealing";

fn with_codecs(
    config: SessionConfig,
    logical: impl FnOnce(
        Arc<dyn datafusion_proto::logical_plan::LogicalExtensionCodec>,
    ) -> ZerobusLogicalCodec,
    physical: impl FnOnce(
        Arc<dyn datafusion_proto::physical_plan::PhysicalExtensionCodec>,
    ) -> ZerobusPhysicalCodec,
) -> SessionConfig {
    // Unwrap codecs of ours registered before, so a second call does not nest them.
    let mut inner_logical = config.ballista_logical_extension_codec();
    if let Some(ours) =
        (inner_logical.as_ref() as &dyn std::any::Any).downcast_ref::<ZerobusLogicalCodec>()
    {
        inner_logical = Arc::clone(ours.inner());
    }
    let mut inner_physical = config.ballista_physical_extension_codec();
    if let Some(ours) =
        (inner_physical.as_ref() as &dyn std::any::Any).downcast_ref::<ZerobusPhysicalCodec>()
    {
        inner_physical = Arc::clone(ours.inner());
    }
    config
        .set_bool(WORK_STEALING, false)
        .with_ballista_logical_extension_codec(Arc::new(logical(inner_logical)))
        .with_ballista_physical_extension_codec(Arc::new(physical(inner_physical)))
}

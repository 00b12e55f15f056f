//! [`ZerobusLogicalCodec`] and [`ZerobusPhysicalCodec`]: a Zerobus table in Ballista plans,
//! everything else delegated to an inner codec.

use std::fmt;
use std::sync::Arc;

use arrow_zerobus_sdk_wrapper::sql::{ZerobusDataSink, ZerobusTableProvider};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    AggregateUDF, Extension, HigherOrderUDF, LogicalPlan, ScalarUDF, WindowUDF,
};
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use crate::node::{self, process_env, Env};
use crate::write::{partitioned, ZerobusCountSumExec, ZerobusWriteExec};

/// A [`LogicalExtensionCodec`] for [`ZerobusTableProvider`]s (the target of
/// `INSERT INTO` a Zerobus table): table name, declared schema, wrapper configuration and
/// sink options. Everything else (other table providers, extension nodes, file formats,
/// functions) goes to the inner codec, Ballista's by default.
///
/// A Zerobus table decodes with the [`WritePerPartition`](crate::WritePerPartition)
/// INSERT plan (the scheduler plans the write as one task per input partition); the
/// INSERT plan itself is not encoded.
///
/// The client secret is never written: the decoding process reads it from
/// `ZEROBUS_CLIENT_SECRET` in its environment (or the lookup given to
/// [`with_env`](Self::with_env)) when the table has a client id.
#[derive(Clone)]
pub struct ZerobusLogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
    env: Env,
}

/// A [`PhysicalExtensionCodec`] for the nodes that write into a Zerobus table:
/// [`ZerobusWriteExec`], [`ZerobusCountSumExec`] and a `DataSinkExec` with a
/// [`ZerobusDataSink`] (the single-process plan); every other node goes to the inner
/// codec, Ballista's by default.
///
/// A decoded sink takes its client secret from `ZEROBUS_CLIENT_SECRET` in the decoding
/// process's environment (or the lookup given to [`with_env`](Self::with_env)); decoding
/// fails, naming the variable, when the table has a client id and no secret is found.
#[derive(Clone)]
pub struct ZerobusPhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
    env: Env,
}

macro_rules! codec_common {
    ($codec:ident, $inner:ident, $ballista:ident, $kind:literal) => {
        impl $codec {
            /// A codec delegating everything but Zerobus nodes to `inner`; the client
            /// secret is read from the process environment.
            pub fn new(inner: Arc<dyn $inner>) -> Self {
                Self {
                    inner,
                    env: process_env(),
                }
            }

            /// Reads `ZEROBUS_CLIENT_SECRET` through `lookup` instead of the process
            /// environment (one process hosting several executors, a test).
            pub fn with_env(
                mut self,
                lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
            ) -> Self {
                self.env = Arc::new(lookup);
                self
            }

            /// The codec everything but Zerobus tables is delegated to.
            pub fn inner(&self) -> &Arc<dyn $inner> {
                &self.inner
            }
        }

        impl Default for $codec {
            #[doc = concat!("Wraps Ballista's own ", $kind, " codec.")]
            fn default() -> Self {
                Self::new(Arc::new($ballista::default()))
            }
        }

        impl fmt::Debug for $codec {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // The environment lookup may hold credentials: never print it.
                f.debug_struct(stringify!($codec))
                    .field("inner", &self.inner)
                    .finish_non_exhaustive()
            }
        }
    };
}

codec_common!(
    ZerobusLogicalCodec,
    LogicalExtensionCodec,
    BallistaLogicalExtensionCodec,
    "logical"
);
codec_common!(
    ZerobusPhysicalCodec,
    PhysicalExtensionCodec,
    BallistaPhysicalExtensionCodec,
    "physical"
);

/// The function (UDF, UDAF, UDWF, higher-order) methods, common to both codec traits:
/// always the inner codec's.
macro_rules! delegate_functions {
    () => {
        fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
            self.inner.try_decode_udf(name, buf)
        }

        fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udf(node, buf)
        }

        fn try_decode_higher_order_function(
            &self,
            name: &str,
            buf: &[u8],
        ) -> Result<Arc<HigherOrderUDF>> {
            self.inner.try_decode_higher_order_function(name, buf)
        }

        fn try_encode_higher_order_function(
            &self,
            node: &HigherOrderUDF,
            buf: &mut Vec<u8>,
        ) -> Result<()> {
            self.inner.try_encode_higher_order_function(node, buf)
        }

        fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
            self.inner.try_decode_udaf(name, buf)
        }

        fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udaf(node, buf)
        }

        fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
            self.inner.try_decode_udwf(name, buf)
        }

        fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
            self.inner.try_encode_udwf(node, buf)
        }
    };
}

impl LogicalExtensionCodec for ZerobusLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if !node::is_zerobus(buf) {
            return self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        }
        // A scheduler plans without the secret; the executors' physical codec checks it.
        match node::decode(buf, &self.env)? {
            node::Decoded::Table { parts, .. } => Ok(Arc::new(partitioned(
                ZerobusTableProvider::new(parts.schema, parts.config)
                    .with_sink_options(parts.options),
            ))),
            node::Decoded::CountSum => Err(DataFusionError::Plan(
                "invalid Zerobus table node: a physical node where a table was expected".into(),
            )),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<ZerobusTableProvider>() {
            Some(table) => node::encode(
                node::Kind::Table,
                table.table_schema(),
                table.config(),
                table.sink_options(),
                buf,
            ),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    delegate_functions!();
}

impl PhysicalExtensionCodec for ZerobusPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !node::is_zerobus(buf) {
            return self.inner.try_decode(buf, inputs, ctx, proto_converter);
        }
        let [input] = inputs else {
            return Err(DataFusionError::Plan(format!(
                "invalid Zerobus plan node: {} inputs, expected 1",
                inputs.len()
            )));
        };
        let input = Arc::clone(input);
        let (kind, parts) = match node::decode(buf, &self.env)? {
            node::Decoded::CountSum => return Ok(Arc::new(ZerobusCountSumExec::new(input))),
            node::Decoded::Table {
                missing_secret: true,
                parts,
                ..
            } => return Err(node::missing_secret_error(&parts.config)),
            node::Decoded::Table { kind, parts, .. } => (kind, *parts),
        };
        let sink = Arc::new(ZerobusDataSink::new(
            parts.schema,
            parts.config,
            parts.options,
        ));
        Ok(match kind {
            node::Kind::Write => Arc::new(ZerobusWriteExec::new(input, sink)),
            _ => Arc::new(DataSinkExec::new(input, sink, None)),
        })
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if node.downcast_ref::<ZerobusCountSumExec>().is_some() {
            return node::encode_count_sum(buf);
        }
        let sink = match node.downcast_ref::<ZerobusWriteExec>() {
            Some(write) => Some((node::Kind::Write, write.sink().as_ref())),
            None => node
                .downcast_ref::<DataSinkExec>()
                .and_then(|exec| exec.sink().downcast_ref::<ZerobusDataSink>())
                .map(|sink| (node::Kind::Table, sink)),
        };
        match sink {
            Some((kind, sink)) => node::encode(
                kind,
                sink.table_schema(),
                sink.config(),
                sink.sink_options(),
                buf,
            ),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }

    delegate_functions!();

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        self.inner.try_decode_expr(buf, inputs, ctx)
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> Result<()> {
        self.inner.try_encode_expr(node, buf, ctx)
    }
}

//! Writing every input partition in its own task: [`ZerobusWriteExec`] and
//! [`ZerobusCountSumExec`], planned by [`WritePerPartition`].
//!
//! `DataSinkExec` requires a single input partition, so on Ballista the whole write would
//! run as one task on one executor. [`WritePerPartition`] plans instead
//!
//! ```text
//! ZerobusCountSumExec                 one task: sums the counts
//!   CoalescePartitionsExec            (Ballista: a stage boundary)
//!     ZerobusWriteExec                one task per input partition, on any executor,
//!       <input, N partitions>         each streaming its partition through the sink
//! ```
//!
//! Each task runs the same [`ZerobusDataSink`] (the wrapper's encoder and transport, its
//! `workers` streams) on its own partition.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use arrow_zerobus_sdk_wrapper::sql::{InsertPlan, ZerobusDataSink, ZerobusTableProvider};
use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, PhysicalExpr, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

/// The `count` schema of an INSERT's result.
fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

/// A one-row `count` batch.
fn count_batch(count: u64) -> Result<RecordBatch> {
    let column: ArrayRef = Arc::new(UInt64Array::from(vec![count]));
    Ok(RecordBatch::try_new(count_schema(), vec![column])?)
}

/// A stream of one `count` batch: what `count` resolves to.
fn count_stream(
    count: impl Future<Output = Result<u64>> + Send + 'static,
) -> SendableRecordBatchStream {
    let stream = futures::stream::once(async move { count_batch(count.await?) });
    Box::pin(RecordBatchStreamAdapter::new(
        count_schema(),
        stream.boxed(),
    ))
}

fn properties(partitions: usize) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(count_schema()),
        Partitioning::UnknownPartitioning(partitions),
        EmissionType::Final,
        Boundedness::Bounded,
    ))
}

/// The one child of a node, or an error naming the node.
fn one_child(name: &str, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
    let count = children.len();
    children
        .into_iter()
        .next()
        .filter(|_| count == 1)
        .ok_or_else(|| DataFusionError::Internal(format!("{name} takes one child, got {count}")))
}

/// The INSERT plan of a Zerobus table on Ballista (see the [module docs](self)): every
/// input partition written in its own task by a [`ZerobusWriteExec`], the counts summed
/// by a [`ZerobusCountSumExec`]. The [`ZerobusLogicalCodec`](crate::ZerobusLogicalCodec)
/// decodes Zerobus tables with it on a Ballista scheduler; [`partitioned`] sets it on a
/// table of your own.
#[derive(Debug, Clone, Copy, Default)]
pub struct WritePerPartition;

impl InsertPlan for WritePerPartition {
    fn plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        sink: ZerobusDataSink,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let write = Arc::new(ZerobusWriteExec::new(input, Arc::new(sink)));
        Ok(Arc::new(ZerobusCountSumExec::new(Arc::new(
            CoalescePartitionsExec::new(write),
        ))))
    }
}

/// `table`, its `INSERT INTO` planned with [`WritePerPartition`].
///
/// ```
/// use std::sync::Arc;
/// use arrow_zerobus_sdk_wrapper::sql::ZerobusTableProvider;
/// use arrow_zerobus_sdk_wrapper::WrapperConfiguration;
/// use datafusion::arrow::datatypes::{DataType, Field, Schema};
///
/// let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
/// let config = WrapperConfiguration::new("http://127.0.0.1:50051", "main.default.events");
/// let table = zerobus_ballista::partitioned(ZerobusTableProvider::new(schema, config));
/// assert!(zerobus_ballista::is_partitioned(&table));
/// ```
pub fn partitioned(table: ZerobusTableProvider) -> ZerobusTableProvider {
    table.with_insert_plan(Arc::new(WritePerPartition))
}

/// Whether `table` plans its INSERTs with [`WritePerPartition`].
pub fn is_partitioned(table: &ZerobusTableProvider) -> bool {
    table
        .insert_plan()
        .is_some_and(|plan| (plan.as_ref() as &dyn Any).is::<WritePerPartition>())
}

/// Streams each input partition into a Zerobus table through its own run of a
/// [`ZerobusDataSink`]; partition `i`'s output is one `count` row (the rows of partition
/// `i` that landed). Sum them with [`ZerobusCountSumExec`].
#[derive(Debug, Clone)]
pub struct ZerobusWriteExec {
    input: Arc<dyn ExecutionPlan>,
    sink: Arc<ZerobusDataSink>,
    properties: Arc<PlanProperties>,
}

impl ZerobusWriteExec {
    /// Writes the partitions of `input` through `sink`.
    pub fn new(input: Arc<dyn ExecutionPlan>, sink: Arc<ZerobusDataSink>) -> Self {
        let partitions = input.properties().partitioning.partition_count();
        Self {
            input,
            sink,
            properties: properties(partitions),
        }
    }

    /// The input plan.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// The sink each partition is written through.
    pub fn sink(&self) -> &Arc<ZerobusDataSink> {
        &self.sink
    }
}

impl DisplayAs for ZerobusWriteExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !matches!(t, DisplayFormatType::TreeRender) {
            write!(f, "ZerobusWriteExec: per partition, sink=")?;
        }
        self.sink.fmt_as(t, f)
    }
}

impl ExecutionPlan for ZerobusWriteExec {
    fn name(&self) -> &'static str {
        "ZerobusWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = one_child(self.name(), children)?;
        Ok(Arc::new(Self::new(input, Arc::clone(&self.sink))))
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let data = self.input.execute(partition, Arc::clone(&context))?;
        let sink = Arc::clone(&self.sink);
        Ok(count_stream(
            async move { sink.write_all(data, &context).await },
        ))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.sink.metrics()
    }
}

/// Sums the `count` rows of its single input partition into one `count` row: the total
/// of an INSERT written by [`ZerobusWriteExec`] tasks.
#[derive(Debug, Clone)]
pub struct ZerobusCountSumExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ZerobusCountSumExec {
    /// Sums the counts of `input` (one partition: coalesce it first).
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        Self {
            input,
            properties: properties(1),
        }
    }

    /// The input plan.
    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }
}

impl DisplayAs for ZerobusCountSumExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match t {
            DisplayFormatType::TreeRender => Ok(()),
            _ => write!(f, "ZerobusCountSumExec"),
        }
    }
}

impl ExecutionPlan for ZerobusCountSumExec {
    fn name(&self) -> &'static str {
        "ZerobusCountSumExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(one_child(self.name(), children)?)))
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "ZerobusCountSumExec has one partition, asked for {partition}"
            )));
        }
        let counts = self.input.execute(0, context)?;
        Ok(count_stream(async move {
            counts
                .try_fold(0u64, |total, batch| async move {
                    let column = batch
                        .columns()
                        .first()
                        .and_then(|c| c.as_primitive_opt::<UInt64Type>());
                    let column = column.ok_or_else(|| {
                        DataFusionError::Internal(
                            "ZerobusCountSumExec: its input is not a UInt64 count".into(),
                        )
                    })?;
                    Ok(total + column.iter().flatten().sum::<u64>())
                })
                .await
        }))
    }
}

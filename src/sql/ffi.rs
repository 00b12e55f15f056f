//! The Zerobus table and its factory for another library through DataFusion's FFI
//! (`datafusion-ffi`, the C ABI of one DataFusion major version): what datafusion-python
//! loads from `__datafusion_table_provider__` / `__datafusion_table_provider_factory__`.
//!
//! Across the FFI the other side (its own copy of DataFusion and tokio) drives our futures
//! on its threads, where our tokio has no runtime. So the provider and the plans it makes
//! carry a handle of a runtime of ours (the FFI enters it while it executes them), and the
//! factory runs its work (a Unity Catalog schema look-up) on that runtime. Without one, the
//! first timer or socket would panic, and a panic across the FFI aborts the process.
//!
//! DataFusion's FFI does not carry a plan's input requirements either: the other side's
//! optimizer does not know that `DataSinkExec` reads one input partition, and may
//! repartition its input (which would leave rows of the other partitions unread). The
//! exported table's INSERT plan merges its input into one partition whenever it is given
//! a new one ([`MergedInputSink`]), and merges it on the thread that runs the INSERT
//! ([`MergePartitions`]), not on tasks of our runtime: the other side's plans (a
//! `RepartitionExec`) need their own runtime, which only their threads have (plans that
//! their optimizer hands across the FFI carry none).
//!
//! The logical extension codec and the task contexts are this library's own (those of one
//! session kept for the whole process): the Zerobus table takes no filters and no extension
//! nodes, so nothing of the caller's session is needed to decode what crosses the boundary.

use std::fmt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext, TaskContextProvider};
use datafusion::logical_expr::CreateExternalTable;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::Partitioning;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    InputDistributionRequirements, PlanProperties, ReplaceChildrenOptions,
};
use datafusion::prelude::SessionContext;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::table_provider_factory::FFI_TableProviderFactory;
use tokio::runtime::Handle;

use super::factory::ZerobusTableProviderFactory;
use super::provider::{InsertPlan, ZerobusTableProvider};
use super::sink::ZerobusDataSink;

/// The major DataFusion version whose FFI this module speaks: the other library must be
/// of the same one (datafusion-python 55 for DataFusion 55).
pub fn major_version() -> u64 {
    datafusion_ffi::version()
}

/// `provider` as an [`FFI_TableProvider`] whose work runs on `runtime`.
///
/// ```
/// use std::sync::Arc;
/// use arrow::datatypes::{DataType, Field, Schema};
/// use arrow_zerobus_sdk_wrapper::sql::{ffi, ZerobusTableProvider};
/// use arrow_zerobus_sdk_wrapper::WrapperConfiguration;
///
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
/// let config = WrapperConfiguration::new("http://127.0.0.1:50051", "main.default.events");
/// let provider = Arc::new(ZerobusTableProvider::new(schema, config));
/// let exported = ffi::table_provider(provider, runtime.handle().clone());
/// # drop(exported);
/// ```
pub fn table_provider(provider: Arc<ZerobusTableProvider>, runtime: Handle) -> FFI_TableProvider {
    let exported = exported(provider.as_ref().clone());
    FFI_TableProvider::new(exported, false, Some(runtime), task_contexts(), None)
}

/// `factory` (`STORED AS ZEROBUS`) as an [`FFI_TableProviderFactory`] whose work, and that
/// of the tables it creates, runs on `runtime`.
pub fn table_provider_factory(
    factory: ZerobusTableProviderFactory,
    runtime: Handle,
) -> FFI_TableProviderFactory {
    let on_runtime = Arc::new(ExportedFactory {
        factory,
        runtime: runtime.clone(),
    });
    FFI_TableProviderFactory::new(on_runtime, Some(runtime), task_contexts(), None)
}

/// The factory, creating its tables on `runtime` (the other library awaits `create` on
/// its own threads, where a Unity Catalog request would find no runtime of ours), their
/// INSERTs planned with [`MergedInput`].
struct ExportedFactory {
    factory: ZerobusTableProviderFactory,
    runtime: Handle,
}

impl fmt::Debug for ExportedFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedFactory")
            .field("factory", &self.factory)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProviderFactory for ExportedFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let factory = self.factory.clone();
        let cmd = cmd.clone();
        let created = self
            .runtime
            .spawn(async move { factory.create_provider(&cmd).await })
            .await
            .map_err(|e| {
                DataFusionError::Execution(format!(
                    "creating the Zerobus table ended abnormally: {e}"
                ))
            })??;
        Ok(exported(created))
    }
}

/// The exported table's INSERT plan: a `DataSinkExec` in a [`MergedInputSink`].
#[derive(Debug)]
struct MergedInput;

impl InsertPlan for MergedInput {
    fn plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        sink: ZerobusDataSink,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        MergedInputSink::wrap(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// `table` planning its INSERTs with [`MergedInput`].
fn exported(table: ZerobusTableProvider) -> Arc<ZerobusTableProvider> {
    Arc::new(table.with_insert_plan(Arc::new(MergedInput)))
}

/// The INSERT plan (a `DataSinkExec`, which reads partition 0 of its input), with its
/// input merged into one partition now and whenever its input is replaced: what
/// DataFusion's optimizer does for a `DataSinkExec` it can see, and cannot do across the
/// FFI. Shown and run as the plan it wraps.
#[derive(Debug)]
struct MergedInputSink {
    sink: Arc<dyn ExecutionPlan>,
}

impl MergedInputSink {
    fn wrap(sink: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        let children: Vec<_> = sink.children().into_iter().cloned().collect();
        let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        Self::replace(sink, children, options)
    }

    fn replace(
        sink: Arc<dyn ExecutionPlan>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let merged = children
            .into_iter()
            .map(|child| {
                if child.output_partitioning().partition_count() > 1 {
                    Arc::new(MergePartitions::new(child)) as Arc<dyn ExecutionPlan>
                } else {
                    child
                }
            })
            .collect();
        let sink = sink.replace_children(merged, options)?;
        Ok(Arc::new(Self { sink }))
    }
}

impl DisplayAs for MergedInputSink {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.sink.fmt_as(t, f)
    }
}

impl ExecutionPlan for MergedInputSink {
    fn name(&self) -> &str {
        self.sink.name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.sink.properties()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.sink.input_distribution_requirements()
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        self.sink.benefits_from_input_partitioning()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.sink.maintains_input_order()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.sink.children()
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Self::replace(Arc::clone(&self.sink), children, options)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        Self::replace(Arc::clone(&self.sink), children, options)
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.sink.apply_expressions(f)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.sink.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.sink.metrics()
    }
}

/// Task contexts for decoding what crosses the FFI (a `CREATE EXTERNAL TABLE`): those of
/// one session of this library, kept for the whole process (the FFI holds it weakly).
fn task_contexts() -> FFI_TaskContextProvider {
    static SESSION: OnceLock<Arc<SessionContext>> = OnceLock::new();
    let session: Arc<dyn TaskContextProvider> =
        Arc::clone(SESSION.get_or_init(|| Arc::new(SessionContext::new()))) as _;
    FFI_TaskContextProvider::from(&session)
}

/// Every partition of `input` as one, merged as they come, polled by whoever polls the
/// result (unlike `CoalescePartitionsExec`, which reads each partition on a task of the
/// current runtime).
#[derive(Debug)]
struct MergePartitions {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl MergePartitions {
    fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(1),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        Self {
            input,
            properties: Arc::new(properties),
        }
    }
}

impl MergePartitions {
    fn with_input(mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(Self::new(input))),
            _ => Err(DataFusionError::Internal(
                "MergePartitionsExec takes one input".into(),
            )),
        }
    }
}

impl DisplayAs for MergePartitions {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let partitions = self.input.output_partitioning().partition_count();
        match t {
            DisplayFormatType::TreeRender => write!(f, "partitions={partitions}"),
            _ => write!(f, "MergePartitionsExec: partitions={partitions}"),
        }
    }
}

impl ExecutionPlan for MergePartitions {
    fn name(&self) -> &str {
        "MergePartitionsExec"
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

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Self::with_input(children)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Self::with_input(children)
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
                "MergePartitionsExec has one partition, asked for partition {partition}"
            )));
        }
        let streams = (0..self.input.output_partitioning().partition_count())
            .map(|p| self.input.execute(p, Arc::clone(&context)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.input.schema(),
            futures::stream::select_all(streams),
        )))
    }
}

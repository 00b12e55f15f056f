//! The Arrow Flight ingest path: `arrow.flight.protocol.FlightService/DoPut`, served on the
//! same port as the Zerobus service, as the SDK's Arrow stream expects.
//!
//! One DoPut call is one stream: the table comes from the `x-databricks-zerobus-table-name`
//! header, the first FlightData is the Arrow schema (checked against an existing table,
//! else it creates the table), then record batches tagged `{"offset_id":N}` follow. The
//! server answers with a ready signal and then, once each batch is durable and in order,
//! `{"ack_up_to_offset":N,"ack_up_to_records":R}` (R: rows durable on this call).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{new_null_array, RecordBatch, RecordBatchOptions};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_types::{ErrorDetails, StatusExt};

use super::acks::{AckTask, Pending};
use super::catalog::Table;
use super::faults::{Faults, RecordFault};
use super::Shared;

/// The header that names the stream's table (always sent by the SDK, also with `no_auth`).
const TABLE_HEADER: &str = "x-databricks-zerobus-table-name";

/// Capacity of the per-call response channel (acks waiting for the client to read them).
const RESPONSE_BUFFER: usize = 1024;

/// How long a client may take to finish after a close signal.
const CLOSE_GRACE: Duration = Duration::from_secs(30);

/// The `ErrorInfo` the client maps to `ZerobusError::InvalidSchema`.
const SCHEMA_REASON: &str = "SCHEMA_VALIDATION_FAILED";
const SCHEMA_DOMAIN: &str = "zerobus.databricks.com";
const SCHEMA_ERROR_CODE: &str = "8001";

/// The Flight service: `DoPut` only.
pub(crate) struct Service {
    pub(crate) shared: Arc<Shared>,
}

type ResponseSender = mpsc::Sender<Result<PutResult, Status>>;
type Unsupported<T> = BoxStream<'static, Result<T, Status>>;

fn unsupported(method: &str) -> Status {
    Status::unimplemented(format!(
        "Flight {method} is not implemented by the local Zerobus server (DoPut only)"
    ))
}

#[tonic::async_trait]
impl FlightService for Service {
    type DoPutStream = ReceiverStream<Result<PutResult, Status>>;

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        // The client waits for the response headers before it sends anything: answer at
        // once and read the request in a task.
        let metadata = request.metadata().clone();
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let result = match open(&shared, &metadata, inbound, &tx).await {
                Ok(Some(stream)) => stream.run(&tx).await,
                Ok(None) => Ok(()),
                Err(status) => Err(status),
            };
            if let Err(status) = result {
                tracing::debug!(%status, "local Zerobus: Flight stream failed");
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type HandshakeStream = Unsupported<HandshakeResponse>;
    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(unsupported("Handshake"))
    }

    type ListFlightsStream = Unsupported<FlightInfo>;
    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(unsupported("ListFlights"))
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(unsupported("GetFlightInfo"))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(unsupported("PollFlightInfo"))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(unsupported("GetSchema"))
    }

    type DoGetStream = Unsupported<FlightData>;
    async fn do_get(
        &self,
        _request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        Err(unsupported("DoGet"))
    }

    type DoExchangeStream = Unsupported<FlightData>;
    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(unsupported("DoExchange"))
    }

    type DoActionStream = Unsupported<arrow_flight::Result>;
    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        Err(unsupported("DoAction"))
    }

    type ListActionsStream = Unsupported<ActionType>;
    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Err(unsupported("ListActions"))
    }
}

/// `FlightData.app_metadata` of a record batch.
#[derive(Deserialize)]
struct BatchMetadata {
    offset_id: i64,
}

/// `PutResult.app_metadata`: the ready signal, an ack, or a close signal.
#[derive(Serialize)]
struct AckMetadata {
    ack_up_to_offset: i64,
    ack_up_to_records: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_stream_duration_ms: Option<u64>,
}

impl AckMetadata {
    fn ready() -> Self {
        Self {
            ack_up_to_offset: -1,
            ack_up_to_records: 0,
            close_stream_duration_ms: None,
        }
    }

    /// Asks the client to rotate; carries no ack (`ack_up_to_records` 0 is not applied).
    fn close() -> Self {
        Self {
            close_stream_duration_ms: Some(CLOSE_GRACE.as_millis() as u64),
            ..Self::ready()
        }
    }

    fn into_put_result(self) -> PutResult {
        let json = serde_json::to_vec(&self).expect("plain numbers serialize");
        PutResult {
            app_metadata: json.into(),
        }
    }
}

/// Sends one PutResult; `false` if the client is gone.
async fn send(tx: &ResponseSender, metadata: AckMetadata) -> bool {
    tx.send(Ok(metadata.into_put_result())).await.is_ok()
}

/// A DoPut call past its schema message and ready signal.
struct OpenStream {
    shared: Arc<Shared>,
    decoder: FlightDataDecoder,
    table: Arc<Table>,
    faults: Arc<Faults>,
}

/// Checks the call (table, auth, faults, schema) and sends the ready signal.
/// `Ok(None)`: the client left first.
async fn open(
    shared: &Arc<Shared>,
    metadata: &MetadataMap,
    inbound: Streaming<FlightData>,
    tx: &ResponseSender,
) -> Result<Option<OpenStream>, Status> {
    let table_name = metadata
        .get(TABLE_HEADER)
        .ok_or_else(|| Status::invalid_argument(format!("missing header {TABLE_HEADER}")))?
        .to_str()
        .map_err(|_| Status::invalid_argument(format!("header {TABLE_HEADER} is not ASCII")))?
        .to_string();
    super::catalog::validate_table_name(&table_name)?;
    shared.auth.check(metadata, &table_name)?;
    let faults = shared.catalog.faults(&table_name);
    faults.on_create()?;
    let mut decoder = FlightDataDecoder::new(inbound.map_err(FlightError::from));
    let schema = match decoder.next().await {
        None => return Ok(None),
        Some(Err(e)) => return Err(flight_status(e)),
        Some(Ok(data)) => match data.payload {
            DecodedPayload::Schema(schema) => schema,
            _ => {
                return Err(Status::invalid_argument(
                    "the first FlightData of a DoPut must be the Arrow schema",
                ))
            }
        },
    };
    let table = shared
        .catalog
        .open_for_stream(&table_name, || Ok(canonical_schema(&schema)))?;
    check_schema(&schema, table.schema())?;
    tracing::debug!(table = %table_name, "local Zerobus: Flight stream ready");
    if !send(tx, AckMetadata::ready()).await {
        return Ok(None);
    }
    Ok(Some(OpenStream {
        shared: Arc::clone(shared),
        decoder,
        table,
        faults,
    }))
}

impl OpenStream {
    /// Stores and acknowledges batches until the client half-closes.
    async fn run(mut self, tx: &ResponseSender) -> Result<(), Status> {
        let acks = spawn_acks(Arc::clone(&self.faults), tx.clone());
        let result = self.receive(tx, &acks).await;
        // Half-close: every outstanding ack goes out before the response ends with OK.
        acks.finish(result.is_ok()).await;
        result
    }

    async fn receive(&mut self, tx: &ResponseSender, acks: &AckTask) -> Result<(), Status> {
        let mut expected_offset: i64 = 0;
        let lifetime = tokio::time::sleep(self.shared.stream_lifetime);
        tokio::pin!(lifetime);
        let mut lifetime_signalled = false;
        loop {
            let data = tokio::select! {
                data = self.decoder.next() => data,
                () = &mut lifetime, if !lifetime_signalled => {
                    lifetime_signalled = true;
                    if !send(tx, AckMetadata::close()).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            // `None`: the client half-closed (close() or before a reconnect).
            let Some(data) = data else {
                return Ok(());
            };
            let data = data.map_err(flight_status)?;
            let batch = match data.payload {
                DecodedPayload::RecordBatch(batch) => batch,
                DecodedPayload::None => continue,
                DecodedPayload::Schema(_) => {
                    return Err(Status::invalid_argument("schema sent twice on one DoPut"))
                }
            };
            let offset_id = serde_json::from_slice::<BatchMetadata>(&data.inner.app_metadata)
                .map_err(|e| {
                    Status::invalid_argument(format!(
                        "record batch app_metadata is not {{\"offset_id\":N}}: {e}"
                    ))
                })?
                .offset_id;
            if offset_id != expected_offset {
                return Err(Status::invalid_argument(format!(
                    "offset_id {offset_id} out of order: expected {expected_offset}"
                )));
            }
            expected_offset += 1;
            let rows = batch.num_rows() as u64;
            let batch = conform(&batch, self.table.schema())?;
            self.table.count_duplicates_in(&batch);
            acks.push(Pending {
                offset_id,
                rows,
                table: Arc::clone(&self.table),
                commit: self.table.submit(batch),
            });
            match self.faults.after_records(rows) {
                RecordFault::None => {}
                RecordFault::Fail(status) => return Err(status),
                RecordFault::Close => {
                    if !send(tx, AckMetadata::close()).await {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The call's ack task: `{"ack_up_to_offset":N,"ack_up_to_records":R}` per durable batch.
fn spawn_acks(faults: Arc<Faults>, tx: ResponseSender) -> AckTask {
    AckTask::spawn(faults, move |outcome| {
        let tx = tx.clone();
        async move {
            let response = outcome.map(|acked| {
                AckMetadata {
                    ack_up_to_offset: acked.offset_id,
                    ack_up_to_records: acked.records,
                    close_stream_duration_ms: None,
                }
                .into_put_result()
            });
            tx.send(response).await.is_ok()
        }
    })
}

/// A decoding failure as the client should see it: bad IPC data is the client's fault
/// (terminal), a transport status passes through.
fn flight_status(error: FlightError) -> Status {
    match error {
        FlightError::Tonic(status) => *status,
        other => Status::invalid_argument(format!("bad Arrow Flight data: {other}")),
    }
}

/// The schema of a table created by a Flight stream: the stream's schema with the SDK's
/// Arrow types replaced by the table's canonical ones.
///
/// Temporary: to be replaced by the shared canonical mapping (`canonical.rs`).
fn canonical_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(canonical_field)
            .collect::<Vec<_>>(),
    ))
}

fn canonical_field(field: &FieldRef) -> Field {
    Field::new(
        field.name(),
        canonical_type(field.data_type()),
        field.is_nullable(),
    )
}

fn canonical_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::List(item) | DataType::LargeList(item) => DataType::List(Arc::new(Field::new(
            "element",
            canonical_type(item.data_type()),
            item.is_nullable(),
        ))),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(canonical_field)
                .collect::<Vec<_>>()
                .into(),
        ),
        DataType::Map(entries, sorted) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                let key = Field::new("key", canonical_type(kv[0].data_type()), false);
                let value = Field::new(
                    "value",
                    canonical_type(kv[1].data_type()),
                    kv[1].is_nullable(),
                );
                let entries = DataType::Struct(vec![key, value].into());
                DataType::Map(Arc::new(Field::new("key_value", entries, false)), *sorted)
            }
            _ => data_type.clone(),
        },
        other => other.clone(),
    }
}

/// Whether a stream column of type `from` can land in a table column of type `to`: the
/// same type up to the SDK's wire choices (large strings and binaries, list and map
/// field names) and decimals sent as strings.
fn compatible(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    match (from, to) {
        (T::Utf8 | T::LargeUtf8 | T::Utf8View, T::Utf8 | T::Decimal128(..)) => true,
        (T::Binary | T::LargeBinary | T::BinaryView, T::Binary) => true,
        (T::List(a) | T::LargeList(a), T::List(b)) => compatible(a.data_type(), b.data_type()),
        (T::Map(a, _), T::Map(b, _)) => match (a.data_type(), b.data_type()) {
            (T::Struct(a), T::Struct(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|(x, y)| compatible(x.data_type(), y.data_type()))
            }
            _ => false,
        },
        (T::Struct(a), T::Struct(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b.iter())
                    .all(|(x, y)| x.name() == y.name() && compatible(x.data_type(), y.data_type()))
        }
        _ => from == to,
    }
}

/// Checks a stream's schema against its table as the service does; the failure carries
/// the `ErrorInfo` the client turns into `ZerobusError::InvalidSchema`.
fn check_schema(stream: &Schema, table: &Schema) -> Result<(), Status> {
    let mut problems: Vec<(&str, String)> = Vec::new();
    let mut last_position = None;
    for field in stream.fields() {
        let name = field.name();
        let Ok(position) = table.index_of(name) else {
            problems.push((
                "FIELD_NOT_IN_TABLE",
                format!("column {name} is not in the table"),
            ));
            continue;
        };
        let column = table.field(position);
        if !compatible(field.data_type(), column.data_type()) {
            problems.push((
                "TYPE_INCOMPATIBLE",
                format!(
                    "column {name}: the stream sends {} but the table has {}",
                    field.data_type(),
                    column.data_type()
                ),
            ));
        }
        if last_position.is_some_and(|last| position < last) {
            problems.push((
                "FIELD_OUT_OF_ORDER",
                format!("column {name} comes before a column that precedes it in the table"),
            ));
        }
        last_position = last_position.max(Some(position));
    }
    for column in table.fields() {
        if !column.is_nullable() && stream.field_with_name(column.name()).is_err() {
            problems.push((
                "MISSING_REQUIRED_COLUMN",
                format!("required column {} is missing", column.name()),
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut causes: Vec<&str> = Vec::new();
    for (cause, _) in &problems {
        if !causes.contains(cause) {
            causes.push(cause);
        }
    }
    let message = problems
        .iter()
        .map(|(_, text)| text.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let details = ErrorDetails::with_error_info(
        SCHEMA_REASON,
        SCHEMA_DOMAIN,
        HashMap::from([
            ("causes".to_string(), causes.join(",")),
            ("error_code".to_string(), SCHEMA_ERROR_CODE.to_string()),
        ]),
    );
    Err(Status::with_error_details(
        Code::InvalidArgument,
        format!("the Arrow schema does not match the table: {message}"),
        details,
    ))
}

/// Casts a batch of the stream's schema to the table's: columns by name, columns the
/// stream does not send (nullable, [`check_schema`] made sure) as nulls.
///
/// Temporary: to be replaced by the shared `canonical::conform()`.
fn conform(batch: &RecordBatch, table: &SchemaRef) -> Result<RecordBatch, Status> {
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let columns = table
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => cast_with_options(column, field.data_type(), &options)
                .map_err(|e| Status::invalid_argument(format!("column {}: {e}", field.name()))),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(table), columns, &options)
        .map_err(|e| Status::invalid_argument(format!("batch does not fit the table: {e}")))
}

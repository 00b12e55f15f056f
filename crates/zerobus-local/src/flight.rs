//! The Arrow Flight ingest path: `arrow.flight.protocol.FlightService/DoPut`, served on the
//! same port as the Zerobus service, as the SDK's Arrow stream expects.
//!
//! One DoPut call is one stream: the table comes from the `x-databricks-zerobus-table-name`
//! header, the first FlightData is the Arrow schema (checked against an existing table,
//! else it creates the table), then record batches tagged `{"offset_id":N}` follow. The
//! server answers with a ready signal and then, once each batch is durable and in order,
//! `{"ack_up_to_offset":N,"ack_up_to_records":R}` (R: rows durable on this call).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::decode::{DecodedFlightData, DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::acks::Acked;
use crate::canonical::conform;
use crate::catalog::Table;
use crate::faults::Faults;
use crate::flight_check::{checked, FlightCheck};
use crate::flight_schema::check_schema;
use crate::inbound::{self, Protocol, Stored};
use crate::names::validate_table_name;
use crate::respond::{self, respond_in_task};
use crate::Shared;

/// The header that names the stream's table (always sent by the SDK, also with `no_auth`).
const TABLE_HEADER: &str = "x-databricks-zerobus-table-name";

/// The Flight service: `DoPut` only.
pub(crate) struct Service {
    pub(crate) shared: Arc<Shared>,
    /// The server's limit on one inbound message, from which [`FlightCheck`] derives its
    /// limits on what a message may declare.
    pub(crate) max_decoding_message_size: usize,
}

type ResponseSender = respond::ResponseSender<PutResult>;
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
        let shared = Arc::clone(&self.shared);
        let check = FlightCheck::new(self.max_decoding_message_size);
        Ok(Response::new(respond_in_task(
            "Flight stream",
            |tx| async move {
                match open(&shared, &metadata, checked(inbound, check), &tx).await? {
                    Some((stream, table, token_expires_at)) => {
                        let session = inbound::Session {
                            protocol: "Flight",
                            table,
                            token_expires_at,
                            faults: Arc::clone(&stream.faults),
                        };
                        inbound::serve(stream, session, &shared, &tx).await
                    }
                    None => Ok(()),
                }
            },
        )))
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

/// The IPC body compression a record batch's message header declares (`None`: none, or
/// a header that is not a record batch's).
fn body_compression(data_header: &[u8]) -> Option<arrow::ipc::CompressionType> {
    arrow::ipc::root_as_message(data_header)
        .ok()?
        .header_as_record_batch()?
        .compression()
        .map(|compression| compression.codec())
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

    /// Asks the client to rotate within `grace`; carries no ack (`ack_up_to_records` 0 is
    /// not applied).
    fn close(grace: Duration) -> Self {
        Self {
            close_stream_duration_ms: Some(grace.as_millis() as u64),
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
    decoder: FlightDataDecoder,
    table: Arc<Table>,
    faults: Arc<Faults>,
}

/// Checks the call (table, auth, faults, schema) and sends the ready signal; returns the
/// stream, its table's name and when its access token expires. `Ok(None)`: the client
/// left first.
async fn open(
    shared: &Arc<Shared>,
    metadata: &MetadataMap,
    inbound: impl Stream<Item = Result<FlightData, FlightError>> + Send + 'static,
    tx: &ResponseSender,
) -> Result<Option<(OpenStream, String, Option<Instant>)>, Status> {
    let table_name = metadata
        .get(TABLE_HEADER)
        .ok_or_else(|| Status::invalid_argument(format!("missing header {TABLE_HEADER}")))?
        .to_str()
        .map_err(|_| Status::invalid_argument(format!("header {TABLE_HEADER} is not ASCII")))?
        .to_string();
    validate_table_name(&table_name)?;
    let token_expires_at = shared.auth.check(metadata, &table_name)?;
    let faults = shared.catalog.faults(&table_name);
    faults.on_create()?;
    let mut decoder = FlightDataDecoder::new(inbound);
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
        .open_for_stream(&table_name, || Ok(Arc::clone(&schema)))?;
    check_schema(&schema, table.schema())?;
    tracing::debug!(table = %table_name, "local Zerobus: Flight stream ready");
    if !send(tx, AckMetadata::ready()).await {
        return Ok(None);
    }
    let stream = OpenStream {
        decoder,
        table,
        faults,
    };
    Ok(Some((stream, table_name, token_expires_at)))
}

impl Protocol for OpenStream {
    type Message = DecodedFlightData;
    type Response = PutResult;

    async fn next(&mut self) -> Option<Result<DecodedFlightData, Status>> {
        self.decoder
            .next()
            .await
            .map(|data| data.map_err(flight_status))
    }

    fn offset(&self, data: &DecodedFlightData) -> Result<Option<i64>, Status> {
        match data.payload {
            DecodedPayload::RecordBatch(_) => {}
            DecodedPayload::None => return Ok(None),
            DecodedPayload::Schema(_) => {
                return Err(Status::invalid_argument("schema sent twice on one DoPut"))
            }
        }
        let metadata =
            serde_json::from_slice::<BatchMetadata>(&data.inner.app_metadata).map_err(|e| {
                Status::invalid_argument(format!(
                    "record batch app_metadata is not {{\"offset_id\":N}}: {e}"
                ))
            })?;
        Ok(Some(metadata.offset_id))
    }

    /// Casts one record batch (its offset already checked) to the table's types and hands
    /// it to the landing.
    fn store(&mut self, data: DecodedFlightData) -> Result<Stored, Status> {
        let DecodedPayload::RecordBatch(batch) = data.payload else {
            unreachable!("offset() accepts record batches only")
        };
        self.table
            .count_flight_compression(body_compression(&data.inner.data_header));
        let rows = batch.num_rows() as u64;
        let batch = conform(&batch, self.table.schema())?;
        self.faults.check_batch(&batch)?;
        self.table.count_duplicates_in(&batch);
        Ok(Stored {
            rows,
            table: Arc::clone(&self.table),
            commit: self.table.submit(batch),
        })
    }

    fn close_signal(grace: Duration) -> PutResult {
        AckMetadata::close(grace).into_put_result()
    }

    /// `{"ack_up_to_offset":N,"ack_up_to_records":R}`.
    fn ack(acked: Acked) -> PutResult {
        AckMetadata {
            ack_up_to_offset: acked.offset_id,
            ack_up_to_records: acked.records,
            close_stream_duration_ms: None,
        }
        .into_put_result()
    }
}

/// A decoding failure as the client should see it: bad IPC data is the client's fault
/// (terminal), a transport status passes through.
fn flight_status(error: FlightError) -> Status {
    match error {
        FlightError::Tonic(status) => *status,
        other => Status::invalid_argument(format!("bad Arrow Flight data: {other}")),
    }
}

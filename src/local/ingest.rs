//! The `databricks.zerobus.Zerobus` service's wire side: requests decoded without a copy
//! of each record.
//!
//! The generated `ZerobusServer` decodes every `EphemeralStreamRequest` with prost into
//! one fresh `Vec<u8>` per record (an allocation, a copy and a free per record: 13 % of
//! the CPU of a 10 MB ingest in the e2e bench). Here the request is decoded into the same
//! messages with `bytes::Bytes` fields instead, so each record is a slice of the buffer
//! the request arrived in ([`IngestCodec`]), and [`ZerobusService`] routes the service's
//! methods as the generated server does: `EphemeralStream` through that codec, the others
//! answered `UNIMPLEMENTED`.

use std::convert::Infallible;
use std::sync::Arc;

use databricks_zerobus_ingest_sdk::databricks::zerobus::{self as pb, zerobus_server};
use prost::bytes::{Buf, Bytes};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Status, Streaming};

use super::grpc;

/// An `EphemeralStreamRequest` (the same fields and numbers) whose records are slices of
/// the received message.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct EphemeralStreamRequest {
    /// The request's one payload.
    #[prost(oneof = "Payload", tags = "1, 2, 3")]
    pub(crate) payload: Option<Payload>,
}

/// `EphemeralStreamRequest.payload`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum Payload {
    /// The first message of a stream.
    #[prost(message, tag = "1")]
    CreateStream(pb::CreateIngestStreamRequest),
    /// One record.
    #[prost(message, tag = "2")]
    IngestRecord(IngestRecordRequest),
    /// Several records under one offset.
    #[prost(message, tag = "3")]
    IngestRecordBatch(IngestRecordBatchRequest),
}

/// `IngestRecordRequest`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct IngestRecordRequest {
    /// The request's offset in the stream.
    #[prost(int64, optional, tag = "1")]
    pub(crate) offset_id: Option<i64>,
    /// The record.
    #[prost(oneof = "Record", tags = "2, 3, 4")]
    pub(crate) record: Option<Record>,
}

/// `IngestRecordRequest.record`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum Record {
    /// A protobuf record.
    #[prost(bytes = "bytes", tag = "2")]
    Proto(Bytes),
    /// A JSON record.
    #[prost(string, tag = "3")]
    Json(String),
    /// An Avro record (refused by this server).
    #[prost(bytes = "bytes", tag = "4")]
    Avro(Bytes),
}

/// `IngestRecordBatchRequest`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct IngestRecordBatchRequest {
    /// The request's offset in the stream.
    #[prost(int64, optional, tag = "1")]
    pub(crate) offset_id: Option<i64>,
    /// The records.
    #[prost(oneof = "Batch", tags = "2, 3, 4")]
    pub(crate) batch: Option<Batch>,
}

/// `IngestRecordBatchRequest.batch`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum Batch {
    /// Protobuf records.
    #[prost(message, tag = "2")]
    Proto(EncodedBatch),
    /// JSON records.
    #[prost(message, tag = "3")]
    Json(pb::JsonRecordBatch),
    /// Avro records (refused by this server).
    #[prost(message, tag = "4")]
    Avro(EncodedBatch),
}

/// `ProtoEncodedRecordBatch` / `AvroRecordBatch`: each record a slice of the message.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct EncodedBatch {
    /// The records.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub(crate) records: Vec<Bytes>,
}

/// Requests decoded into [`EphemeralStreamRequest`] (records sliced out of the received
/// buffer, not copied); responses encoded as the generated code does.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IngestCodec;

impl Codec for IngestCodec {
    type Encode = pb::EphemeralStreamResponse;
    type Decode = EphemeralStreamRequest;
    type Encoder = IngestCodec;
    type Decoder = IngestCodec;

    fn encoder(&mut self) -> Self::Encoder {
        IngestCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        IngestCodec
    }
}

impl Encoder for IngestCodec {
    type Item = pb::EphemeralStreamResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // EncodeBuf grows as needed, so encoding cannot run out of space.
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding a response: {e}")))
    }
}

impl Decoder for IngestCodec {
    type Item = EphemeralStreamRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        // One `Bytes` of the whole message (split off tonic's buffer, no copy); prost then
        // slices each `bytes` field out of it.
        let message = src.copy_to_bytes(src.remaining());
        EphemeralStreamRequest::decode(message)
            .map(Some)
            // As tonic's prost codec maps a malformed message.
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// The `databricks.zerobus.Zerobus` gRPC service, routed as the generated
/// `ZerobusServer` routes it, with `EphemeralStream` decoded by [`IngestCodec`].
#[derive(Clone)]
pub(crate) struct ZerobusService {
    service: Arc<grpc::Service>,
    max_decoding_message_size: usize,
}

impl ZerobusService {
    /// Serves `service`, refusing inbound messages over `max_decoding_message_size` bytes.
    pub(crate) fn new(service: grpc::Service, max_decoding_message_size: usize) -> Self {
        Self {
            service: Arc::new(service),
            max_decoding_message_size,
        }
    }
}

impl NamedService for ZerobusService {
    const NAME: &'static str = zerobus_server::SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for ZerobusService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let unimplemented = |message: &str| {
            let response = Status::unimplemented(message).into_http();
            Box::pin(async move { Ok(response) }) as Self::Future
        };
        match request.uri().path() {
            "/databricks.zerobus.Zerobus/EphemeralStream" => {
                let method = EphemeralStream(Arc::clone(&self.service));
                let max = self.max_decoding_message_size;
                Box::pin(async move {
                    let mut grpc =
                        Grpc::new(IngestCodec).apply_max_message_size_config(Some(max), None);
                    Ok(grpc.streaming(method, request).await)
                })
            }
            "/databricks.zerobus.Zerobus/PersistentStream" => {
                unimplemented("PersistentStream is not implemented by the local Zerobus server")
            }
            "/databricks.zerobus.Zerobus/RetireStream" => {
                unimplemented("RetireStream is not implemented by the local Zerobus server")
            }
            _ => unimplemented(""),
        }
    }
}

/// The `EphemeralStream` method.
struct EphemeralStream(Arc<grpc::Service>);

impl StreamingService<EphemeralStreamRequest> for EphemeralStream {
    type Response = pb::EphemeralStreamResponse;
    type ResponseStream = grpc::EphemeralStreamStream;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: tonic::Request<Streaming<EphemeralStreamRequest>>) -> Self::Future {
        let service = Arc::clone(&self.0);
        Box::pin(async move { Ok(service.ephemeral_stream(request)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sliced request decodes what the SDK's own message type encodes, record by
    /// record, and the records share the message's buffer.
    #[test]
    fn decodes_the_sdk_request_without_copying_records() {
        let records: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; usize::from(i)]).collect();
        let sent = pb::EphemeralStreamRequest {
            payload: Some(pb::ephemeral_stream_request::Payload::IngestRecordBatch(
                pb::IngestRecordBatchRequest {
                    offset_id: Some(7),
                    batch: Some(pb::ingest_record_batch_request::Batch::ProtoEncodedBatch(
                        pb::ProtoEncodedRecordBatch {
                            records: records.clone(),
                        },
                    )),
                },
            )),
        };
        let message = Bytes::from(sent.encode_to_vec());
        let range = message.as_ptr_range();
        let decoded = EphemeralStreamRequest::decode(message.clone()).unwrap();
        let Some(Payload::IngestRecordBatch(IngestRecordBatchRequest {
            offset_id: Some(7),
            batch: Some(Batch::Proto(batch)),
        })) = decoded.payload
        else {
            panic!("not an ingest_record_batch with offset 7: {decoded:?}");
        };
        assert_eq!(batch.records, records);
        for record in batch.records.iter().filter(|r| !r.is_empty()) {
            assert!(range.contains(&record.as_ptr()), "a record was copied");
        }
    }
}

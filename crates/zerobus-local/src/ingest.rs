//! The `databricks.zerobus.Zerobus` service's wire side: requests decoded without a copy
//! of each record.
//!
//! The generated `ZerobusServer` decodes every `EphemeralStreamRequest` with prost into
//! one fresh `Vec<u8>` per record (an allocation, a copy and a free per record: 13 % of
//! the CPU of a 10 MB ingest in the e2e bench). Here the request is decoded into the same
//! messages with `bytes::Bytes` fields instead, so each record is a slice of the buffer
//! the request arrived in ([`IngestCodec`]); the gRPC service (`crate::grpc`) routes
//! `EphemeralStream` through that codec.

use std::ops::Range;

use databricks_zerobus_ingest_sdk::databricks::zerobus as pb;
use prost::bytes::{Buf, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

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
    /// Protobuf records: the encoded `ProtoEncodedRecordBatch`, read by [`RecordSpans`].
    #[prost(bytes = "bytes", tag = "2")]
    Proto(Bytes),
    /// JSON records.
    #[prost(message, tag = "3")]
    Json(pb::JsonRecordBatch),
    /// Avro records (refused by this server), still encoded.
    #[prost(bytes = "bytes", tag = "4")]
    Avro(Bytes),
}

/// The records of an encoded `ProtoEncodedRecordBatch` (`repeated bytes records = 1`):
/// the message and where each record lies in it.
///
/// Reading the spans is one pass over the record headers: no `Bytes` handle (reference
/// count taken and dropped) and no vector entry of 32 bytes per record, as prost's
/// `Vec<Bytes>` would need; the decoder borrows each record from the message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordSpans {
    message: Bytes,
    spans: Vec<Range<usize>>,
}

impl RecordSpans {
    /// The records of `message`, an encoded `ProtoEncodedRecordBatch`; other fields are
    /// skipped, as prost skips unknown fields. A malformed message is refused as tonic
    /// refuses one (`INTERNAL`), naming the record at fault.
    pub(crate) fn parse(message: Bytes) -> Result<Self, Status> {
        let malformed =
            |what: String| Status::internal(format!("malformed ProtoEncodedRecordBatch: {what}"));
        let mut buf: &[u8] = &message;
        let mut spans = Vec::new();
        while buf.has_remaining() {
            let record = spans.len();
            let (tag, wire_type) =
                encoding::decode_key(&mut buf).map_err(|e| malformed(e.to_string()))?;
            if tag != 1 || wire_type != WireType::LengthDelimited {
                encoding::skip_field(wire_type, tag, &mut buf, DecodeContext::default())
                    .map_err(|e| malformed(e.to_string()))?;
                continue;
            }
            let len = encoding::decode_varint(&mut buf).map_err(|e| malformed(e.to_string()))?;
            let len = usize::try_from(len)
                .ok()
                .filter(|len| *len <= buf.remaining())
                .ok_or_else(|| {
                    malformed(format!(
                        "record {record} of {len} bytes runs past the end of the message \
                         ({} bytes left)",
                        buf.remaining()
                    ))
                })?;
            let start = message.len() - buf.remaining();
            spans.push(start..start + len);
            buf.advance(len);
        }
        Ok(Self { message, spans })
    }

    /// One record on its own (an `IngestRecordRequest`).
    pub(crate) fn single(record: Bytes) -> Self {
        let spans = std::iter::once(0..record.len()).collect();
        Self {
            message: record,
            spans,
        }
    }

    /// Each record, in order, as the slice of records the decoder takes.
    pub(crate) fn slices(&self) -> Vec<&[u8]> {
        self.iter().collect()
    }

    /// Each record, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.spans.iter().map(|span| &self.message[span.clone()])
    }
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
        let batch = RecordSpans::parse(batch).expect("records");
        assert_eq!(batch.slices(), records);
        for record in batch.iter().filter(|r| !r.is_empty()) {
            assert!(range.contains(&record.as_ptr()), "a record was copied");
        }
    }

    /// Fields other than the records are skipped (as prost skips unknown fields), empty
    /// records are kept, and a record running past the message is an error, not a
    /// short record.
    #[test]
    fn record_spans_skip_other_fields_and_refuse_truncated_records() {
        // records: "ab", "", then an unknown varint field 2 = 150, then "c".
        let message = Bytes::from_static(&[
            0x0a, 2, b'a', b'b', 0x0a, 0, 0x10, 0x96, 0x01, 0x0a, 1, b'c',
        ]);
        let spans = RecordSpans::parse(message.clone()).expect("records");
        assert_eq!(spans.slices(), vec![&b"ab"[..], b"", b"c"]);

        let truncated = message.slice(..message.len() - 1);
        let error = RecordSpans::parse(truncated).expect_err("a record past the end");
        assert!(
            error
                .message()
                .contains("record 2 of 1 bytes runs past the end of the message (0 bytes left)"),
            "{error}"
        );

        let single = RecordSpans::single(Bytes::from_static(b"xyz"));
        assert_eq!(single.slices(), vec![&b"xyz"[..]]);
    }
}

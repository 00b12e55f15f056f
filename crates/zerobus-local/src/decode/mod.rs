//! Records as the client sends them (protobuf or JSON) → Arrow rows of the table.
//!
//! - [`ProtoDecoder`]: the stream's `descriptor_proto` is resolved with prost-reflect,
//!   checked against the table as the service checks it, and records are decoded straight
//!   from the protobuf wire format into Arrow builders, column by column.
//! - [`JsonDecoder`]: records are parsed by arrow-json against the table's schema.
//!
//! Errors are `INVALID_ARGUMENT` (terminal for the client) naming the record and column.

mod json;
mod proto;
mod proto_schema;
mod wire;

pub(crate) use json::JsonDecoder;
pub(crate) use proto::ProtoDecoder;

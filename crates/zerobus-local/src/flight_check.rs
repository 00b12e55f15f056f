//! Checks each inbound Arrow Flight message before arrow-ipc decodes it.
//!
//! arrow-ipc trusts what an IPC message header declares. A buffer's offset and length are
//! sliced out of the body unchecked (a slice past the body panics); a compressed buffer's
//! 8-byte uncompressed-length prefix is allocated up front (1 TiB declared in a 5 KB
//! message aborts the process); an LZ4 frame is decompressed to its end whatever its
//! prefix says; a schema with an unknown type or unit, a dictionary batch without data, a
//! struct validity buffer shorter than its rows or extra variadic buffer counts panic.
//! [`FlightCheck`] refuses such messages with `INVALID_ARGUMENT` naming what is wrong, so
//! the decoder only sees messages it handles without panicking, and without allocating
//! more than these limits (derived from the server's `max_decoding_message_size`, M):
//! - the buffers of one batch (record or dictionary) take at most
//!   [`DECOMPRESSED_LIMIT_FACTOR`] × M bytes once decompressed, and so do the
//!   dictionaries a stream holds at once;
//! - a batch, and every array in it, declares at most M rows (values).
//!
//! Everything else (buffer contents, offsets into child arrays, UTF-8) is left to the
//! decoder's own validation.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::{self, CompressionType, MessageHeader};
use arrow_flight::error::FlightError;
use arrow_flight::FlightData;
use futures::{Stream, StreamExt};
use tonic::Status;

/// The buffers of one batch may take this many times `max_decoding_message_size` bytes
/// once decompressed (128 MiB with the default 32 MiB limit).
pub(crate) const DECOMPRESSED_LIMIT_FACTOR: u64 = 4;

/// The IPC prefix of a compressed buffer that is sent uncompressed.
const UNCOMPRESSED_PREFIX: i64 = -1;

/// Checks the messages of one DoPut call, in order.
#[derive(Debug)]
pub(crate) struct FlightCheck {
    /// The most bytes a batch's buffers may take once decompressed.
    max_batch_bytes: u64,
    /// The most rows (values) a batch or any array in it may declare.
    max_rows: i64,
    /// The stream's schema, once its schema message passed.
    schema: Option<Arc<Schema>>,
    /// Decompressed bytes of each dictionary the decoder holds, by id.
    dictionaries: HashMap<i64, u64>,
}

/// `inbound` as the decoder should see it: each message checked by `check` first (a
/// refusal ends the stream with its status, which the decoder passes through).
pub(crate) fn checked<S>(
    inbound: S,
    mut check: FlightCheck,
) -> impl Stream<Item = Result<FlightData, FlightError>> + Send + 'static
where
    S: Stream<Item = Result<FlightData, Status>> + Send + 'static,
{
    inbound.map(move |data| {
        let data = data?;
        check
            .check(&data)
            .map_err(|status| FlightError::Tonic(Box::new(status)))?;
        Ok(data)
    })
}

/// A refusal, as the client sees it.
fn bad(message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("bad Arrow Flight data: {message}"))
}

impl FlightCheck {
    /// The checks for a server whose `max_decoding_message_size` is
    /// `max_decoding_message_size` bytes.
    pub(crate) fn new(max_decoding_message_size: usize) -> Self {
        let limit = max_decoding_message_size as u64;
        Self {
            max_batch_bytes: limit.saturating_mul(DECOMPRESSED_LIMIT_FACTOR),
            max_rows: i64::try_from(limit).unwrap_or(i64::MAX),
            schema: None,
            dictionaries: HashMap::new(),
        }
    }

    /// Checks the next message of the call. Messages the decoder refuses by itself
    /// (a batch before the schema, a header of another kind) pass.
    pub(crate) fn check(&mut self, data: &FlightData) -> Result<(), Status> {
        let message = ipc::root_as_message(&data.data_header)
            .map_err(|e| bad(format!("data_header is not an Arrow IPC message: {e}")))?;
        match message.header_type() {
            MessageHeader::Schema => {
                if self.schema.is_some() {
                    return Err(Status::invalid_argument("schema sent twice on one DoPut"));
                }
                let Some(schema) = message.header_as_schema() else {
                    return Ok(());
                };
                check_schema(schema).map_err(bad)?;
                self.schema = Some(Arc::new(ipc::convert::fb_to_schema(schema)));
                Ok(())
            }
            MessageHeader::RecordBatch => {
                let (Some(schema), Some(batch)) =
                    (self.schema.clone(), message.header_as_record_batch())
                else {
                    return Ok(());
                };
                self.check_batch(batch, &data.data_body, schema.fields(), "record batch")
                    .map(drop)
            }
            MessageHeader::DictionaryBatch => {
                let (Some(schema), Some(dictionary)) =
                    (self.schema.clone(), message.header_as_dictionary_batch())
                else {
                    return Ok(());
                };
                self.check_dictionary(dictionary, &data.data_body, &schema)
            }
            _ => Ok(()),
        }
    }

    fn check_dictionary(
        &mut self,
        dictionary: ipc::DictionaryBatch<'_>,
        body: &[u8],
        schema: &Schema,
    ) -> Result<(), Status> {
        let id = dictionary.id();
        let batch = dictionary
            .data()
            .ok_or_else(|| bad(format!("dictionary batch {id} has no data")))?;
        let Some(values) = dictionary_values(schema.fields(), id) else {
            return Ok(()); // the decoder refuses an unknown id
        };
        let what = format!("dictionary batch {id}");
        let field = Field::new("", values, true);
        let bytes = self.check_batch(batch, body, &[Arc::new(field)], &what)?;
        let held = self.dictionaries.entry(id).or_default();
        *held = if dictionary.isDelta() {
            *held + bytes
        } else {
            bytes
        };
        let total: u64 = self.dictionaries.values().sum();
        if total > self.max_batch_bytes {
            return Err(bad(format!(
                "{what}: the stream's dictionaries would take {total} bytes, more than the \
                 limit of {} ({DECOMPRESSED_LIMIT_FACTOR} × max_decoding_message_size)",
                self.max_batch_bytes
            )));
        }
        Ok(())
    }

    /// Checks one batch against the arrays of `fields`; returns the bytes its buffers take
    /// once decompressed.
    fn check_batch(
        &self,
        batch: ipc::RecordBatch<'_>,
        body: &[u8],
        fields: &[Arc<Field>],
        what: &str,
    ) -> Result<u64, Status> {
        let rows = batch.length();
        if !(0..=self.max_rows).contains(&rows) {
            return Err(bad(format!(
                "{what} declares {rows} rows; the limit is {} (one per byte of \
                 max_decoding_message_size)",
                self.max_rows
            )));
        }
        let (Some(nodes), Some(buffers)) = (batch.nodes(), batch.buffers()) else {
            return Ok(0); // the decoder refuses a batch without them
        };
        for (i, node) in nodes.iter().enumerate() {
            let (length, nulls) = (node.length(), node.null_count());
            if !(0..=self.max_rows).contains(&length) || !(0..=length).contains(&nulls) {
                return Err(bad(format!(
                    "{what}: array {i} declares {length} values of which {nulls} null; the \
                     limit is {} values (one per byte of max_decoding_message_size)",
                    self.max_rows
                )));
            }
        }
        let compression = batch.compression().map(|c| c.codec());
        let mut sizes = Vec::with_capacity(buffers.len());
        let mut total: u64 = 0;
        for (i, buffer) in buffers.iter().enumerate() {
            let size = buffer_size(body, buffer, compression)
                .map_err(|e| bad(format!("{what} buffer {i}: {e}")))?;
            total = total.saturating_add(size);
            if total > self.max_batch_bytes {
                return Err(bad(format!(
                    "{what} buffer {i} declares {size} bytes uncompressed: the batch's buffers \
                     would take more than the limit of {} bytes ({DECOMPRESSED_LIMIT_FACTOR} × \
                     max_decoding_message_size)",
                    self.max_batch_bytes
                )));
            }
            sizes.push(size);
        }
        let mut layout = Layout {
            nodes: nodes.iter().collect(),
            sizes: sizes.into(),
            variadic_counts: batch.variadicBufferCounts().into_iter().flatten().collect(),
        };
        for field in fields {
            if !layout
                .check(field)
                .map_err(|e| bad(format!("{what}: {e}")))?
            {
                return Ok(total); // too few nodes or buffers: the decoder refuses it
            }
        }
        if !layout.variadic_counts.is_empty() {
            return Err(bad(format!(
                "{what} declares {} more variadic buffer counts than it has view columns",
                layout.variadic_counts.len()
            )));
        }
        Ok(total)
    }
}

/// The bytes a buffer takes once decompressed, after checking that it lies in the body
/// and, if compressed, that its frame cannot decompress to more than its prefix says.
fn buffer_size(
    body: &[u8],
    buffer: &ipc::Buffer,
    compression: Option<CompressionType>,
) -> Result<u64, String> {
    let (offset, length) = (buffer.offset(), buffer.length());
    let range = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(length).ok())
        .and_then(|(offset, length)| Some(offset..offset.checked_add(length)?))
        .filter(|range| range.end <= body.len())
        .ok_or_else(|| {
            format!(
                "offset {offset} and length {length} lie outside the {}-byte body",
                body.len()
            )
        })?;
    let bytes = &body[range];
    let Some(codec) = compression else {
        return Ok(bytes.len() as u64);
    };
    if bytes.is_empty() {
        return Ok(0);
    }
    let Some((prefix, frame)) = bytes.split_first_chunk::<8>() else {
        return Err(format!(
            "{} bytes, too short for the 8-byte uncompressed length of a compressed buffer",
            bytes.len()
        ));
    };
    match i64::from_le_bytes(*prefix) {
        UNCOMPRESSED_PREFIX => Ok(frame.len() as u64),
        declared @ 0.. => {
            let declared = declared as u64;
            if codec == CompressionType::LZ4_FRAME {
                if let Some((bound, block)) = lz4_output_bound(frame) {
                    if bound > declared.saturating_add(block) {
                        return Err(format!(
                            "its LZ4 frame can decompress to {bound} bytes, more than the \
                             {declared} bytes its prefix declares"
                        ));
                    }
                }
            }
            Ok(declared)
        }
        negative => Err(format!("invalid uncompressed length {negative}")),
    }
}

/// The most bytes arrow-ipc's LZ4 decoder (lz4_flex's `FrameDecoder`, read to its end)
/// can produce from `frame`, and the frame's block size: it decodes the first frame only,
/// a compressed block to at most the block size, a stored block to its own length.
/// `None`: not a frame it decodes (it fails before producing anything).
///
/// An encoder fills every block but the last, so a frame is refused if its blocks could
/// produce more than a block beyond the length it declares.
fn lz4_output_bound(frame: &[u8]) -> Option<(u64, u64)> {
    const MAGIC: u32 = 0x184D_2204;
    const LEGACY_MAGIC: u32 = 0x184C_2102;
    const STORED_BLOCK: u32 = 0x8000_0000;
    let magic = u32::from_le_bytes(*frame.first_chunk::<4>()?);
    let (mut at, block_size, block_checksums) = if magic == LEGACY_MAGIC {
        (4, 8 << 20, false)
    } else if magic == MAGIC {
        let (flags, block_descriptor) = (*frame.get(4)?, *frame.get(5)?);
        let block_size: u64 = match (block_descriptor >> 4) & 0b111 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            _ => return None,
        };
        let content_size = if flags & 0b1000 != 0 { 8 } else { 0 };
        let dictionary_id = if flags & 0b1 != 0 { 4 } else { 0 };
        (
            7 + content_size + dictionary_id,
            block_size,
            flags & 0b1_0000 != 0,
        )
    } else {
        return None;
    };
    let mut bound: u64 = 0;
    while let Some(word) = frame.get(at..).and_then(|rest| rest.first_chunk::<4>()) {
        let word = u32::from_le_bytes(*word);
        if word == 0 {
            break; // the end mark
        }
        let length = word & !STORED_BLOCK;
        bound += if word & STORED_BLOCK != 0 {
            u64::from(length)
        } else {
            block_size
        };
        at = at
            .saturating_add(4 + length as usize)
            .saturating_add(if block_checksums { 4 } else { 0 });
    }
    Some((bound, block_size))
}

/// The value type of dictionary `id` in `fields` (nested fields included).
fn dictionary_values(fields: &[Arc<Field>], id: i64) -> Option<DataType> {
    fields.iter().find_map(|field| {
        #[expect(
            deprecated,
            reason = "arrow-ipc still keys dictionaries by Field::dict_id"
        )]
        let field_id = field.dict_id();
        match field.data_type() {
            DataType::Dictionary(_, values) if field_id == Some(id) => Some((**values).clone()),
            // A dictionary's values may hold dictionaries of their own.
            DataType::Dictionary(_, values) => dictionary_values(&children(values), id),
            data_type => dictionary_values(&children(data_type), id),
        }
    })
}

/// The child fields of a nested type, in IPC order.
fn children(data_type: &DataType) -> Vec<Arc<Field>> {
    match data_type {
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _)
        | DataType::Map(item, _) => vec![Arc::clone(item)],
        DataType::Struct(fields) => fields.iter().cloned().collect(),
        DataType::RunEndEncoded(run_ends, values) => vec![Arc::clone(run_ends), Arc::clone(values)],
        _ => Vec::new(),
    }
}

/// The nodes and buffers of a batch, taken field by field as arrow-ipc's reader takes them.
struct Layout<'a> {
    nodes: VecDeque<&'a ipc::FieldNode>,
    /// Decompressed buffer sizes.
    sizes: VecDeque<u64>,
    variadic_counts: VecDeque<i64>,
}

impl Layout<'_> {
    /// Takes `field`'s node and buffers and checks them; `Ok(false)` if they run out.
    fn check(&mut self, field: &Field) -> Result<bool, String> {
        let Some(node) = self.nodes.pop_front() else {
            return Ok(false);
        };
        let data_type = field.data_type();
        let buffers = match data_type {
            DataType::Null => 0,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => 3,
            DataType::Utf8View | DataType::BinaryView => {
                let Some(count) = self.variadic_counts.pop_front() else {
                    return Ok(false);
                };
                let Some(buffers) = usize::try_from(count).ok().and_then(|n| n.checked_add(2))
                else {
                    return Err(format!(
                        "column {}: variadic buffer count {count}",
                        field.name()
                    ));
                };
                buffers
            }
            DataType::FixedSizeList(..) => 1,
            DataType::ListView(_) | DataType::LargeListView(_) => 3,
            DataType::Struct(_) => 1,
            DataType::RunEndEncoded(..) => 0,
            _ => 2,
        };
        if self.sizes.len() < buffers {
            return Ok(false);
        }
        // The first buffer is the validity bitmap, which the reader and ArrayData build
        // unchecked (asserting its length) when nulls are declared; offsets, views and
        // keys are viewed as slices of their type, which asserts whole values.
        let rows = node.length() as u64;
        for (index, size) in self.sizes.drain(..buffers).enumerate() {
            if index == 0 && node.null_count() > 0 && size.saturating_mul(8) < rows {
                return Err(format!(
                    "column {}: a {size}-byte validity buffer for {rows} rows",
                    field.name()
                ));
            }
            let width = value_width(data_type, index);
            if size % width != 0 {
                return Err(format!(
                    "column {}: buffer {index} of {size} bytes is not a whole number of \
                     {width}-byte values",
                    field.name()
                ));
            }
        }
        if matches!(data_type, DataType::Dictionary(..)) {
            return Ok(true); // its values come from a dictionary batch
        }
        for child in children(data_type) {
            if !self.check(&child)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The width of the values in buffer `index` of an array of `data_type` (1: bits or bytes
/// of any length).
fn value_width(data_type: &DataType, index: usize) -> u64 {
    use DataType as D;
    let width = match (data_type, index) {
        (_, 0) => 1,
        (D::Utf8 | D::Binary | D::List(_) | D::Map(..), 1) | (D::ListView(_), 1 | 2) => 4,
        (D::LargeUtf8 | D::LargeBinary | D::LargeList(_), 1) | (D::LargeListView(_), 1 | 2) => 8,
        (D::Utf8View | D::BinaryView, 1) => 16,
        (D::Dictionary(key, _), 1) => key.primitive_width().unwrap_or(1),
        (data_type, 1) => data_type.primitive_width().unwrap_or(1),
        _ => 1,
    };
    width as u64
}

/// Checks a schema message for what arrow-ipc's conversion would panic on.
fn check_schema(schema: ipc::Schema<'_>) -> Result<(), String> {
    if schema.endianness() != ipc::Endianness::Little {
        return Err("only little-endian Arrow data is supported".into());
    }
    let fields = schema.fields().ok_or("the schema message has no fields")?;
    fields.iter().try_for_each(|field| check_field(field, ""))
}

/// Checks one field of a schema message and its children (the flatbuffer verifier already
/// bounds their depth).
fn check_field(field: ipc::Field<'_>, parent: &str) -> Result<(), String> {
    use ipc::Type as T;
    let path = format!("{parent}{}", field.name().unwrap_or_default());
    let unsupported = |what: String| Err(format!("column {path}: {what}"));
    if let Some(dictionary) = field.dictionary() {
        match dictionary.indexType() {
            Some(index) if integer(index.bitWidth()) => {}
            Some(index) => {
                return unsupported(format!("dictionary index width {}", index.bitWidth()))
            }
            None => return unsupported("a dictionary without an index type".into()),
        }
    }
    let children = field.children();
    let child_count = children.map_or(0, |c| c.len());
    let valid = match field.type_type() {
        T::Null | T::Bool | T::Binary | T::LargeBinary | T::BinaryView => true,
        T::Utf8 | T::LargeUtf8 | T::Utf8View | T::Struct_ => true,
        T::Int => field.type_as_int().is_some_and(|t| integer(t.bitWidth())),
        T::FixedSizeBinary => field
            .type_as_fixed_size_binary()
            .is_some_and(|t| t.byteWidth() >= 0),
        T::FloatingPoint => field.type_as_floating_point().is_some_and(|t| {
            matches!(
                t.precision(),
                ipc::Precision::HALF | ipc::Precision::SINGLE | ipc::Precision::DOUBLE
            )
        }),
        T::Date => field
            .type_as_date()
            .is_some_and(|t| matches!(t.unit(), ipc::DateUnit::DAY | ipc::DateUnit::MILLISECOND)),
        T::Time => field.type_as_time().is_some_and(|t| {
            use ipc::TimeUnit as U;
            matches!(
                (t.bitWidth(), t.unit()),
                (32, U::SECOND | U::MILLISECOND) | (64, U::MICROSECOND | U::NANOSECOND)
            )
        }),
        T::Timestamp => field
            .type_as_timestamp()
            .is_some_and(|t| time_unit(t.unit())),
        T::Duration => field
            .type_as_duration()
            .is_some_and(|t| time_unit(t.unit())),
        T::Interval => field.type_as_interval().is_some_and(|t| {
            use ipc::IntervalUnit as U;
            matches!(t.unit(), U::YEAR_MONTH | U::DAY_TIME | U::MONTH_DAY_NANO)
        }),
        T::List | T::LargeList | T::ListView | T::LargeListView => child_count == 1,
        T::FixedSizeList => {
            child_count == 1
                && field
                    .type_as_fixed_size_list()
                    .is_some_and(|t| t.listSize() >= 0)
        }
        T::Map => child_count == 1 && field.type_as_map().is_some(),
        T::RunEndEncoded => child_count == 2,
        T::Decimal => field.type_as_decimal().is_some_and(|t| {
            u8::try_from(t.precision()).is_ok()
                && i8::try_from(t.scale()).is_ok()
                && matches!(t.bitWidth(), 32 | 64 | 128 | 256)
        }),
        other => {
            let name = other.variant_name().unwrap_or("unknown");
            return unsupported(format!("Arrow type {name} ({}) is not supported", other.0));
        }
    };
    if !valid {
        let name = field.type_type().variant_name().unwrap_or("unknown");
        return unsupported(format!("an invalid {name} type"));
    }
    let nested = format!("{path}.");
    children
        .into_iter()
        .flatten()
        .try_for_each(|child| check_field(child, &nested))
}

fn integer(bit_width: i32) -> bool {
    matches!(bit_width, 8 | 16 | 32 | 64)
}

fn time_unit(unit: ipc::TimeUnit) -> bool {
    use ipc::TimeUnit as U;
    matches!(
        unit,
        U::SECOND | U::MILLISECOND | U::MICROSECOND | U::NANOSECOND
    )
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use arrow::array::{
        ArrayRef, DictionaryArray, Int64Array, ListArray, RecordBatch, StringArray,
        StringViewArray, StructArray,
    };
    use arrow::buffer::NullBuffer;
    use arrow::datatypes::Int32Type;
    use arrow::ipc::writer::{
        DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions,
    };
    use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};

    use super::*;

    /// The default `max_decoding_message_size` (32 MiB).
    const LIMIT: usize = 32 << 20;

    /// A batch of the types whose layout the check follows: a struct with nulls, a list,
    /// a dictionary, a view and a plain string column.
    pub(super) fn varied_batch(rows: usize) -> RecordBatch {
        let ids = Int64Array::from_iter_values(0..rows as i64);
        let names = StringArray::from_iter_values((0..rows).map(|i| format!("name-{i}")));
        let point = StructArray::new(
            vec![Field::new("x", DataType::Int64, true)].into(),
            vec![Arc::new(ids.clone()) as ArrayRef],
            Some(NullBuffer::from_iter((0..rows).map(|i| i % 3 != 0))),
        );
        let tags = ListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..rows).map(|i| Some(vec![Some(i as i32); i % 4])),
        );
        let kinds: DictionaryArray<Int32Type> = (0..rows).map(|i| ["a", "b", "c"][i % 3]).collect();
        let views = StringViewArray::from_iter_values(
            (0..rows).map(|i| format!("a view longer than twelve bytes {i}")),
        );
        RecordBatch::try_from_iter([
            ("id", Arc::new(ids) as ArrayRef),
            ("name", Arc::new(names)),
            ("point", Arc::new(point)),
            ("tags", Arc::new(tags)),
            ("kind", Arc::new(kinds)),
            ("view", Arc::new(views)),
        ])
        .unwrap()
    }

    /// `batch` as a DoPut sends it: schema, dictionaries, batch.
    pub(super) fn messages(
        batch: &RecordBatch,
        compression: Option<CompressionType>,
    ) -> Vec<FlightData> {
        let options = IpcWriteOptions::default()
            .try_with_compression(compression)
            .unwrap();
        let generator = IpcDataGenerator::default();
        let mut tracker = DictionaryTracker::new(false);
        let schema = generator.schema_to_bytes_with_dictionary_tracker(
            &batch.schema(),
            &mut tracker,
            &options,
        );
        let (dictionaries, data) = generator
            .encode(
                batch,
                &mut tracker,
                &options,
                &mut IpcWriteContext::default(),
            )
            .unwrap();
        std::iter::once(schema)
            .chain(dictionaries)
            .chain([data])
            .map(FlightData::from)
            .collect()
    }

    /// The record batches the server's decoder gets from `messages`, or the status that
    /// ended them.
    pub(super) fn decode(messages: Vec<FlightData>) -> Result<Vec<RecordBatch>, Status> {
        let inbound = futures::stream::iter(messages.into_iter().map(Ok));
        let decoder = FlightDataDecoder::new(checked(inbound, FlightCheck::new(LIMIT)));
        futures::executor::block_on(
            decoder
                .map(|data| data.map(|d| d.payload))
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .filter_map(|payload| match payload {
            Ok(DecodedPayload::RecordBatch(batch)) => Some(Ok(batch)),
            Ok(_) => None,
            Err(FlightError::Tonic(status)) => Some(Err(*status)),
            Err(e) => Some(Err(Status::invalid_argument(e.to_string()))),
        })
        .collect()
    }

    /// The message a refusal carries (asserting it is `INVALID_ARGUMENT`).
    fn refusal(messages: Vec<FlightData>) -> String {
        let status = decode(messages).expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
        status.message().to_string()
    }

    /// Where in a record batch header the `index`th buffer (`nodes`: field node) struct
    /// lies: both are pairs of little-endian i64s.
    pub(super) fn struct_at(header: &[u8], nodes: bool, index: usize) -> usize {
        let message = ipc::root_as_message(header).unwrap();
        let batch = message.header_as_record_batch().unwrap();
        let bytes = if nodes {
            batch.nodes().unwrap().bytes()
        } else {
            batch.buffers().unwrap().bytes()
        };
        bytes.as_ptr() as usize - header.as_ptr() as usize + 16 * index
    }

    /// Sets the `index`th buffer's offset (`second`: length) in a batch header.
    pub(super) fn patch(
        data: &mut FlightData,
        nodes: bool,
        index: usize,
        second: bool,
        value: i64,
    ) {
        let mut header = data.data_header.to_vec();
        let at = struct_at(&header, nodes, index) + if second { 8 } else { 0 };
        header[at..at + 8].copy_from_slice(&value.to_le_bytes());
        data.data_header = header.into();
    }

    /// The offset of the `index`th buffer in a batch's body.
    fn buffer_offset(data: &FlightData, index: usize) -> usize {
        let at = struct_at(&data.data_header, false, index);
        i64::from_le_bytes(data.data_header[at..at + 8].try_into().unwrap()) as usize
    }

    /// Sets the uncompressed-length prefix of a compressed buffer.
    fn set_prefix(data: &mut FlightData, index: usize, declared: i64) {
        let at = buffer_offset(data, index);
        let mut body = data.data_body.to_vec();
        body[at..at + 8].copy_from_slice(&declared.to_le_bytes());
        data.data_body = body.into();
    }

    #[test]
    fn valid_messages_decode_unchanged() {
        let batch = varied_batch(100);
        for compression in [
            None,
            Some(CompressionType::LZ4_FRAME),
            Some(CompressionType::ZSTD),
        ] {
            let decoded = decode(messages(&batch, compression)).unwrap();
            assert_eq!(decoded, vec![batch.clone()], "{compression:?}");
        }
    }

    /// 1 TiB declared in a few KB: arrow-ipc allocated it up front and the process
    /// aborted.
    #[test]
    fn a_huge_uncompressed_length_is_refused() {
        for codec in [CompressionType::LZ4_FRAME, CompressionType::ZSTD] {
            let mut sent = messages(&varied_batch(100), Some(codec));
            let last = sent.last_mut().unwrap();
            set_prefix(last, 1, 1 << 40);
            assert_eq!(
                refusal(sent),
                "bad Arrow Flight data: record batch buffer 1 declares 1099511627776 bytes \
                 uncompressed: the batch's buffers would take more than the limit of \
                 134217728 bytes (4 × max_decoding_message_size)",
                "{codec:?}"
            );
        }
    }

    /// An LZ4 frame whose blocks decompress to far more than its prefix declares (arrow
    /// reads a frame to its end, whatever the prefix says).
    #[test]
    fn an_lz4_frame_larger_than_its_prefix_is_refused() {
        let batch = RecordBatch::try_from_iter([(
            "zeros",
            Arc::new(Int64Array::from(vec![0; 2 << 20])) as ArrayRef,
        )])
        .unwrap();
        let mut sent = messages(&batch, Some(CompressionType::LZ4_FRAME));
        let last = sent.last_mut().unwrap();
        assert!(
            last.data_body.len() < 1 << 20,
            "16 MiB of zeros compress well"
        );
        set_prefix(last, 1, 8);
        assert_eq!(
            refusal(sent),
            "bad Arrow Flight data: record batch buffer 1: its LZ4 frame can decompress to \
             16777216 bytes, more than the 8 bytes its prefix declares"
        );
    }

    /// A record batch header with an empty body: arrow-buffer's slice assertion panicked
    /// in the stream task.
    #[test]
    fn buffers_outside_the_body_are_refused() {
        let mut sent = messages(&varied_batch(10), None);
        sent.last_mut().unwrap().data_body = Default::default();
        assert_eq!(
            refusal(sent),
            "bad Arrow Flight data: record batch buffer 1: offset 0 and length 80 lie outside \
             the 0-byte body"
        );
        let mut sent = messages(&varied_batch(10), None);
        patch(sent.last_mut().unwrap(), false, 3, false, i64::MAX);
        assert!(refusal(sent).contains("buffer 3: offset 9223372036854775807 and length"));
    }

    #[test]
    fn row_counts_past_the_limit_are_refused() {
        let mut sent = messages(&varied_batch(10), None);
        patch(sent.last_mut().unwrap(), true, 0, false, 1 << 40);
        assert_eq!(
            refusal(sent),
            "bad Arrow Flight data: record batch: array 0 declares 1099511627776 values of \
             which 0 null; the limit is 33554432 values (one per byte of \
             max_decoding_message_size)"
        );
        let mut sent = messages(&varied_batch(10), None);
        patch(sent.last_mut().unwrap(), true, 0, true, 11);
        assert!(refusal(sent).contains("array 0 declares 10 values of which 11 null"));
    }

    /// A validity bitmap is built unchecked from its buffer when nulls are declared.
    #[test]
    fn a_short_struct_validity_buffer_is_refused() {
        let mut sent = messages(&varied_batch(100), None);
        // Buffers: id (2), name (3), then the struct's validity.
        patch(sent.last_mut().unwrap(), false, 5, true, 1);
        assert_eq!(
            refusal(sent),
            "bad Arrow Flight data: record batch: column point: a 1-byte validity buffer for \
             100 rows"
        );
    }

    /// More variadic buffer counts than view columns: arrow-ipc asserts there are none
    /// left after the last column.
    #[test]
    fn extra_variadic_counts_are_refused() {
        let batch = varied_batch(10);
        let narrow = batch.project(&[0]).unwrap();
        let sent = vec![
            messages(&narrow, None).remove(0),
            messages(&batch, None).pop().unwrap(),
        ];
        assert_eq!(
            refusal(sent),
            "bad Arrow Flight data: record batch declares 1 more variadic buffer counts than \
             it has view columns"
        );
    }

    #[test]
    fn a_second_schema_is_refused_before_it_is_decoded() {
        let mut sent = messages(&varied_batch(10), None);
        sent.insert(1, sent[0].clone());
        assert_eq!(refusal(sent), "schema sent twice on one DoPut");
    }
}

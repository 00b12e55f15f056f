//! Protobuf records → Arrow rows, against the stream's descriptor.
//!
//! The descriptor is resolved with prost-reflect; records are then split with a small
//! wire-format reader ([`super::wire`]) and each field value is appended straight into the
//! Arrow builder of its column, so no per-record message objects are built.
//!
//! Proto → table rules (the service's): every proto field names a table column; its
//! protobuf type must fit the column's type; NOT NULL columns need a field; message names
//! do not matter. Per record: an absent field is null (a NOT NULL column then fails the
//! record), an absent repeated or map field is an empty list or map, a scalar sent twice
//! keeps its last value, a message sent twice is merged (protobuf semantics), map
//! entries keep their wire order.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder,
    ListArray, MapArray, NullBufferBuilder, RecordBatch, RecordBatchOptions, StringArray,
    StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{
    DataType, Decimal128Type, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit,
};
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use prost_types::{DescriptorProto, FileDescriptorProto};
use tonic::Status;

use super::proto_schema::expand;
use super::wire::{for_each_field, for_each_packed, Raw, WireType};

/// The name given to a descriptor without one (as the SDK's `message_descriptor` does).
const UNNAMED_MESSAGE: &str = "ZerobusDynamicMessage";

/// Field numbers up to this are looked up in a dense table.
const DENSE_FIELD_NUMBERS: u32 = 4096;

/// Decodes the protobuf records of one stream (its `descriptor_proto`).
#[derive(Debug)]
pub(crate) struct ProtoDecoder {
    message: MessageDescriptor,
    /// The schema of a table created from the descriptor, or why there can be none.
    schema: Result<SchemaRef, String>,
}

impl ProtoDecoder {
    /// Parses the stream's descriptor (self-contained: nested types inside it) and
    /// refuses one past the limits of [`super::proto_schema`] (a message that contains
    /// itself, nesting deeper than 64 levels, too many fields): everything that later
    /// walks the descriptor, the decoder included, recurses at most that deep.
    ///
    /// Type references may be bare names (as the SDK's `descriptor_from_uc_columns` and
    /// this crate write them) or fully qualified (`.pkg.Outer.Inner`, as a prost-reflect
    /// `MessageDescriptor` of a packaged file sends them).
    pub(crate) fn new(mut descriptor: DescriptorProto) -> Result<Self, Status> {
        let name = match descriptor.name.as_deref() {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => {
                descriptor.name = Some(UNNAMED_MESSAGE.to_string());
                UNNAMED_MESSAGE.to_string()
            }
        };
        let package = package_of(&descriptor, &name);
        let file = FileDescriptorProto {
            name: Some("zerobus_stream.proto".into()),
            package: package.clone(),
            message_type: vec![descriptor],
            ..Default::default()
        };
        let mut pool = DescriptorPool::new();
        pool.add_file_descriptor_proto(file)
            .map_err(|e| Status::invalid_argument(format!("invalid descriptor_proto: {e}")))?;
        let full_name = match package {
            Some(package) => format!("{package}.{name}"),
            None => name,
        };
        let message = pool.get_message_by_name(&full_name).ok_or_else(|| {
            Status::invalid_argument(format!("descriptor_proto: no message {full_name}"))
        })?;
        let shape = expand(&message)
            .map_err(|e| Status::invalid_argument(format!("descriptor_proto: {e}")))?;
        let schema = match shape.unsupported {
            Some(reason) => Err(reason),
            None => Ok(Arc::new(Schema::new(shape.fields))),
        };
        Ok(Self { message, schema })
    }

    /// The Arrow schema a table created from this descriptor gets (every column
    /// nullable): int32/sint32/sfixed32/enum → Int32, uint32/fixed32 and the 64-bit
    /// integers → Int64, float → Float32, double → Float64, bool → Boolean,
    /// string → Utf8, bytes → Binary, message → Struct, repeated → List, map → Map.
    pub(crate) fn table_schema(&self) -> Result<SchemaRef, Status> {
        self.schema.clone().map_err(Status::invalid_argument)
    }

    /// Checks the descriptor against an existing table, as the service does (see the
    /// module documentation); `INVALID_ARGUMENT` naming the field or column.
    pub(crate) fn check(&self, table: &Schema) -> Result<(), Status> {
        MessageDecoder::for_message(&self.message, table.fields(), "", 0, Utf8Check::PerColumn)
            .map(drop)
            .map_err(Status::invalid_argument)
    }

    /// Decodes `records` into one batch of `table`'s schema.
    ///
    /// UTF-8 is checked once per string column of the batch; if that or anything else
    /// fails, the records are decoded again checking each value as it is appended, so
    /// the error is the one that names the first bad record and column.
    pub(crate) fn decode<R: AsRef<[u8]>>(
        &self,
        table: &SchemaRef,
        records: &[R],
    ) -> Result<RecordBatch, Status> {
        self.decode_with(table, records, Utf8Check::PerColumn)
            .or_else(|_| self.decode_with(table, records, Utf8Check::PerValue))
    }

    fn decode_with<R: AsRef<[u8]>>(
        &self,
        table: &SchemaRef,
        records: &[R],
        utf8: Utf8Check,
    ) -> Result<RecordBatch, Status> {
        let mut decoder =
            MessageDecoder::for_message(&self.message, table.fields(), "", records.len(), utf8)
                .map_err(Status::invalid_argument)?;
        for (index, record) in records.iter().enumerate() {
            let record = record.as_ref();
            decoder
                .append(record, &[Raw::Len(0, record.len())])
                .map_err(|e| Status::invalid_argument(format!("record {index}: {e}")))?;
        }
        let columns = decoder.finish_columns().map_err(Status::internal)?;
        RecordBatch::try_new_with_options(
            Arc::clone(table),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(records.len())),
        )
        .map_err(|e| Status::internal(format!("decoded rows do not fit the table: {e}")))
    }
}

/// The package of a descriptor whose type references are fully qualified: the part
/// before `.<name>.` in the first such reference.
fn package_of(descriptor: &DescriptorProto, name: &str) -> Option<String> {
    fn references(d: &DescriptorProto) -> Vec<String> {
        let mut out: Vec<String> = d.field.iter().filter_map(|f| f.type_name.clone()).collect();
        out.extend(d.nested_type.iter().flat_map(references));
        out
    }
    let own = format!(".{name}.");
    references(descriptor).iter().find_map(|reference| {
        let reference = reference.strip_prefix('.')?;
        let at = format!(".{reference}").find(&own)?;
        (at > 0).then(|| reference[..at - 1].to_string())
    })
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(_) => "message",
        Kind::Enum(_) => "enum",
    }
}

fn wire_type(kind: &Kind) -> WireType {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => WireType::Fixed64,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => WireType::Fixed32,
        Kind::String | Kind::Bytes | Kind::Message(_) => WireType::Len,
        _ => WireType::Varint,
    }
}

// ---------------------------------------------------------------------------------------
// Decoding

/// Field number → column index.
#[derive(Debug)]
enum Lookup {
    Dense(Vec<Option<usize>>),
    Sparse(HashMap<u32, usize>),
}

impl Lookup {
    fn new(numbers: impl Iterator<Item = (u32, usize)> + Clone) -> Self {
        let max = numbers.clone().map(|(n, _)| n).max().unwrap_or(0);
        if max <= DENSE_FIELD_NUMBERS {
            let mut dense = vec![None; max as usize + 1];
            for (number, column) in numbers {
                dense[number as usize] = Some(column);
            }
            Lookup::Dense(dense)
        } else {
            Lookup::Sparse(numbers.collect())
        }
    }

    fn get(&self, number: u32) -> Option<usize> {
        match self {
            Lookup::Dense(dense) => dense.get(number as usize).copied().flatten(),
            Lookup::Sparse(map) => map.get(&number).copied(),
        }
    }
}

/// Decodes messages of one type into the columns of a struct (or of the table).
#[derive(Debug)]
struct MessageDecoder {
    fields: Fields,
    lookup: Lookup,
    columns: Vec<Column>,
    nulls: NullBufferBuilder,
    /// Map entries: an absent key or value is the type's default (protobuf semantics).
    absent_is_default: bool,
}

impl MessageDecoder {
    /// Columns `fields` fed from the fields of `message` with the same names.
    fn for_message(
        message: &MessageDescriptor,
        fields: &Fields,
        path: &str,
        capacity: usize,
        utf8: Utf8Check,
    ) -> Result<Self, String> {
        if let Some(extra) = message.fields().find(|f| fields.find(f.name()).is_none()) {
            return Err(format!("field {path}{} not in table", extra.name()));
        }
        let sources = fields
            .iter()
            .map(|c| message.get_field_by_name(c.name()))
            .collect();
        Self::new(fields, sources, path, false, capacity, utf8)
    }

    /// A map's entry struct (`key`, `value`) fed from the entry message's fields 1 and 2.
    fn for_map_entry(
        entry: &MessageDescriptor,
        fields: &Fields,
        path: &str,
        capacity: usize,
        utf8: Utf8Check,
    ) -> Result<Self, String> {
        if fields.len() != 2 {
            return Err(format!("column {path}: map entries need 2 fields"));
        }
        let sources = vec![
            Some(entry.map_entry_key_field()),
            Some(entry.map_entry_value_field()),
        ];
        Self::new(fields, sources, path, true, capacity, utf8)
    }

    fn new(
        fields: &Fields,
        sources: Vec<Option<FieldDescriptor>>,
        path: &str,
        absent_is_default: bool,
        capacity: usize,
        utf8: Utf8Check,
    ) -> Result<Self, String> {
        let columns = fields
            .iter()
            .zip(sources)
            .map(|(field, source)| Column::new(field, source, path, capacity, utf8))
            .collect::<Result<Vec<_>, _>>()?;
        let lookup = Lookup::new(
            columns
                .iter()
                .enumerate()
                .filter_map(|(i, c)| Some((c.source.as_ref()?.number, i))),
        );
        Ok(Self {
            fields: fields.clone(),
            lookup,
            columns,
            nulls: NullBufferBuilder::new(capacity),
            absent_is_default,
        })
    }

    /// Appends one row from the message made of `pieces` (several pieces merge).
    fn append(&mut self, buf: &[u8], pieces: &[Raw]) -> Result<(), String> {
        for piece in pieces {
            let Raw::Len(start, end) = *piece else {
                return Err("a message field is not length-delimited".into());
            };
            let (lookup, columns) = (&self.lookup, &mut self.columns);
            for_each_field(buf, start, end, |number, raw| match lookup.get(number) {
                Some(i) => columns[i].push(buf, raw),
                None => Ok(()), // unknown fields are skipped, as protobuf does
            })?;
        }
        for column in &mut self.columns {
            column.end_row(buf, self.absent_is_default)?;
        }
        self.nulls.append_non_null();
        Ok(())
    }

    fn append_null(&mut self) {
        for column in &mut self.columns {
            column.append_null();
        }
        self.nulls.append_null();
    }

    fn finish_columns(&mut self) -> Result<Vec<ArrayRef>, String> {
        self.columns.iter_mut().map(Column::finish).collect()
    }

    fn finish_struct(&mut self) -> Result<StructArray, String> {
        let columns = self.finish_columns()?;
        StructArray::try_new(self.fields.clone(), columns, self.nulls.finish())
            .map_err(|e| e.to_string())
    }
}

/// Where a column's values come from.
#[derive(Debug)]
struct Source {
    number: u32,
    /// The wire type of one value (of one element for repeated fields).
    wire: WireType,
    repeated: bool,
    /// A (non-repeated) message field: its pieces merge.
    message: bool,
}

/// One table column and the proto field that feeds it.
#[derive(Debug)]
struct Column {
    path: String,
    nullable: bool,
    source: Option<Source>,
    /// The value of a scalar field in the current record (the last one sent counts), as
    /// the payload of a value of the field's wire type ([`Raw::payload`]): kept as two
    /// plain words so that storing it per field costs two stores, not an enum copy.
    last: Option<[u64; 2]>,
    /// The values of a repeated or message field in the current record.
    seen: Vec<Raw>,
    shape: Shape,
}

#[derive(Debug)]
enum Shape {
    /// No proto field: always null.
    Absent {
        data_type: DataType,
        rows: usize,
    },
    Single(ValueDecoder),
    List {
        item: FieldRef,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        values: ValueDecoder,
    },
    Map {
        entries_field: FieldRef,
        sorted: bool,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        entries: Box<MessageDecoder>,
    },
}

impl Column {
    fn new(
        field: &Field,
        source: Option<FieldDescriptor>,
        parent: &str,
        capacity: usize,
        utf8: Utf8Check,
    ) -> Result<Self, String> {
        let path = format!("{parent}{}", field.name());
        let Some(proto) = source else {
            if !field.is_nullable() {
                return Err(format!(
                    "column {path} is NOT NULL but the descriptor has no field {}",
                    field.name()
                ));
            }
            return Ok(Self {
                path,
                nullable: true,
                source: None,
                last: None,
                seen: Vec::new(),
                shape: Shape::Absent {
                    data_type: field.data_type().clone(),
                    rows: 0,
                },
            });
        };
        if proto.is_group() {
            return Err(format!("field {path}: groups are not supported"));
        }
        let offsets = || {
            let mut offsets = Vec::with_capacity(capacity + 1);
            offsets.push(0);
            offsets
        };
        let shape = match (proto.is_map(), proto.is_list(), field.data_type()) {
            (true, _, DataType::Map(entries_field, sorted)) => {
                let (Kind::Message(entry), DataType::Struct(kv)) =
                    (proto.kind(), entries_field.data_type())
                else {
                    return Err(format!("column {path}: invalid map type"));
                };
                Shape::Map {
                    entries_field: Arc::clone(entries_field),
                    sorted: *sorted,
                    offsets: offsets(),
                    nulls: NullBufferBuilder::new(capacity),
                    entries: Box::new(MessageDecoder::for_map_entry(
                        &entry,
                        kv,
                        &format!("{path}."),
                        capacity,
                        utf8,
                    )?),
                }
            }
            (false, true, DataType::List(item)) => Shape::List {
                item: Arc::clone(item),
                offsets: offsets(),
                nulls: NullBufferBuilder::new(capacity),
                values: ValueDecoder::new(proto.kind(), item.data_type(), &path, capacity, utf8)?,
            },
            (false, false, data_type) => {
                Shape::Single(ValueDecoder::new(proto.kind(), data_type, &path, capacity, utf8)?)
            }
            (map, _, data_type) => {
                return Err(format!(
                    "field {path}: a repeated {} field cannot be stored in column {path} of type {data_type}",
                    if map { "map" } else { kind_name(&proto.kind()) },
                ))
            }
        };
        Ok(Self {
            path,
            nullable: field.is_nullable(),
            source: Some(Source {
                number: proto.number(),
                wire: wire_type(&proto.kind()),
                repeated: proto.is_list() || proto.is_map(),
                message: matches!(proto.kind(), Kind::Message(_)),
            }),
            last: None,
            seen: Vec::new(),
            shape,
        })
    }

    /// Takes one value of this column's field off the wire.
    #[inline]
    fn push(&mut self, buf: &[u8], raw: Raw) -> Result<(), String> {
        let source = self
            .source
            .as_ref()
            .expect("only fields with a source are looked up");
        if raw.wire_type() == source.wire {
            if !source.repeated && !source.message {
                self.last = Some(raw.payload()); // the last value of a scalar wins
            } else {
                self.seen.push(raw); // elements, or message pieces that merge
            }
            return Ok(());
        }
        self.push_other(buf, raw)
    }

    /// [`Self::push`] of a value whose wire type is not the field's: a packed repeated
    /// field, or an error.
    #[inline(never)]
    fn push_other(&mut self, buf: &[u8], raw: Raw) -> Result<(), String> {
        let source = self
            .source
            .as_ref()
            .expect("only fields with a source are looked up");
        if let (true, Raw::Len(start, end)) = (source.repeated, raw) {
            let seen = &mut self.seen;
            return for_each_packed(buf, start, end, source.wire, |value| seen.push(value))
                .map_err(|e| format!("column {}: {e}", self.path));
        }
        Err(format!(
            "column {}: wire type {:?} does not match the field's type ({:?} expected)",
            self.path,
            raw.wire_type(),
            source.wire
        ))
    }

    /// Appends the current record's value and forgets it.
    fn end_row(&mut self, buf: &[u8], absent_is_default: bool) -> Result<(), String> {
        let result = match &mut self.shape {
            Shape::Absent { rows, .. } => {
                *rows += 1;
                Ok(())
            }
            Shape::Single(values) => {
                if let Some(payload) = self.last.take() {
                    let raw = self.source.as_ref().expect("a value").wire.raw(payload);
                    values.append(buf, std::slice::from_ref(&raw))
                } else if !self.seen.is_empty() {
                    values.append(buf, &self.seen)
                } else if absent_is_default {
                    values.append_default(buf)
                } else if self.nullable {
                    values.append_null();
                    Ok(())
                } else {
                    Err(format!(
                        "column {} is NOT NULL but the record has no value for it",
                        self.path
                    ))
                }
            }
            Shape::List {
                offsets,
                nulls,
                values,
                ..
            } => {
                let result = self
                    .seen
                    .iter()
                    .try_for_each(|raw| values.append(buf, std::slice::from_ref(raw)));
                nulls.append_non_null();
                result.and_then(|()| push_offset(offsets, self.seen.len()))
            }
            Shape::Map {
                offsets,
                nulls,
                entries,
                ..
            } => {
                let result = self
                    .seen
                    .iter()
                    .try_for_each(|raw| entries.append(buf, std::slice::from_ref(raw)));
                nulls.append_non_null();
                result.and_then(|()| push_offset(offsets, self.seen.len()))
            }
        };
        self.seen.clear();
        result
    }

    /// A null under a null struct.
    fn append_null(&mut self) {
        match &mut self.shape {
            Shape::Absent { rows, .. } => *rows += 1,
            Shape::Single(values) => values.append_null(),
            Shape::List { offsets, nulls, .. } | Shape::Map { offsets, nulls, .. } => {
                offsets.push(*offsets.last().expect("offsets start with 0"));
                nulls.append_null();
            }
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, String> {
        let array: ArrayRef = match &mut self.shape {
            Shape::Absent { data_type, rows } => new_null_array(data_type, std::mem::take(rows)),
            Shape::Single(values) => values.finish()?,
            Shape::List {
                item,
                offsets,
                nulls,
                values,
            } => Arc::new(
                ListArray::try_new(
                    Arc::clone(item),
                    OffsetBuffer::new(std::mem::take(offsets).into()),
                    values.finish()?,
                    nulls.finish(),
                )
                .map_err(|e| e.to_string())?,
            ),
            Shape::Map {
                entries_field,
                sorted,
                offsets,
                nulls,
                entries,
            } => Arc::new(
                MapArray::try_new(
                    Arc::clone(entries_field),
                    OffsetBuffer::new(std::mem::take(offsets).into()),
                    entries.finish_struct()?,
                    nulls.finish(),
                    *sorted,
                )
                .map_err(|e| e.to_string())?,
            ),
        };
        Ok(array)
    }
}

/// Appends `added` elements after the last offset.
fn push_offset(offsets: &mut Vec<i32>, added: usize) -> Result<(), String> {
    let last = *offsets.last().expect("offsets start with 0");
    let next = i32::try_from(added)
        .ok()
        .and_then(|added| last.checked_add(added))
        .ok_or("more than 2^31 list elements in one request")?;
    offsets.push(next);
    Ok(())
}

/// When string values are checked for UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Utf8Check {
    /// Once per column, when the batch is finished (fast; fails without naming a record).
    PerColumn,
    /// Each value as it is appended (the error names the record and column).
    PerValue,
}

/// Appends values of one protobuf type into one Arrow array of a compatible type.
#[derive(Debug)]
struct ValueDecoder {
    kind: Kind,
    path: String,
    target: Target,
}

#[derive(Debug)]
enum Target {
    Bool(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    /// Strings kept as bytes, checked as `Utf8Check` says.
    Utf8(BinaryBuilder, Utf8Check),
    Binary(BinaryBuilder),
    Decimal(Decimal128Builder, u8, i8),
    Struct(Box<MessageDecoder>),
}

/// Integer kinds whose values fit 32 bits (signed or unsigned).
fn is_int32(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Enum(_) | Kind::Uint32 | Kind::Fixed32
    )
}

fn is_int64(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64
    )
}

impl ValueDecoder {
    fn new(
        kind: Kind,
        data_type: &DataType,
        path: &str,
        capacity: usize,
        utf8: Utf8Check,
    ) -> Result<Self, String> {
        let unsigned32 = matches!(kind, Kind::Uint32 | Kind::Fixed32);
        let target = match (&kind, data_type) {
            (Kind::Bool, DataType::Boolean) => {
                Target::Bool(BooleanBuilder::with_capacity(capacity))
            }
            (k, DataType::Int8) if is_int32(k) => {
                Target::Int8(Int8Builder::with_capacity(capacity))
            }
            (k, DataType::Int16) if is_int32(k) => {
                Target::Int16(Int16Builder::with_capacity(capacity))
            }
            (k, DataType::Int32) if is_int32(k) => {
                Target::Int32(Int32Builder::with_capacity(capacity))
            }
            (k, DataType::Date32) if is_int32(k) => {
                Target::Date32(Date32Builder::with_capacity(capacity))
            }
            (k, DataType::Int64) if is_int64(k) || unsigned32 => {
                Target::Int64(Int64Builder::with_capacity(capacity))
            }
            (k, DataType::Timestamp(TimeUnit::Microsecond, tz)) if is_int64(k) => {
                Target::Timestamp(
                    TimestampMicrosecondBuilder::with_capacity(capacity)
                        .with_timezone_opt(tz.clone()),
                )
            }
            (Kind::Float, DataType::Float32) => {
                Target::Float32(Float32Builder::with_capacity(capacity))
            }
            (Kind::Double, DataType::Float64) => {
                Target::Float64(Float64Builder::with_capacity(capacity))
            }
            (Kind::String, DataType::Utf8) => {
                Target::Utf8(BinaryBuilder::with_capacity(capacity, capacity * 8), utf8)
            }
            (Kind::String, DataType::Decimal128(p, s)) => Target::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| format!("column {path}: {e}"))?,
                *p,
                *s,
            ),
            (Kind::Bytes, DataType::Binary) => {
                Target::Binary(BinaryBuilder::with_capacity(capacity, capacity * 8))
            }
            (Kind::Message(m), DataType::Struct(fields)) => Target::Struct(Box::new(
                MessageDecoder::for_message(m, fields, &format!("{path}."), capacity, utf8)?,
            )),
            (kind, data_type) => {
                return Err(format!(
                "field {path}: proto type {} cannot be stored in column {path} of type {data_type}",
                kind_name(kind)
            ))
            }
        };
        Ok(Self {
            kind,
            path: path.to_string(),
            target,
        })
    }

    /// Appends the value in `raws`: the last one for a scalar, all merged for a message.
    fn append(&mut self, buf: &[u8], raws: &[Raw]) -> Result<(), String> {
        if let Target::Struct(message) = &mut self.target {
            return message.append(buf, raws);
        }
        let raw = *raws.last().expect("append is called with a value");
        let result = self.append_scalar(buf, raw);
        result.map_err(|e| format!("column {}: {e}", self.path))
    }

    /// Appends the protobuf default value (an absent map key or value).
    fn append_default(&mut self, buf: &[u8]) -> Result<(), String> {
        match &mut self.target {
            Target::Struct(message) => message.append(buf, &[]),
            _ => self.append(buf, &[wire_type(&self.kind).default_raw()]),
        }
    }

    fn append_scalar(&mut self, buf: &[u8], raw: Raw) -> Result<(), String> {
        match &mut self.target {
            Target::Bool(b) => b.append_value(matches!(raw, Raw::Varint(v) if v != 0)),
            Target::Int8(b) => b.append_value(narrow(integer(&self.kind, raw)?)?),
            Target::Int16(b) => b.append_value(narrow(integer(&self.kind, raw)?)?),
            Target::Int32(b) => b.append_value(narrow(integer(&self.kind, raw)?)?),
            Target::Date32(b) => b.append_value(narrow(integer(&self.kind, raw)?)?),
            Target::Int64(b) => b.append_value(integer(&self.kind, raw)?),
            Target::Timestamp(b) => b.append_value(integer(&self.kind, raw)?),
            Target::Float32(b) => match raw {
                Raw::Fixed32(bits) => b.append_value(f32::from_bits(bits)),
                _ => unreachable!("wire type checked on push"),
            },
            Target::Float64(b) => match raw {
                Raw::Fixed64(bits) => b.append_value(f64::from_bits(bits)),
                _ => unreachable!("wire type checked on push"),
            },
            Target::Utf8(b, Utf8Check::PerColumn) => b.append_value(bytes(buf, raw)),
            Target::Utf8(b, Utf8Check::PerValue) => b.append_value(text(buf, raw)?),
            Target::Binary(b) => b.append_value(bytes(buf, raw)),
            Target::Decimal(b, precision, scale) => {
                let (precision, scale) = (*precision, *scale);
                let s = text(buf, raw)?;
                let value = parse_decimal::<Decimal128Type>(s, precision, scale)
                    .map_err(|e| format!("{s:?} is not a DECIMAL({precision}, {scale}): {e}"))?;
                b.append_value(value);
            }
            Target::Struct(_) => unreachable!("handled in append"),
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match &mut self.target {
            Target::Bool(b) => b.append_null(),
            Target::Int8(b) => b.append_null(),
            Target::Int16(b) => b.append_null(),
            Target::Int32(b) => b.append_null(),
            Target::Int64(b) => b.append_null(),
            Target::Date32(b) => b.append_null(),
            Target::Timestamp(b) => b.append_null(),
            Target::Float32(b) => b.append_null(),
            Target::Float64(b) => b.append_null(),
            Target::Utf8(b, _) => b.append_null(),
            Target::Binary(b) => b.append_null(),
            Target::Decimal(b, ..) => b.append_null(),
            Target::Struct(m) => m.append_null(),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, String> {
        Ok(match &mut self.target {
            Target::Bool(b) => Arc::new(b.finish()),
            Target::Int8(b) => Arc::new(b.finish()),
            Target::Int16(b) => Arc::new(b.finish()),
            Target::Int32(b) => Arc::new(b.finish()),
            Target::Int64(b) => Arc::new(b.finish()),
            Target::Date32(b) => Arc::new(b.finish()),
            Target::Timestamp(b) => Arc::new(b.finish()),
            Target::Float32(b) => Arc::new(b.finish()),
            Target::Float64(b) => Arc::new(b.finish()),
            Target::Utf8(b, _) => {
                let (offsets, values, nulls) = b.finish().into_parts();
                Arc::new(StringArray::try_new(offsets, values, nulls).map_err(|e| e.to_string())?)
            }
            Target::Binary(b) => Arc::new(b.finish()),
            Target::Decimal(b, ..) => Arc::new(b.finish()),
            Target::Struct(m) => Arc::new(m.finish_struct()?),
        })
    }
}

/// The integer value of `raw` for an integer (or enum) field of `kind`.
fn integer(kind: &Kind, raw: Raw) -> Result<i64, String> {
    Ok(match (kind, raw) {
        (Kind::Int32 | Kind::Enum(_), Raw::Varint(v)) => i64::from(v as i32),
        (Kind::Int64, Raw::Varint(v)) => v as i64,
        (Kind::Uint32, Raw::Varint(v)) => i64::from(v as u32),
        (Kind::Uint64, Raw::Varint(v)) | (Kind::Fixed64, Raw::Fixed64(v)) => i64::try_from(v)
            .map_err(|_| format!("value {v} is out of range for a signed 64-bit column"))?,
        (Kind::Sint32, Raw::Varint(v)) => {
            let v = v as u32;
            i64::from((v >> 1) as i32 ^ -((v & 1) as i32))
        }
        (Kind::Sint64, Raw::Varint(v)) => (v >> 1) as i64 ^ -((v & 1) as i64),
        (Kind::Fixed32, Raw::Fixed32(v)) => i64::from(v),
        (Kind::Sfixed32, Raw::Fixed32(v)) => i64::from(v as i32),
        (Kind::Sfixed64, Raw::Fixed64(v)) => v as i64,
        _ => unreachable!("wire type checked on push"),
    })
}

/// `value` in a narrower integer column, range-checked.
fn narrow<T: TryFrom<i64>>(value: i64) -> Result<T, String> {
    T::try_from(value).map_err(|_| {
        format!(
            "value {value} is out of range for a column of {}",
            std::any::type_name::<T>()
        )
    })
}

fn bytes(buf: &[u8], raw: Raw) -> &[u8] {
    match raw {
        Raw::Len(start, end) => &buf[start..end],
        _ => unreachable!("wire type checked on push"),
    }
}

fn text(buf: &[u8], raw: Raw) -> Result<&str, String> {
    std::str::from_utf8(bytes(buf, raw)).map_err(|e| format!("invalid UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array};
    use zerobus_test_support::events;
    /// `batch` encoded by the wrapper's encoder, and a decoder for its schema, checked to
    /// decode the records back into `batch`.
    fn round_trip(batch: &RecordBatch) -> (Vec<Vec<u8>>, ProtoDecoder) {
        let schema = batch.schema();
        let ts = Arc::new(
            arrow_zerobus_sdk_wrapper::schema::TableSchema::try_new(Arc::clone(&schema), "a.b.c")
                .unwrap(),
        );
        let enc = arrow_zerobus_sdk_wrapper::encode::RowEncoder::new(Arc::clone(&ts))
            .encode(batch)
            .unwrap();
        let records: Vec<Vec<u8>> = enc.records().map(|(_, r)| r.to_vec()).collect();
        let decoder = ProtoDecoder::new(ts.descriptor().clone()).unwrap();
        assert_eq!(&decoder.decode(&schema, &records).unwrap(), batch);
        (records, decoder)
    }

    #[test]
    fn decodes_encoder_records_back_into_the_batch() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Int32, true),
            Field::new("d", DataType::Int64, true),
        ]));
        let n: usize = 1000;
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("name-{i}")),
                )),
                Arc::new(Int32Array::from_iter_values(0..n as i32)),
                Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| -i))),
            ],
        )
        .unwrap();
        let (_, d) = round_trip(&batch);
        let err = d.decode(&schema, &[vec![0x08]]).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("record 0"), "{}", err.message());
    }

    /// The e2e bench's table (`benches/e2e.rs`): `rows` records as the wrapper encodes
    /// them.
    fn e2e_records(rows: usize) -> (SchemaRef, Vec<Vec<u8>>, ProtoDecoder) {
        let batch = events::batch(rows);
        let (records, decoder) = round_trip(&batch);
        (batch.schema(), records, decoder)
    }

    /// The outcome of decoding each set of records of the e2e table: `ok N rows` or the
    /// error's code and message.
    fn outcomes(cases: &[Vec<Vec<u8>>]) -> Vec<String> {
        let (schema, _, decoder) = e2e_records(1);
        cases
            .iter()
            .map(|records| match decoder.decode(&schema, records) {
                Ok(batch) => format!("ok {} rows", batch.num_rows()),
                Err(e) => format!("{:?}: {}", e.code(), e.message()),
            })
            .collect()
    }

    /// Malformed and invalid records fail with the error of the first bad record (and
    /// within it of the first bad field, or column): the messages as the decoder that
    /// checked UTF-8 value by value gave them.
    #[test]
    fn errors_name_the_first_bad_record() {
        // id = 1 (int64, NOT NULL), name = 2 (string), score = 3 (double), flag = 4, at = 5
        let good = |id: u8| vec![0x08, id, 0x12, 2, b'o', b'k'];
        let name = |id: u8, name: &[u8]| {
            let mut r = vec![0x08, id, 0x12, name.len() as u8];
            r.extend_from_slice(name);
            r
        };
        let cases: Vec<Vec<Vec<u8>>> = vec![
            vec![good(0), name(1, b"\xff"), good(2)],
            vec![name(0, &[0xc3]), name(1, &[0xa9])],
            vec![name(0, "é".as_bytes()), name(1, b"a\xc3")],
            vec![good(0), name(1, b"\xff"), good(2), vec![0x08]],
            vec![good(0), vec![0x08], name(2, b"\xff")],
            vec![[name(0, b"\xff"), name(0, b"ok")].concat()],
            vec![[name(0, b"ok"), name(0, b"\xfe")].concat()],
            vec![vec![0x12, 1, 0xff]],
            vec![[name(0, b"\xff"), vec![0x18, 1]].concat()],
            vec![[name(0, b"\xff"), vec![0x7a, 1, 0xff]].concat()],
            vec![good(0), vec![0x00, 0x01]],
            vec![good(0), vec![0x0b]],
            vec![good(0), vec![0x0e]],
            vec![good(0), vec![0x12, 0x05, b'a']],
            vec![good(0), vec![0x19, 1, 2, 3]],
            vec![good(0), vec![0x2d, 1, 2]],
            vec![good(0), [vec![0x08], vec![0xff; 10], vec![0x01]].concat()],
            vec![good(0), vec![0x08, 0xff, 0xff]],
            vec![good(0), vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00]],
            vec![good(0), vec![0x08, 0x01, 0x25, 1, 2, 3, 4]],
            vec![good(0), vec![0x08, 0x01, 0x20, 0x05]],
        ];
        let expected = vec![
            "InvalidArgument: record 1: column name: invalid UTF-8: invalid utf-8 sequence of 1 bytes from index 0",
            "InvalidArgument: record 0: column name: invalid UTF-8: incomplete utf-8 byte sequence from index 0",
            "InvalidArgument: record 1: column name: invalid UTF-8: incomplete utf-8 byte sequence from index 1",
            "InvalidArgument: record 1: column name: invalid UTF-8: invalid utf-8 sequence of 1 bytes from index 0",
            "InvalidArgument: record 1: truncated varint",
            "ok 1 rows",
            "InvalidArgument: record 0: column name: invalid UTF-8: invalid utf-8 sequence of 1 bytes from index 0",
            "InvalidArgument: record 0: column id is NOT NULL but the record has no value for it",
            "InvalidArgument: record 0: column score: wire type Varint does not match the field's type (Fixed64 expected)",
            "InvalidArgument: record 0: column name: invalid UTF-8: invalid utf-8 sequence of 1 bytes from index 0",
            "InvalidArgument: record 1: invalid field number 0",
            "InvalidArgument: record 1: field 1: groups are not supported",
            "InvalidArgument: record 1: field 1: invalid wire type 6",
            "InvalidArgument: record 1: field 2: length 5 runs past the message",
            "InvalidArgument: record 1: truncated 8-byte value",
            "InvalidArgument: record 1: truncated 4-byte value",
            "InvalidArgument: record 1: varint longer than 10 bytes",
            "InvalidArgument: record 1: truncated varint",
            "InvalidArgument: record 1: invalid field number 4294967296",
            "InvalidArgument: record 1: column flag: wire type Fixed32 does not match the field's type (Varint expected)",
            "ok 2 rows",
        ];
        assert_eq!(outcomes(&cases), expected);
    }

    /// Decoder throughput on the e2e bench's rows (a microbenchmark, not a check):
    /// `cargo test --release --features local --lib decode::proto::tests::decode_speed
    /// -- --ignored --nocapture` (`DECODE_ROWS`, `DECODE_ROUNDS` to change the size).
    #[test]
    #[ignore = "a benchmark"]
    fn decode_speed() {
        let var = |name: &str, default: usize| {
            std::env::var(name).map_or(default, |v| v.parse().expect("a number"))
        };
        let (rows, rounds) = (var("DECODE_ROWS", 100_000), var("DECODE_ROUNDS", 20));
        let (schema, records, decoder) = e2e_records(rows);
        let bytes: usize = records.iter().map(Vec::len).sum();
        let mut best = std::time::Duration::MAX;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            let start = std::time::Instant::now();
            std::hint::black_box(decoder.decode(&schema, &records).unwrap());
            best = best.min(start.elapsed());
        }
        let mean = started.elapsed() / rounds as u32;
        println!(
            "decode_speed: {rows} records, {bytes} bytes: best {best:?} ({:.0} MB/s), mean {mean:?}",
            bytes as f64 / best.as_secs_f64() / 1e6
        );
    }
}

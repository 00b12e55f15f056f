//! A stream's protobuf descriptor → the Arrow fields of a table created from it, within
//! limits that keep the conversion, and every later walk over the descriptor, bounded.
//!
//! A descriptor is client input: a message may contain itself (`message R { R r = 1; }`,
//! legal protobuf, but no table can hold it), nest without end, or reuse one message so
//! often that its expansion into columns grows exponentially. The conversion recurses once
//! per nesting level, so it refuses, with the field at fault named:
//! - a message that contains itself, directly or through others;
//! - nesting deeper than [`MAX_NESTING_DEPTH`] struct / list / map levels (the wrapper's
//!   own limit, counted as it counts them);
//! - more than [`MAX_SCHEMA_FIELDS`] columns and struct fields in all;
//! - field names longer than [`MAX_FIELD_NAME_BYTES`];
//! - a map entry without its key and value fields (numbers 1 and 2).
//!
//! The decoder's recursion follows the same descriptor, so these bounds are its bounds too.
//!
//! Groups and messages without fields are refused only when a table is created from the
//! descriptor ([`DescriptorShape::unsupported`]): against an existing table the decoder
//! decides (an empty message may feed a struct of nullable fields).

use std::fmt;

use arrow::datatypes::{DataType, Field};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::canonical::{list_item, map_type};

/// Deepest struct / list / map nesting of a descriptor's fields: the wrapper's
/// `schema::MAX_NESTING_DEPTH`, counted the same way (a list of messages is two levels).
pub(crate) const MAX_NESTING_DEPTH: usize = 64;

/// Most columns and (nested) struct fields one descriptor may expand to: room for the
/// widest structs a client builds (the wrapper numbers struct fields past protobuf's
/// reserved 19000-19999, so a struct may have more than 19,000 fields), while a descriptor
/// whose messages reuse each other stops expanding long before it exhausts memory.
pub(crate) const MAX_SCHEMA_FIELDS: usize = 100_000;

/// Longest field name accepted, in bytes (Unity Catalog's limit on column names).
pub(crate) const MAX_FIELD_NAME_BYTES: usize = 255;

/// What a descriptor within the limits expands to.
#[derive(Debug)]
pub(crate) struct DescriptorShape {
    /// The columns of a table created from it (every one nullable).
    pub(crate) fields: Vec<Field>,
    /// Why no table can be created from it (a group, or a message without fields).
    pub(crate) unsupported: Option<String>,
}

/// Expands `message` into table columns; an error names the first field past a limit (see
/// the module documentation).
pub(crate) fn expand(message: &MessageDescriptor) -> Result<DescriptorShape, String> {
    let mut expansion = Expansion {
        open: vec![message.full_name().to_string()],
        fields: 0,
        unsupported: None,
    };
    let fields = expansion.message_fields(message, None, 0)?;
    Ok(DescriptorShape {
        fields,
        unsupported: expansion.unsupported,
    })
}

/// A field's dotted path, built only when an error names it.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    name: &'a str,
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}.")?;
        }
        f.write_str(self.name)
    }
}

/// The state of one conversion.
struct Expansion {
    /// The messages being expanded, outermost first: one met again is a cycle.
    open: Vec<String>,
    /// Fields produced so far.
    fields: usize,
    /// The first field no table can hold.
    unsupported: Option<String>,
}

impl Expansion {
    /// Notes the first reason no table can be created from the descriptor.
    fn refuse(&mut self, reason: String) {
        self.unsupported.get_or_insert(reason);
    }

    fn message_fields(
        &mut self,
        message: &MessageDescriptor,
        parent: Option<&Path<'_>>,
        depth: usize,
    ) -> Result<Vec<Field>, String> {
        message
            .fields()
            .map(|f| {
                let path = Path {
                    parent,
                    name: f.name(),
                };
                if f.name().len() > MAX_FIELD_NAME_BYTES {
                    let start: String = f.name().chars().take(32).collect();
                    let parent = parent.map(|p| format!("{p}.")).unwrap_or_default();
                    return Err(format!(
                        "field {parent}{start}…: a name of {} bytes; names longer than \
                         {MAX_FIELD_NAME_BYTES} bytes are not supported",
                        f.name().len()
                    ));
                }
                self.fields += 1;
                if self.fields > MAX_SCHEMA_FIELDS {
                    return Err(format!(
                        "field {path}: the descriptor expands to more than {MAX_SCHEMA_FIELDS} \
                         columns and struct fields"
                    ));
                }
                Ok(Field::new(
                    f.name(),
                    self.field_type(&f, &path, depth)?,
                    true,
                ))
            })
            .collect()
    }

    fn field_type(
        &mut self,
        field: &FieldDescriptor,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<DataType, String> {
        if field.is_group() {
            self.refuse(format!("field {path}: groups are not supported"));
            return Ok(DataType::Null);
        }
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("a map field is a message field")
            };
            // prost-reflect panics on a map entry without these (the decoder asks for them).
            let (Some(key), Some(value)) = (entry.get_field(1), entry.get_field(2)) else {
                return Err(format!(
                    "field {path}: map entry {} needs a key field 1 and a value field 2",
                    entry.name()
                ));
            };
            let depth = nested(depth, path)?;
            let key = self.kind_type(&key.kind(), path, depth)?;
            let value = self.kind_type(&value.kind(), path, depth)?;
            return Ok(map_type(key, value, true));
        }
        if field.is_list() {
            let item = self.kind_type(&field.kind(), path, nested(depth, path)?)?;
            return Ok(DataType::List(list_item(item, true)));
        }
        self.kind_type(&field.kind(), path, depth)
    }

    fn kind_type(
        &mut self,
        kind: &Kind,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<DataType, String> {
        Ok(match kind {
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Enum(_) => DataType::Int32,
            Kind::Uint32 | Kind::Fixed32 => DataType::Int64,
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
                DataType::Int64
            }
            Kind::Float => DataType::Float32,
            Kind::Double => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::String => DataType::Utf8,
            Kind::Bytes => DataType::Binary,
            Kind::Message(m) => {
                if self.open.iter().any(|open| open == m.full_name()) {
                    return Err(format!(
                        "field {path}: message {} contains itself; a recursive message \
                         cannot be a table column",
                        m.full_name()
                    ));
                }
                let depth = nested(depth, path)?;
                self.open.push(m.full_name().to_string());
                let fields = self.message_fields(m, Some(path), depth)?;
                self.open.pop();
                if fields.is_empty() {
                    self.refuse(format!("field {path}: message {} has no fields", m.name()));
                }
                DataType::Struct(fields.into())
            }
        })
    }
}

/// One struct / list / map level deeper, or an error past [`MAX_NESTING_DEPTH`].
fn nested(depth: usize, path: &Path<'_>) -> Result<usize, String> {
    if depth >= MAX_NESTING_DEPTH {
        return Err(format!(
            "field {path}: nesting deeper than {MAX_NESTING_DEPTH} levels of struct/list/map \
             is not supported"
        ));
    }
    Ok(depth + 1)
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::DescriptorProto;
    use tonic::Code;
    use zerobus_test_support::data::deep_struct_batch;
    use zerobus_test_support::descriptor::{field, message};

    use super::*;
    use crate::decode::ProtoDecoder;

    /// Tokio's default worker-thread stack: where the server decodes.
    const WORKER_STACK: usize = 2 << 20;

    /// The `INVALID_ARGUMENT` message a descriptor is refused with.
    fn refusal(descriptor: DescriptorProto) -> String {
        let err = ProtoDecoder::new(descriptor).expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        err.message().to_string()
    }

    #[test]
    fn the_limit_is_the_wrappers() {
        assert_eq!(
            MAX_NESTING_DEPTH,
            arrow_zerobus_sdk_wrapper::schema::MAX_NESTING_DEPTH
        );
    }

    /// `message R { R r = 1; }`: the conversion recursed until the stack overflowed.
    #[test]
    fn a_message_that_contains_itself_is_refused() {
        let r = message("R", vec![field("r", 1, Type::Message, Some("R"))]);
        assert_eq!(
            refusal(r),
            "descriptor_proto: field r: message R contains itself; a recursive message cannot \
             be a table column"
        );

        // Through another message, a list, a map value, and fully qualified names.
        let mut outer = message(
            "Outer",
            vec![
                field("id", 1, Type::Int64, None),
                field("a", 2, Type::Message, Some(".pkg.Outer.A")),
            ],
        );
        let mut b_list = field("back", 1, Type::Message, Some(".pkg.Outer.A"));
        b_list.label = Some(Label::Repeated as i32);
        outer.nested_type = vec![
            message(
                "A",
                vec![field("b", 1, Type::Message, Some(".pkg.Outer.B"))],
            ),
            message("B", vec![b_list]),
        ];
        assert_eq!(
            refusal(outer.clone()),
            "descriptor_proto: field a.b.back: message pkg.Outer.A contains itself; a recursive \
             message cannot be a table column"
        );

        let mut map = field("m", 1, Type::Message, Some("MEntry"));
        map.label = Some(Label::Repeated as i32);
        let mut entry = message(
            "MEntry",
            vec![
                field("key", 1, Type::String, None),
                field("value", 2, Type::Message, Some("M")),
            ],
        );
        entry.options = Some(prost_types::MessageOptions {
            map_entry: Some(true),
            ..Default::default()
        });
        let mut m = message("M", vec![map]);
        m.nested_type = vec![entry];
        assert!(refusal(m).contains("field m: message M contains itself"));
    }

    /// prost-reflect's map accessors panic on an entry without fields 1 and 2.
    #[test]
    fn a_map_entry_without_key_and_value_fields_is_refused() {
        let mut map = field("m", 1, Type::Message, Some("MEntry"));
        map.label = Some(Label::Repeated as i32);
        let mut entry = message(
            "MEntry",
            vec![
                field("key", 3, Type::String, None),
                field("value", 2, Type::Int32, None),
            ],
        );
        entry.options = Some(prost_types::MessageOptions {
            map_entry: Some(true),
            ..Default::default()
        });
        let mut m = message("M", vec![map]);
        m.nested_type = vec![entry];
        assert_eq!(
            refusal(m),
            "descriptor_proto: field m: map entry MEntry needs a key field 1 and a value field 2"
        );
    }

    /// A chain of `depth` nested messages `L1 { L2 s = 1; }` … ending in `int64 v`.
    fn chain(depth: usize) -> DescriptorProto {
        let mut root = message("Root", vec![field("s", 1, Type::Message, Some("L1"))]);
        root.nested_type = (1..=depth)
            .map(|level| {
                let next = format!("L{}", level + 1);
                let inner = if level == depth {
                    field("v", 1, Type::Int64, None)
                } else {
                    field("s", 1, Type::Message, Some(&next))
                };
                message(&format!("L{level}"), vec![inner])
            })
            .collect();
        root
    }

    #[test]
    fn nesting_past_the_limit_is_refused() {
        let decoder = ProtoDecoder::new(chain(MAX_NESTING_DEPTH)).expect("64 levels are allowed");
        decoder.table_schema().expect("a table schema");
        let message = refusal(chain(MAX_NESTING_DEPTH + 1));
        assert!(
            message
                .ends_with(": nesting deeper than 64 levels of struct/list/map is not supported"),
            "{message}"
        );
        assert!(
            message.starts_with("descriptor_proto: field s.s.s."),
            "{message}"
        );
    }

    /// Every message has two fields of the next one: 2^30 columns if expanded.
    #[test]
    fn an_exponential_expansion_is_refused() {
        let mut root = message("Root", vec![field("a", 1, Type::Message, Some("M0"))]);
        root.nested_type = (0..30)
            .map(|i| {
                let next = format!("M{}", i + 1);
                let ty = if i == 29 { Type::Int32 } else { Type::Message };
                let next = (i < 29).then_some(next.as_str());
                message(
                    &format!("M{i}"),
                    vec![field("x", 1, ty, next), field("y", 2, ty, next)],
                )
            })
            .collect();
        let started = std::time::Instant::now();
        assert!(refusal(root).contains("expands to more than 100000 columns"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn long_field_names_are_refused() {
        let long = "n".repeat(MAX_FIELD_NAME_BYTES + 1);
        let message_text = refusal(message("R", vec![field(&long, 1, Type::Int32, None)]));
        assert!(
            message_text.contains("a name of 256 bytes"),
            "{message_text}"
        );
        let ok = "n".repeat(MAX_FIELD_NAME_BYTES);
        ProtoDecoder::new(message("R", vec![field(&ok, 1, Type::Int32, None)])).unwrap();
    }

    /// The deepest descriptor allowed, from the wrapper's encoder, decodes on a worker's
    /// stack: the decoder recurses once per level, and the levels are bounded.
    #[test]
    fn the_deepest_allowed_descriptor_decodes_on_a_worker_stack() {
        let batch = deep_struct_batch(MAX_NESTING_DEPTH);
        let table = Arc::new(
            arrow_zerobus_sdk_wrapper::schema::TableSchema::try_new(batch.schema(), "a.b.c")
                .expect("the wrapper accepts 64 levels"),
        );
        let records = arrow_zerobus_sdk_wrapper::encode::RowEncoder::new(Arc::clone(&table))
            .encode(&batch)
            .unwrap();
        let records: Vec<Vec<u8>> = records.records().map(|(_, r)| r.to_vec()).collect();
        let descriptor = table.descriptor().clone();
        let decoded = std::thread::Builder::new()
            .stack_size(WORKER_STACK)
            .spawn(move || {
                let decoder = ProtoDecoder::new(descriptor).unwrap();
                let schema = decoder.table_schema().unwrap();
                decoder.check(&schema).unwrap();
                decoder.decode(&batch.schema(), &records).unwrap() == batch
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(decoded);
    }
}

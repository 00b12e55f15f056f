//! A `DescriptorProto` written back as `.proto` source (proto2), nested messages and
//! map fields included.

use std::fmt::Write as _;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto};

/// `syntax = "proto2";` and `message`, as `.proto` text.
pub fn proto_file(message: &DescriptorProto) -> String {
    let mut out = String::from("syntax = \"proto2\";\n\n");
    write_message(&mut out, message, 0);
    out
}

fn write_message(out: &mut String, message: &DescriptorProto, depth: usize) {
    let indent = "  ".repeat(depth);
    let _ = writeln!(out, "{indent}message {} {{", message.name());
    for nested in &message.nested_type {
        if !is_map_entry(nested) {
            write_message(out, nested, depth + 1);
        }
    }
    for field in &message.field {
        let _ = writeln!(
            out,
            "{indent}  {} {} = {};",
            field_type(message, field),
            field.name(),
            field.number()
        );
    }
    let _ = writeln!(out, "{indent}}}");
}

fn is_map_entry(message: &DescriptorProto) -> bool {
    message
        .options
        .as_ref()
        .is_some_and(|options| options.map_entry())
}

/// `optional int64`, `repeated string`, `map<string, int32>`, `optional Nested`.
fn field_type(parent: &DescriptorProto, field: &FieldDescriptorProto) -> String {
    if let Some(entry) = referenced_map_entry(parent, field) {
        let key = entry
            .field
            .first()
            .map_or_else(String::new, scalar_or_message);
        let value = entry
            .field
            .get(1)
            .map_or_else(String::new, scalar_or_message);
        return format!("map<{key}, {value}>");
    }
    let label = match field.label() {
        Label::Optional => "optional",
        Label::Required => "required",
        Label::Repeated => "repeated",
    };
    format!("{label} {}", scalar_or_message(field))
}

/// The nested map-entry message `field` refers to, if it is a map field.
fn referenced_map_entry<'a>(
    parent: &'a DescriptorProto,
    field: &FieldDescriptorProto,
) -> Option<&'a DescriptorProto> {
    if field.label() != Label::Repeated || field.r#type() != Type::Message {
        return None;
    }
    let name = field.type_name().rsplit('.').next()?;
    parent
        .nested_type
        .iter()
        .find(|nested| nested.name() == name && is_map_entry(nested))
}

fn scalar_or_message(field: &FieldDescriptorProto) -> String {
    let name = match field.r#type() {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
        Type::Group | Type::Message | Type::Enum => {
            return field.type_name().trim_start_matches('.').to_string()
        }
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Fields, Schema};
    use arrow_zerobus_sdk_wrapper::schema::TableSchema;

    use super::*;

    #[test]
    fn scalars_lists_structs_and_maps_are_written_as_proto2() {
        let entries = Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int32, true),
        ]);
        let map = DataType::Map(
            Arc::new(Field::new("entries", DataType::Struct(entries), false)),
            false,
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
            Field::new(
                "loc",
                DataType::Struct(vec![Field::new("lat", DataType::Float64, true)].into()),
                true,
            ),
            Field::new("attrs", map, true),
        ]));
        let table = TableSchema::try_new(schema, "main.demo.events").unwrap();
        let text = proto_file(table.descriptor());
        assert!(
            text.starts_with("syntax = \"proto2\";\n\nmessage events {\n"),
            "{text}"
        );
        for line in [
            "  optional int64 id = 1;",
            "  repeated string tags = 2;",
            "  map<string, int32> attrs = 4;",
            "    optional double lat = 1;",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert!(text.contains("loc = 3;"), "{text}");
        assert!(!text.contains("message AttrsEntry"), "{text}");
    }
}

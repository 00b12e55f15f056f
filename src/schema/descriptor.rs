//! Columns to a proto2 `DescriptorProto`.
//!
//! The descriptor is self-contained: every nested message lives in the `nested_type` of the
//! message that uses it and is referenced by its bare name, as the official SDK's own
//! `descriptor_from_uc_columns` does. Struct, list-element and map-value messages get names
//! that are unique in the whole descriptor (so a bare name can never resolve to the wrong
//! message); map entries get the `<Field>Entry` name protobuf requires.

use prost_types::field_descriptor_proto::Label;
use prost_types::{DescriptorProto, FieldDescriptorProto, MessageOptions};

use super::names::{camel_case, join_path, schema_error, MessageNames};
use super::types::DeltaType;
use super::TableColumn;
use crate::error::{ConversionErrorKind, ZerobusError};

/// Builds the descriptor of a message named `message_name` with one field per column.
pub(crate) fn build_descriptor(
    message_name: &str,
    columns: &[TableColumn],
) -> Result<DescriptorProto, ZerobusError> {
    let mut names = MessageNames::default();
    names.reserve(message_name);
    reserve_map_entries(columns, None, &mut names)?;
    Ok(message(message_name.to_string(), columns, None, &mut names))
}

/// Map entry names are dictated by protobuf, so they are taken before any other name.
fn reserve_map_entries(
    columns: &[TableColumn],
    parent: Option<&str>,
    names: &mut MessageNames,
) -> Result<(), ZerobusError> {
    let mut in_scope = std::collections::HashMap::new();
    for column in columns {
        let path = join_path(parent, &column.name);
        if matches!(column.data_type, DeltaType::Map { .. }) {
            let entry = entry_name(&column.name);
            if let Some(other) = in_scope.insert(entry.clone(), column.name.clone()) {
                return Err(schema_error(
                    ConversionErrorKind::InvalidColumnName,
                    &path,
                    format!(
                        "column `{path}`: map columns `{other}` and `{}` would share the \
                         protobuf entry message name {entry}; rename one of them",
                        column.name
                    ),
                ));
            }
            names.reserve(&entry);
        }
        for inner in nested_columns(&column.data_type) {
            reserve_map_entries(inner, Some(&path), names)?;
        }
    }
    Ok(())
}

/// The struct fields reachable from a type without passing another struct.
fn nested_columns(data_type: &DeltaType) -> Vec<&[TableColumn]> {
    match data_type {
        DeltaType::Struct(fields) => vec![fields.as_slice()],
        DeltaType::Array(element) => nested_columns(element),
        DeltaType::Map { value, .. } => nested_columns(value),
        _ => Vec::new(),
    }
}

fn entry_name(field_name: &str) -> String {
    format!("{}Entry", camel_case(field_name))
}

fn message(
    name: String,
    columns: &[TableColumn],
    parent: Option<&str>,
    names: &mut MessageNames,
) -> DescriptorProto {
    let mut descriptor = DescriptorProto {
        name: Some(name),
        ..Default::default()
    };
    for column in columns {
        let path = join_path(parent, &column.name);
        let field = field(column, &path, &mut descriptor.nested_type, names);
        descriptor.field.push(field);
    }
    descriptor
}

/// The field for `column`; any message type it needs is appended to `scope`.
fn field(
    column: &TableColumn,
    path: &str,
    scope: &mut Vec<DescriptorProto>,
    names: &mut MessageNames,
) -> FieldDescriptorProto {
    let (label, value_type) = match &column.data_type {
        DeltaType::Array(element) => (Label::Repeated, element.as_ref()),
        DeltaType::Map { .. } => (Label::Repeated, &column.data_type),
        other => (Label::Optional, other),
    };
    let type_name = match value_type {
        DeltaType::Struct(fields) => {
            let suffix = if label == Label::Repeated {
                "Element"
            } else {
                ""
            };
            let name = names.unique(format!("{}{suffix}", camel_case(&path.replace('.', "_"))));
            scope.push(message(name.clone(), fields, Some(path), names));
            Some(name)
        }
        DeltaType::Map { key, value } => {
            let entry = map_entry(&column.name, key, value, path, scope, names);
            let name = entry.name.clone();
            scope.push(entry);
            name
        }
        _ => None,
    };
    FieldDescriptorProto {
        name: Some(column.name.clone()),
        number: Some(i32::try_from(column.field_number).expect("field numbers are small")),
        label: Some(label as i32),
        r#type: Some(value_type.proto_type() as i32),
        type_name,
        ..Default::default()
    }
}

/// `message <Field>Entry { optional K key = 1; optional V value = 2; }` with `map_entry`.
/// A struct value's message goes into `scope` beside the entry: entries hold no nested types.
fn map_entry(
    field_name: &str,
    key: &DeltaType,
    value: &DeltaType,
    path: &str,
    scope: &mut Vec<DescriptorProto>,
    names: &mut MessageNames,
) -> DescriptorProto {
    let mut value_type_name = None;
    if let DeltaType::Struct(fields) = value {
        let name = names.unique(format!("{}Value", camel_case(&path.replace('.', "_"))));
        scope.push(message(name.clone(), fields, Some(path), names));
        value_type_name = Some(name);
    }
    let scalar = |name: &str, number: i32, data_type: &DeltaType, type_name: Option<String>| {
        FieldDescriptorProto {
            name: Some(name.to_string()),
            number: Some(number),
            label: Some(Label::Optional as i32),
            r#type: Some(data_type.proto_type() as i32),
            type_name,
            ..Default::default()
        }
    };
    DescriptorProto {
        name: Some(entry_name(field_name)),
        field: vec![
            scalar("key", 1, key, None),
            scalar("value", 2, value, value_type_name),
        ],
        options: Some(MessageOptions {
            map_entry: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

//! Helpers shared by the debug module's tests.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet};

use super::rotation::RotatedNames;
use super::{DebugSettings, DebugWriter};

/// Arrow on, protobuf off, no rotation.
pub(crate) fn arrow_settings(dir: &Path) -> DebugSettings {
    DebugSettings {
        output_dir: dir.to_path_buf(),
        arrow_enabled: true,
        protobuf_enabled: false,
        max_file_size: None,
        rotation_interval: None,
        max_files_retained: None,
        flush_interval: Duration::from_secs(5),
    }
}

/// Protobuf on, Arrow off, no rotation.
pub(crate) fn proto_settings(dir: &Path) -> DebugSettings {
    DebugSettings {
        arrow_enabled: false,
        protobuf_enabled: true,
        ..arrow_settings(dir)
    }
}

/// `len` rows of a non-null Int64 column `id`, counting from `start`.
pub(crate) fn id_batch(start: i64, len: i64) -> RecordBatch {
    let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
    let ids = Int64Array::from_iter_values(start..start + len);
    RecordBatch::try_new(Arc::new(schema), vec![Arc::new(ids)]).unwrap()
}

/// A Utf8 column `name`.
pub(crate) fn name_batch(names: &[&str]) -> RecordBatch {
    let schema = Schema::new(vec![Field::new("name", DataType::Utf8, true)]);
    let column = StringArray::from(names.to_vec());
    RecordBatch::try_new(Arc::new(schema), vec![Arc::new(column)]).unwrap()
}

/// Every batch of the IPC stream at `path`.
pub(crate) fn read_stream(path: &Path) -> Vec<RecordBatch> {
    let reader = StreamReader::try_new(File::open(path).unwrap(), None).unwrap();
    reader.collect::<Result<_, _>>().unwrap()
}

/// The records of a length-delimited file.
pub(crate) fn read_delimited(path: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(path).unwrap();
    let mut rest = &bytes[..];
    let mut records = Vec::new();
    while !rest.is_empty() {
        let len = prost::encoding::decode_varint(&mut rest).unwrap() as usize;
        records.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    records
}

/// The writer's Arrow files, rotated ones oldest first, then the active file.
pub(crate) fn arrow_files_in_order(writer: &DebugWriter) -> Vec<PathBuf> {
    files_in_order(&writer.active_arrow_path())
}

/// The writer's `.pb` files, rotated ones oldest first, then the active file.
pub(crate) fn proto_files_in_order(writer: &DebugWriter) -> Vec<PathBuf> {
    files_in_order(&writer.active_proto_path())
}

fn files_in_order(active: &Path) -> Vec<PathBuf> {
    let stem = active.file_stem().unwrap().to_str().unwrap();
    let names = RotatedNames::new(stem);
    let mut rotated: Vec<_> = fs::read_dir(active.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension() == active.extension())
        .filter_map(|path| {
            let key = names.key_of(path.file_stem()?.to_str()?)?;
            Some((key, path))
        })
        .collect();
    rotated.sort();
    let mut files: Vec<_> = rotated.into_iter().map(|(_, path)| path).collect();
    if active.exists() {
        files.push(active.to_path_buf());
    }
    files
}

/// `package test; message <name> { int64 id = 1; string name = 2; }`.
pub(crate) fn row_descriptor(message_name: &str) -> FileDescriptorSet {
    let field = |name: &str, number, kind: Type| FieldDescriptorProto {
        name: Some(name.to_string()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(kind as i32),
        json_name: Some(name.to_string()),
        ..Default::default()
    };
    FileDescriptorSet {
        file: vec![FileDescriptorProto {
            name: Some("test.proto".to_string()),
            package: Some("test".to_string()),
            syntax: Some("proto3".to_string()),
            message_type: vec![DescriptorProto {
                name: Some(message_name.to_string()),
                field: vec![field("id", 1, Type::Int64), field("name", 2, Type::String)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn message_of(descriptor: &FileDescriptorSet) -> MessageDescriptor {
    let pool = DescriptorPool::from_file_descriptor_set(descriptor.clone()).unwrap();
    let message = pool.all_messages().next().unwrap();
    message
}

/// One record of [`row_descriptor`], encoded with prost-reflect.
pub(crate) fn encode_row(descriptor: &FileDescriptorSet, id: i64, name: &str) -> Vec<u8> {
    let mut message = DynamicMessage::new(message_of(descriptor));
    message.set_field_by_number(1, Value::I64(id));
    message.set_field_by_number(2, Value::String(name.to_string()));
    prost::Message::encode_to_vec(&message)
}

/// The `id` of a record of [`row_descriptor`].
pub(crate) fn decode_row_id(descriptor: &FileDescriptorSet, record: &[u8]) -> i64 {
    let message = DynamicMessage::decode(message_of(descriptor), record).unwrap();
    message.get_field_by_number(1).unwrap().as_i64().unwrap()
}

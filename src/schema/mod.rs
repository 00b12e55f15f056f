//! Arrow schema → validated [`TableSchema`] → proto2 `DescriptorProto`.
//!
//! [`TableSchema::try_new`] checks everything Zerobus would reject before a byte is sent:
//! at most [`MAX_COLUMNS`] top-level columns, ASCII column names
//! (`[A-Za-z_][A-Za-z0-9_]*`, unique ignoring case), nesting no deeper than
//! [`MAX_NESTING_DEPTH`], and types with a Delta equivalent (see [`types`] for the mapping).
//! Field numbers follow column order, 1..n, skipping 19000-19999, which protobuf reserves
//! ([`field_number`]); scalar fields are `optional`, lists and maps `repeated`, structs
//! nested messages.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::datatypes::{DataType, Field, Schema};
//! use arrow_zerobus_sdk_wrapper::schema::TableSchema;
//!
//! let arrow = Arc::new(Schema::new(vec![
//!     Field::new("id", DataType::Int64, false),
//!     Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
//! ]));
//! let schema = TableSchema::try_new(arrow, "main.events.clicks")?;
//! let descriptor = schema.descriptor();
//! assert_eq!(descriptor.name(), "clicks");
//! assert_eq!(descriptor.field[1].number(), 2);
//! assert_eq!(schema.columns()[1].data_type.sql_name(), "ARRAY<STRING>");
//! # Ok::<(), arrow_zerobus_sdk_wrapper::ZerobusError>(())
//! ```

mod descriptor;
mod names;
pub mod types;

use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

pub use names::is_valid_column_name;
pub use types::DeltaType;

use crate::error::{ConversionErrorKind, ZerobusError};

/// Zerobus accepts at most this many top-level columns.
pub const MAX_COLUMNS: usize = 2000;

/// Field numbers protobuf reserves for its own use: no field may have one.
pub const RESERVED_FIELD_NUMBERS: std::ops::RangeInclusive<u32> = 19_000..=19_999;

/// The largest protobuf field number.
const MAX_FIELD_NUMBER: u32 = 536_870_911;

/// Most fields of one struct (or top-level columns): the field numbers 1 to
/// 536,870,911 without the [`RESERVED_FIELD_NUMBERS`].
pub const MAX_STRUCT_FIELDS: usize = (MAX_FIELD_NUMBER - 1000) as usize;

/// The protobuf field number of the field at `index` (from 0) of a message: `index + 1`,
/// skipping the [`RESERVED_FIELD_NUMBERS`], so the 19,000th field is number 20,000. The
/// descriptor and the encoder both number fields with it; `None` past
/// [`MAX_STRUCT_FIELDS`].
///
/// ```
/// use arrow_zerobus_sdk_wrapper::schema::field_number;
///
/// assert_eq!(field_number(0), Some(1));
/// assert_eq!(field_number(18_998), Some(18_999));
/// assert_eq!(field_number(18_999), Some(20_000));
/// ```
pub fn field_number(index: usize) -> Option<u32> {
    let number = u32::try_from(index).ok()?.checked_add(1)?;
    let number = if number >= *RESERVED_FIELD_NUMBERS.start() {
        number.checked_add(1000)?
    } else {
        number
    };
    (number <= MAX_FIELD_NUMBER).then_some(number)
}

/// Deepest struct / list / map nesting accepted (prost and most decoders recurse at most 100).
pub const MAX_NESTING_DEPTH: usize = 64;

/// One column of a table, or one field of a struct, as Zerobus sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableColumn {
    /// The column name.
    pub name: String,
    /// The protobuf field number: position in the parent + 1, past 19,000 + 1001
    /// ([`field_number`]).
    pub field_number: u32,
    /// Whether the Arrow field is nullable.
    pub nullable: bool,
    /// The Delta type the column lands as.
    pub data_type: DeltaType,
}

/// An Arrow schema validated for Zerobus, with its protobuf descriptor.
///
/// Build it once per schema: the descriptor is computed in [`TableSchema::try_new`].
#[derive(Debug, Clone)]
pub struct TableSchema {
    arrow_schema: SchemaRef,
    columns: Vec<TableColumn>,
    descriptor: DescriptorProto,
}

impl TableSchema {
    /// Validates `arrow_schema` for the table `table_name` and builds its descriptor.
    ///
    /// The message is named after the last part of the table name (`cat.sch.events` →
    /// `events`), or `Record` if that is not a valid protobuf identifier.
    ///
    /// # Errors
    /// A [`ZerobusError::ConversionError`] naming the column and the rule: too many columns,
    /// a bad name, an unsupported type (with a suggested cast), nesting too deep.
    pub fn try_new(arrow_schema: SchemaRef, table_name: &str) -> Result<Self, ZerobusError> {
        let count = arrow_schema.fields().len();
        if count > MAX_COLUMNS {
            return Err(ZerobusError::conversion(
                ConversionErrorKind::TooManyColumns,
                format!(
                    "schema has {count} columns; Zerobus accepts at most {MAX_COLUMNS} \
                     columns per table"
                ),
            ));
        }
        let columns = types::map_fields(arrow_schema.fields(), None, 0)?;
        let descriptor = descriptor::build_descriptor(&message_name(table_name), &columns)?;
        Ok(Self {
            arrow_schema,
            columns,
            descriptor,
        })
    }

    /// The Arrow schema this was built from.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow_schema
    }

    /// The columns in field-number order.
    pub fn columns(&self) -> &[TableColumn] {
        &self.columns
    }

    /// The proto2 descriptor the service receives (a bare `DescriptorProto`).
    pub fn descriptor(&self) -> &DescriptorProto {
        &self.descriptor
    }

    /// The message name of the descriptor.
    pub fn message_name(&self) -> &str {
        self.descriptor.name()
    }

    /// The descriptor wrapped in a one-file `FileDescriptorSet` (`syntax = "proto2"`, no
    /// package), the form `protoc --descriptor_set_in` and prost-reflect's `DescriptorPool`
    /// read.
    pub fn file_descriptor_set(&self) -> FileDescriptorSet {
        FileDescriptorSet {
            file: vec![FileDescriptorProto {
                name: Some(format!("{}.proto", self.message_name())),
                syntax: Some("proto2".to_string()),
                message_type: vec![self.descriptor.clone()],
                ..Default::default()
            }],
        }
    }
}

/// The last part of a table name, if it can name a protobuf message.
fn message_name(table_name: &str) -> String {
    let last = table_name.rsplit('.').next().unwrap_or_default();
    if is_valid_column_name(last) {
        last.to_string()
    } else {
        "Record".to_string()
    }
}

/// How many distinct schemas [`SchemaCache`] remembers.
const CACHED_SCHEMAS: usize = 8;

/// Remembers the [`TableSchema`] of recently seen Arrow schemas, so a descriptor is built
/// once per schema rather than once per batch.
#[derive(Debug)]
pub(crate) struct SchemaCache {
    table_name: String,
    recent: Mutex<Vec<Arc<TableSchema>>>,
}

impl SchemaCache {
    pub(crate) fn new(table_name: impl Into<String>) -> Self {
        Self {
            table_name: table_name.into(),
            recent: Mutex::new(Vec::new()),
        }
    }

    /// The table schema for `arrow_schema`, built on first sight.
    pub(crate) fn get(&self, arrow_schema: &SchemaRef) -> Result<Arc<TableSchema>, ZerobusError> {
        let find = |recent: &[Arc<TableSchema>]| {
            recent
                .iter()
                .find(|s| {
                    Arc::ptr_eq(&s.arrow_schema, arrow_schema) || s.arrow_schema == *arrow_schema
                })
                .cloned()
        };
        if let Some(hit) = find(&self.lock()) {
            return Ok(hit);
        }
        // Built outside the lock: concurrent first sights of one schema may both build it.
        let built = Arc::new(TableSchema::try_new(
            arrow_schema.clone(),
            &self.table_name,
        )?);
        let mut recent = self.lock();
        if recent.len() == CACHED_SCHEMAS {
            recent.remove(0);
        }
        recent.push(built.clone());
        Ok(built)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<TableSchema>>> {
        // The cache holds no invariant a panic could break, so a poisoned lock is still usable.
        self.recent
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
    use prost_reflect::{DescriptorPool, Kind};

    use super::*;

    fn pool(schema: &TableSchema) -> prost_reflect::MessageDescriptor {
        let pool = DescriptorPool::from_file_descriptor_set(schema.file_descriptor_set())
            .expect("our descriptor must be valid protobuf");
        pool.get_message_by_name(schema.message_name()).unwrap()
    }

    /// A schema with one struct column `wide` of `n` nullable Int32 fields `f0`, `f1`, ...
    pub(crate) fn wide_struct(n: usize) -> Schema {
        let fields: Fields = (0..n)
            .map(|i| Field::new(format!("f{i}"), DataType::Int32, true))
            .collect();
        Schema::new(vec![Field::new("wide", DataType::Struct(fields), true)])
    }

    #[test]
    fn struct_field_numbers_skip_the_range_protobuf_reserves() {
        let schema = TableSchema::try_new(Arc::new(wide_struct(19_001)), "c.s.t").unwrap();
        let wide = &schema.descriptor().nested_type[0];
        let numbers: Vec<i32> = wide.field.iter().map(|f| f.number()).collect();
        assert_eq!(numbers[18_998], 18_999);
        assert_eq!(numbers[18_999], 20_000);
        assert_eq!(numbers[19_000], 20_001);
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in field order");
        assert!(!numbers.iter().any(|n| (19_000..=19_999).contains(n)));
        let columns = match &schema.columns()[0].data_type {
            DeltaType::Struct(columns) => columns,
            other => panic!("{other:?}"),
        };
        assert_eq!(columns[18_999].field_number, 20_000);
        // prost-reflect, which the SDK's dynamic-proto streams use, accepts it (it refuses
        // reserved numbers).
        let message = pool(&schema);
        let wide = message.get_field_by_name("wide").unwrap();
        let Kind::Message(wide) = wide.kind() else {
            panic!("wide is a message")
        };
        assert_eq!(wide.get_field_by_name("f18999").unwrap().number(), 20_000);
    }

    #[test]
    fn field_numbers_end_at_protobuf_s_largest() {
        assert_eq!(field_number(MAX_STRUCT_FIELDS - 1), Some(536_870_911));
        assert_eq!(field_number(MAX_STRUCT_FIELDS), None);
        assert_eq!(field_number(usize::MAX), None);
    }

    fn nested_schema() -> Schema {
        let point = Fields::from(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("y", DataType::Float64, true),
        ]);
        let address = Fields::from(vec![
            Field::new("zip", DataType::Utf8, true),
            Field::new("geo", DataType::Struct(point.clone()), true),
        ]);
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("address", DataType::Struct(address), true),
            Field::new(
                "points",
                DataType::new_list(DataType::Struct(point), true),
                true,
            ),
            Field::new_map(
                "tags",
                "entries",
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Int32, true),
                false,
                true,
            ),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ),
        ])
    }

    #[test]
    fn descriptor_is_valid_and_self_contained() {
        let schema = TableSchema::try_new(Arc::new(nested_schema()), "c.s.events").unwrap();
        let message = pool(&schema);
        assert_eq!(message.name(), "events");
        let numbers: Vec<u32> = message.fields().map(|f| f.number()).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5]);

        let address = message.get_field_by_name("address").unwrap();
        let Kind::Message(address) = address.kind() else {
            panic!()
        };
        let geo = address.get_field_by_name("geo").unwrap();
        assert!(matches!(geo.kind(), Kind::Message(m) if m.fields().count() == 2));

        let points = message.get_field_by_name("points").unwrap();
        assert!(points.is_list());
        let tags = message.get_field_by_name("tags").unwrap();
        assert!(tags.is_map());
        assert_eq!(message.get_field_by_name("ts").unwrap().kind(), Kind::Int64);
        // Every type reference is a bare name: nothing points outside the descriptor.
        let text = format!("{:?}", schema.descriptor());
        assert!(!text.contains("type_name: Some(\"."), "{text}");
    }

    #[test]
    fn message_names_do_not_collide() {
        // A struct column whose CamelCase name equals a map's entry name.
        let schema = Schema::new(vec![
            Field::new(
                "tags_entry",
                DataType::Struct(vec![Field::new("a", DataType::Int32, true)].into()),
                true,
            ),
            Field::new_map(
                "tags",
                "entries",
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
                false,
                true,
            ),
        ]);
        let schema = TableSchema::try_new(Arc::new(schema), "t").unwrap();
        let message = pool(&schema);
        assert!(message.get_field_by_name("tags").unwrap().is_map());
        let Kind::Message(s) = message.get_field_by_name("tags_entry").unwrap().kind() else {
            panic!()
        };
        assert_eq!(s.fields().count(), 1);
    }

    #[test]
    fn limits_are_checked() {
        let wide: Vec<Field> = (0..=MAX_COLUMNS)
            .map(|i| Field::new(format!("c{i}"), DataType::Int32, true))
            .collect();
        let err = TableSchema::try_new(Arc::new(Schema::new(wide)), "t").unwrap_err();
        assert!(err.to_string().contains("2001 columns"), "{err}");
        assert!(err.to_string().contains("at most 2000"), "{err}");

        let exactly: Vec<Field> = (0..MAX_COLUMNS)
            .map(|i| Field::new(format!("c{i}"), DataType::Int32, true))
            .collect();
        let schema = TableSchema::try_new(Arc::new(Schema::new(exactly)), "t").unwrap();
        assert_eq!(pool(&schema).fields().count(), MAX_COLUMNS);

        let bad = Schema::new(vec![Field::new("naïve", DataType::Int32, true)]);
        let err = TableSchema::try_new(Arc::new(bad), "t").unwrap_err();
        assert_eq!(
            err.conversion_failure().unwrap().column.as_deref(),
            Some("naïve")
        );
    }

    #[test]
    fn message_name_falls_back_for_odd_table_names() {
        assert_eq!(message_name("a.b.events"), "events");
        assert_eq!(message_name("7up"), "Record");
    }

    #[test]
    fn cache_builds_once_per_schema() {
        let cache = SchemaCache::new("t");
        let a = Arc::new(nested_schema());
        let first = cache.get(&a).unwrap();
        let again = cache.get(&Arc::new(nested_schema())).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Int8, true)]));
        assert!(!Arc::ptr_eq(&cache.get(&other).unwrap(), &first));
    }
}

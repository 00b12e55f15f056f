//! The canonical table schema: the Arrow types delta-kernel reads a Delta table back as.
//!
//! Every table of the local server has a canonical schema, whatever schema it was created
//! from (a user's Arrow schema, a Flight stream's schema, a protobuf descriptor or JSON
//! records), so rows that land in Delta read back with exactly the table's schema:
//!
//! | any of | canonical |
//! |---|---|
//! | Utf8, LargeUtf8, Utf8View | Utf8 |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | Binary |
//! | UInt8, UInt16, UInt32 | Int16, Int32, Int64 (the next wider signed type) |
//! | Timestamp(any unit, Some(tz)) | Timestamp(Microsecond, Some("UTC")) (Delta TIMESTAMP) |
//! | Timestamp(any unit, None) | Timestamp(Microsecond, None) (Delta TIMESTAMP_NTZ) |
//! | Float16 | Float32 |
//! | Date64 | Date32 |
//! | Decimal32/64/128/256(p, s), p ≤ 38 | Decimal128(p, s) |
//! | Dictionary(_, V), RunEndEncoded(_, V) | canonical V |
//! | List, LargeList, FixedSizeList, ListView, LargeListView | List(`element`) |
//! | Map | Map(`key_value` not null: Struct<`key` not null, `value`>, unsorted) |
//!
//! The list item and map entry names and nullabilities are delta-kernel's
//! (`engine::arrow_conversion`: `element`, `key_value`, `key`, `value`).
//! Field metadata is dropped (delta-kernel adds its own on read).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use tonic::Status;

/// The name of a list's item field.
pub(crate) const LIST_ITEM: &str = "element";
/// The name of a map's entries field.
pub(crate) const MAP_ENTRIES: &str = "key_value";
/// The name of a map entry's key field.
pub(crate) const MAP_KEY: &str = "key";
/// The name of a map entry's value field.
pub(crate) const MAP_VALUE: &str = "value";

/// The time zone of every Delta TIMESTAMP column.
const UTC: &str = "UTC";

/// The largest decimal precision Delta accepts.
const MAX_DECIMAL_PRECISION: u8 = 38;

/// `schema` with every column in its canonical type (see the module documentation).
///
/// # Errors
/// `INVALID_ARGUMENT` naming the column for a type Delta cannot store (Time, Duration,
/// Interval, Union, UInt64, Null, decimals wider than 38 digits, an empty struct).
pub(crate) fn canonical_schema(schema: &Schema) -> Result<SchemaRef, Status> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| canonical_field(f, f.name()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// `field` (at `path`) in its canonical type, keeping its name and nullability.
fn canonical_field(field: &Field, path: &str) -> Result<Field, Status> {
    Ok(Field::new(
        field.name(),
        canonical_type(field.data_type(), path)?,
        field.is_nullable(),
    ))
}

/// A list item field of the canonical item type.
pub(crate) fn list_item(data_type: DataType, nullable: bool) -> FieldRef {
    Arc::new(Field::new(LIST_ITEM, data_type, nullable))
}

/// A map type with canonical entry names.
pub(crate) fn map_type(key: DataType, value: DataType, value_nullable: bool) -> DataType {
    let entries = Fields::from(vec![
        Field::new(MAP_KEY, key, false),
        Field::new(MAP_VALUE, value, value_nullable),
    ]);
    DataType::Map(
        Arc::new(Field::new(MAP_ENTRIES, DataType::Struct(entries), false)),
        false,
    )
}

fn canonical_type(data_type: &DataType, path: &str) -> Result<DataType, Status> {
    use DataType as D;
    Ok(match data_type {
        D::Boolean | D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::Float32 | D::Float64 => {
            data_type.clone()
        }
        D::Date32 | D::Date64 => D::Date32,
        D::Float16 => D::Float32,
        D::UInt8 => D::Int16,
        D::UInt16 => D::Int32,
        D::UInt32 => D::Int64,
        D::Utf8 | D::LargeUtf8 | D::Utf8View => D::Utf8,
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => D::Binary,
        D::Timestamp(_, tz) => D::Timestamp(TimeUnit::Microsecond, tz.as_ref().map(|_| UTC.into())),
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) | D::Decimal256(p, s) => {
            if *p > MAX_DECIMAL_PRECISION {
                return Err(unsupported(
                    path,
                    data_type,
                    "Delta decimals have at most 38 digits",
                ));
            }
            D::Decimal128(*p, *s)
        }
        D::Dictionary(_, values) => canonical_type(values, path)?,
        D::RunEndEncoded(_, values) => canonical_type(values.data_type(), path)?,
        D::List(item)
        | D::LargeList(item)
        | D::FixedSizeList(item, _)
        | D::ListView(item)
        | D::LargeListView(item) => D::List(list_item(
            canonical_type(item.data_type(), &format!("{path}.{LIST_ITEM}"))?,
            item.is_nullable(),
        )),
        D::Struct(fields) => {
            if fields.is_empty() {
                return Err(unsupported(path, data_type, "a struct needs fields"));
            }
            D::Struct(
                fields
                    .iter()
                    .map(|f| canonical_field(f, &format!("{path}.{}", f.name())))
                    .collect::<Result<Fields, _>>()?,
            )
        }
        D::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(unsupported(path, data_type, "map entries must be a struct"));
            };
            let [key, value] = kv.iter().collect::<Vec<_>>()[..] else {
                return Err(unsupported(path, data_type, "map entries need 2 fields"));
            };
            map_type(
                canonical_type(key.data_type(), &format!("{path}.{MAP_KEY}"))?,
                canonical_type(value.data_type(), &format!("{path}.{MAP_VALUE}"))?,
                value.is_nullable(),
            )
        }
        other => {
            return Err(unsupported(
                path,
                other,
                "Delta has no such type (cast it first)",
            ))
        }
    })
}

fn unsupported(path: &str, data_type: &DataType, why: &str) -> Status {
    Status::invalid_argument(format!(
        "column {path}: type {data_type} cannot be stored: {why}"
    ))
}

/// `batch` cast to `table`, the canonical schema of a table, column by column (matched
/// by name; a table column missing from `batch` is filled with nulls). Casts are checked
/// (an overflow or an unparsable decimal text is an error, not a null); timestamps lose
/// their sub-microsecond part.
///
/// # Errors
/// `INVALID_ARGUMENT` naming the column when a column of `batch` is not in the table,
/// cannot be cast to the table's type, or holds nulls in a NOT NULL column.
pub(crate) fn conform(batch: &RecordBatch, table: &SchemaRef) -> Result<RecordBatch, Status> {
    let schema = batch.schema();
    if let Some(extra) = schema
        .fields()
        .iter()
        .find(|f| table.field_with_name(f.name()).is_err())
    {
        return Err(Status::invalid_argument(format!(
            "column {} is not in the table",
            extra.name()
        )));
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let columns = table
        .fields()
        .iter()
        .map(|target| {
            let name = target.name();
            let column: ArrayRef = match schema.index_of(name) {
                Ok(i) => {
                    let column = batch.column(i);
                    if column.data_type() == target.data_type() {
                        Arc::clone(column)
                    } else {
                        cast_with_options(column, target.data_type(), &options).map_err(|e| {
                            Status::invalid_argument(format!(
                                "column {name}: {} cannot be stored as {}: {e}",
                                column.data_type(),
                                target.data_type()
                            ))
                        })?
                    }
                }
                Err(_) => arrow::array::new_null_array(target.data_type(), batch.num_rows()),
            };
            if !target.is_nullable() && column.null_count() > 0 {
                return Err(Status::invalid_argument(format!(
                    "column {name} is NOT NULL but the batch has nulls in it"
                )));
            }
            Ok(column)
        })
        .collect::<Result<Vec<_>, Status>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(table),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| Status::invalid_argument(format!("batch does not fit the table: {e}")))
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Array, AsArray, Int32Array, LargeListArray, LargeStringArray, MapBuilder, StringBuilder,
        UInt32Array,
    };
    use arrow::datatypes::{Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType};

    use super::*;

    fn schema(fields: Vec<Field>) -> Schema {
        Schema::new(fields)
    }

    #[test]
    fn flight_schemas_become_the_delta_kernel_types() {
        let flight = schema(vec![
            Field::new("s", DataType::LargeUtf8, false),
            Field::new("b", DataType::LargeBinary, true),
            Field::new("u", DataType::UInt32, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
                true,
            ),
            Field::new("n", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("l", DataType::new_large_list(DataType::Int32, true), true),
            Field::new(
                "m",
                MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
                    .finish()
                    .data_type()
                    .clone(),
                true,
            ),
        ]);
        let canonical = canonical_schema(&flight).unwrap();
        let expected = schema(vec![
            Field::new("s", DataType::Utf8, false),
            Field::new("b", DataType::Binary, true),
            Field::new("u", DataType::Int64, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("l", DataType::List(list_item(DataType::Int32, true)), true),
            Field::new("m", map_type(DataType::Utf8, DataType::Utf8, true), true),
        ]);
        assert_eq!(*canonical, expected);
        // Canonical schemas are fixed points.
        assert_eq!(canonical_schema(&canonical).unwrap(), canonical);
    }

    #[test]
    fn types_delta_cannot_store_are_rejected_naming_the_column() {
        for data_type in [
            DataType::Time64(TimeUnit::Microsecond),
            DataType::UInt64,
            DataType::Decimal256(40, 2),
            DataType::Struct(Fields::empty()),
        ] {
            let bad = schema(vec![Field::new_list(
                "outer",
                Field::new("inner", data_type.clone(), true),
                true,
            )]);
            let err = canonical_schema(&bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(err.message().contains("outer.element"), "{}", err.message());
        }
    }

    #[test]
    fn conform_casts_a_flight_batch_to_the_table() {
        let flight = Arc::new(schema(vec![
            Field::new("amount", DataType::LargeUtf8, true),
            Field::new("u", DataType::UInt32, true),
            Field::new("l", DataType::new_large_list(DataType::Int32, true), true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            flight,
            vec![
                Arc::new(LargeStringArray::from(vec![Some("-1.25"), None])),
                Arc::new(UInt32Array::from(vec![4_000_000_000, 1])),
                Arc::new(LargeListArray::from_iter_primitive::<Int32Type, _, _>(
                    vec![Some(vec![Some(1), Some(2)]), None],
                )),
                Arc::new(
                    arrow::array::TimestampNanosecondArray::from(vec![1_500, 2_000])
                        .with_timezone("UTC"),
                ),
            ],
        )
        .unwrap();
        let table = Arc::new(schema(vec![
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new("u", DataType::Int64, true),
            Field::new("l", DataType::List(list_item(DataType::Int32, true)), true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("missing", DataType::Int32, true),
        ]));
        let out = conform(&batch, &table).unwrap();
        assert_eq!(out.schema(), table);
        let amount = out.column(0).as_primitive::<Decimal128Type>();
        assert_eq!((amount.value(0), amount.is_null(1)), (-125, true));
        assert_eq!(
            out.column(1).as_primitive::<Int64Type>().value(0),
            4_000_000_000
        );
        assert_eq!(
            out.column(2)
                .as_list::<i32>()
                .value(0)
                .as_primitive::<Int32Type>()
                .values(),
            &[1, 2]
        );
        // Sub-microsecond parts are cut off, as Delta's microsecond timestamps need.
        let t = out.column(3).as_primitive::<TimestampMicrosecondType>();
        assert_eq!((t.value(0), t.value(1)), (1, 2));
        assert_eq!(out.column(4).null_count(), 2);
    }

    #[test]
    fn conform_names_the_column_at_fault() {
        let table = Arc::new(schema(vec![Field::new("x", DataType::Int32, false)]));
        let cases: [(Field, ArrayRef, &str); 3] = [
            (
                Field::new("y", DataType::Int32, true),
                Arc::new(Int32Array::from(vec![1])),
                "y",
            ),
            (
                Field::new("x", DataType::Utf8, true),
                Arc::new(arrow::array::StringArray::from(vec!["nope"])),
                "x",
            ),
            (
                Field::new("x", DataType::Int32, true),
                Arc::new(Int32Array::from(vec![None])),
                "x",
            ),
        ];
        for (field, column, named) in cases {
            let batch = RecordBatch::try_new(Arc::new(schema(vec![field])), vec![column]).unwrap();
            let err = conform(&batch, &table).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(
                err.message().contains(&format!("column {named}")),
                "{}",
                err.message()
            );
        }
    }
}

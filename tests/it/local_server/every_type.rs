//! A table with every canonical column type (nested ones included) and rows for it.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, ListArray, MapArray, RecordBatch, StringArray,
    StructArray, TimestampMicrosecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use zerobus_test_support::local::timestamp_field;

fn item(data_type: DataType) -> FieldRef {
    Arc::new(Field::new("element", data_type, true))
}

fn point_fields() -> Fields {
    Fields::from(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("label", DataType::Utf8, true),
        Field::new(
            "inner",
            DataType::Struct(vec![Field::new("ok", DataType::Boolean, true)].into()),
            true,
        ),
    ])
}

fn entry_fields() -> Fields {
    Fields::from(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
    ])
}

fn map_entries() -> FieldRef {
    Arc::new(Field::new(
        "key_value",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Int64, true),
            ]
            .into(),
        ),
        false,
    ))
}

/// Every canonical type. Lists and maps are never null and hold no null elements or
/// values: protobuf cannot tell a null list from an empty one, nor carry a null element.
pub(super) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("i64", DataType::Int64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("blob", DataType::Binary, true),
        Field::new("day", DataType::Date32, true),
        timestamp_field("ts", true),
        timestamp_field("ts_ntz", false),
        Field::new("amount", DataType::Decimal128(18, 3), true),
        Field::new("tags", DataType::List(item(DataType::Int32)), false),
        Field::new("point", DataType::Struct(point_fields()), true),
        Field::new(
            "items",
            DataType::List(item(DataType::Struct(entry_fields()))),
            false,
        ),
        Field::new("attrs", DataType::Map(map_entries(), false), false),
    ]))
}

/// `None` every `n`th row (counting from `start`), else `value(i)`.
fn every<T>(start: usize, rows: usize, n: usize, value: impl Fn(i64) -> T) -> Vec<Option<T>> {
    (start..start + rows)
        .map(|i| (i % n != 0).then(|| value(i as i64)))
        .collect()
}

/// Offsets of lists with `len(i)` elements for rows `start..start + rows`.
fn offsets(start: usize, rows: usize, len: impl Fn(usize) -> usize) -> OffsetBuffer<i32> {
    OffsetBuffer::from_lengths((start..start + rows).map(len))
}

/// The columns of the million-row tests: every kind of value at a cost debug builds can
/// afford for a million rows.
pub(super) const LEAN: [&str; 5] = ["id", "name", "ts", "amount", "tags"];

/// [`schema`] restricted to `columns`.
pub(super) fn project(columns: &[&str]) -> SchemaRef {
    let schema = schema();
    let indices: Vec<usize> = columns
        .iter()
        .map(|c| {
            schema
                .index_of(c)
                .expect("a column of the every-type table")
        })
        .collect();
    Arc::new(schema.project(&indices).expect("valid projection"))
}

/// Rows `start..start + rows` of `schema` (a projection of [`schema`]), with nulls,
/// negative numbers, empty and non-ASCII strings, pre-epoch dates and timestamps.
pub(super) fn rows(schema: &SchemaRef, start: usize, rows: usize) -> RecordBatch {
    let columns = schema
        .fields()
        .iter()
        .map(|f| column(f.name(), start, rows))
        .collect();
    RecordBatch::try_new(Arc::clone(schema), columns).expect("columns match the schema")
}

/// Rows `start..start + rows` of column `name`.
fn column(name: &str, start: usize, rows: usize) -> ArrayRef {
    const TS: i64 = 1_700_000_000_000_000;
    let elements = |len: &dyn Fn(usize) -> usize| -> Vec<i64> {
        (start..start + rows)
            .flat_map(|i| (0..len(i)).map(move |k| (i * 10 + k) as i64))
            .collect()
    };
    match name {
        "id" => Arc::new(Int64Array::from_iter_values(
            start as i64..(start + rows) as i64,
        )),
        "i8" => Arc::new(Int8Array::from(every(start, rows, 11, |i| {
            (i % 256 - 128) as i8
        }))),
        "i16" => Arc::new(Int16Array::from(every(start, rows, 12, |i| {
            (i * 7 % 65_536 - 32_768) as i16
        }))),
        "i32" => Arc::new(Int32Array::from(every(start, rows, 13, |i| {
            (i as i32).wrapping_mul(-1_640_531_535)
        }))),
        "i64" => Arc::new(Int64Array::from(every(start, rows, 14, |i| {
            i.wrapping_mul(-3_000_000_000_017)
        }))),
        "f32" => Arc::new(Float32Array::from(every(start, rows, 15, |i| {
            i as f32 * 0.25 - 1000.0
        }))),
        "f64" => Arc::new(Float64Array::from(every(start, rows, 16, |i| {
            i as f64 / 8.0 - 3.5
        }))),
        "flag" => Arc::new(BooleanArray::from(every(start, rows, 5, |i| i % 3 == 0))),
        "name" => Arc::new(StringArray::from(every(start, rows, 7, |i| match i % 3 {
            0 => String::new(),
            1 => format!("name-{i}"),
            _ => format!("ñamé \"{i}\" ✓"),
        }))),
        "blob" => Arc::new(BinaryArray::from_iter(every(start, rows, 13, |i| {
            i.to_le_bytes()[..(i % 6) as usize].to_vec()
        }))),
        "day" => Arc::new(Date32Array::from(every(start, rows, 17, |i| {
            (i % 40_000) as i32 - 20_000
        }))),
        "ts" => Arc::new(
            TimestampMicrosecondArray::from(every(start, rows, 18, |i| {
                TS - 2 * TS * (i % 2) + i * 1_000_003
            }))
            .with_timezone("UTC"),
        ),
        "ts_ntz" => Arc::new(TimestampMicrosecondArray::from(every(
            start,
            rows,
            19,
            |i| TS + i * 999_983 - 5 * TS * (i % 3),
        ))),
        "amount" => Arc::new(
            Decimal128Array::from(every(start, rows, 9, |i| {
                i128::from(i) * 12_345 - 5_000_000_000
            }))
            .with_precision_and_scale(18, 3)
            .expect("valid decimal type"),
        ),
        "tags" => {
            let len = |i: usize| i % 4;
            let values = elements(&len);
            Arc::new(ListArray::new(
                item(DataType::Int32),
                offsets(start, rows, len),
                Arc::new(Int32Array::from_iter_values(
                    values.iter().map(|v| *v as i32 - 100),
                )),
                None,
            ))
        }
        "point" => Arc::new(StructArray::new(
            point_fields(),
            vec![
                Arc::new(Int32Array::from(every(start, rows, 4, |i| {
                    (i as i32).wrapping_mul(-7)
                }))),
                Arc::new(StringArray::from(every(start, rows, 5, |i| {
                    format!("p{i}")
                }))),
                Arc::new(StructArray::new(
                    vec![Field::new("ok", DataType::Boolean, true)].into(),
                    vec![Arc::new(BooleanArray::from(every(start, rows, 3, |i| {
                        i % 2 == 0
                    })))],
                    Some(NullBuffer::from_iter(
                        (start..start + rows).map(|i| i % 10 != 1),
                    )),
                )),
            ],
            Some(NullBuffer::from_iter(
                (start..start + rows).map(|i| i % 6 != 0),
            )),
        )),
        "items" => {
            let len = |i: usize| i % 3;
            let values = elements(&len);
            let entries = StructArray::new(
                entry_fields(),
                vec![
                    Arc::new(StringArray::from_iter_values(
                        values.iter().map(|v| format!("k{v}")),
                    )),
                    Arc::new(Int64Array::from_iter(
                        values.iter().map(|v| (v % 5 != 0).then_some(-v)),
                    )),
                ],
                None,
            );
            Arc::new(ListArray::new(
                item(DataType::Struct(entry_fields())),
                offsets(start, rows, len),
                Arc::new(entries),
                None,
            ))
        }
        "attrs" => {
            let len = |i: usize| (i + 1) % 3;
            let values = elements(&len);
            let DataType::Struct(fields) = map_entries().data_type().clone() else {
                unreachable!("map entries are a struct")
            };
            let entries = StructArray::new(
                fields,
                vec![
                    Arc::new(StringArray::from_iter_values(
                        values.iter().map(|v| format!("a{}", v % 10)),
                    )),
                    Arc::new(Int64Array::from_iter_values(
                        values.iter().map(|v| v * 1000),
                    )),
                ],
                None,
            );
            Arc::new(MapArray::new(
                map_entries(),
                offsets(start, rows, len),
                entries,
                None,
                false,
            ))
        }
        other => unreachable!("no column {other}"),
    }
}

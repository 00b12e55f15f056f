//! The user's Arrow types, normalized to the Arrow schema the official SDK derives for the
//! table (`arrow_schema_from_uc_columns`), which is what its Arrow Flight streams carry:
//!
//! | Delta type | Arrow on the wire |
//! |---|---|
//! | TINYINT / SMALLINT / INT / BIGINT | Int8 / Int16 / Int32 / Int64 (unsigned inputs widened) |
//! | FLOAT / DOUBLE / BOOLEAN | Float32 / Float64 / Boolean |
//! | STRING, DECIMAL(p, s) | LargeUtf8 (a decimal as its text, e.g. `-12.30`) |
//! | BINARY | LargeBinary |
//! | DATE | Date32 |
//! | TIMESTAMP / TIMESTAMP_NTZ | Timestamp(µs, `"UTC"`) / Timestamp(µs, none) |
//! | ARRAY\<T\> | List with a nullable `"item"` field |
//! | MAP\<K, V\> | Map `"entries"`: Struct\<`"keys"` not null, `"values"` nullable\> |
//! | STRUCT | Struct of the normalized fields |
//! | VOID (Arrow Null) | LargeUtf8, always null (as the protobuf path declares it) |
//!
//! Dictionaries, run-end encoding and views are hydrated. Timestamps and Date64 are
//! converted with floor division, as the protobuf encoder does, so both transports land
//! the same values. Values that do not fit (an unsigned value over the signed range, a
//! timestamp that overflows in microseconds) are never normalized: the encoder already
//! failed their rows, and the transport drops those rows first.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int64Array, ListArray, MapArray, RecordBatch,
    StructArray, TimestampMicrosecondArray,
};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, TimeUnit};

use crate::error::ZerobusError;
use crate::schema::{DeltaType, TableColumn, TableSchema};

/// Name of a list's element field in the SDK's schema.
const LIST_ITEM: &str = "item";
/// Names of a map's entries, key and value fields in the SDK's schema.
const MAP_ENTRIES: &str = "entries";
const MAP_KEYS: &str = "keys";
const MAP_VALUES: &str = "values";

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The Arrow schema the SDK derives for `schema`'s table.
pub(crate) fn target_schema(schema: &TableSchema) -> Schema {
    Schema::new(fields(schema.columns()))
}

fn fields(columns: &[TableColumn]) -> Fields {
    columns
        .iter()
        .map(|column| {
            Field::new(
                column.name.clone(),
                target_type(&column.data_type),
                column.nullable,
            )
        })
        .collect()
}

/// The SDK's Arrow type for a Delta type.
fn target_type(delta: &DeltaType) -> DataType {
    match delta {
        DeltaType::Byte => DataType::Int8,
        DeltaType::Short => DataType::Int16,
        DeltaType::Int => DataType::Int32,
        DeltaType::Long => DataType::Int64,
        DeltaType::Float => DataType::Float32,
        DeltaType::Double => DataType::Float64,
        DeltaType::Boolean => DataType::Boolean,
        DeltaType::Binary => DataType::LargeBinary,
        DeltaType::Date => DataType::Date32,
        DeltaType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DeltaType::TimestampNtz => DataType::Timestamp(TimeUnit::Microsecond, None),
        DeltaType::Array(element) => {
            DataType::List(Arc::new(Field::new(LIST_ITEM, target_type(element), true)))
        }
        DeltaType::Struct(columns) => DataType::Struct(fields(columns)),
        DeltaType::Map { key, value } => {
            let entries = Fields::from(vec![
                Field::new(MAP_KEYS, target_type(key), false),
                Field::new(MAP_VALUES, target_type(value), true),
            ]);
            DataType::Map(
                Arc::new(Field::new(MAP_ENTRIES, DataType::Struct(entries), false)),
                false,
            )
        }
        // STRING, DECIMAL (as text), VOID, and any type added later travel as text.
        _ => DataType::LargeUtf8,
    }
}

/// `batch` (whose rows all encoded) with the types of `target` (from [`target_schema`]).
pub(crate) fn normalize_batch(
    batch: &RecordBatch,
    target: &Arc<Schema>,
) -> Result<RecordBatch, ZerobusError> {
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| {
            normalize(column, field.data_type()).map_err(|e| {
                let context = format!(
                    "column `{}`: cannot convert {} to {} for Arrow Flight",
                    field.name(),
                    column.data_type(),
                    field.data_type()
                );
                ZerobusError::arrow(context, e)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(target.clone(), columns)
        .map_err(|e| ZerobusError::arrow("building the Arrow Flight batch", e))
}

type Result<T, E = arrow::error::ArrowError> = std::result::Result<T, E>;

/// `array` converted to type `to`.
fn normalize(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    // Hydrate first: the rest looks at plain arrays only.
    if let DataType::Dictionary(_, values) = array.data_type() {
        return normalize(&cast_with_options(array, values, &strict)?, to);
    }
    if let DataType::RunEndEncoded(_, values) = array.data_type() {
        return normalize(&cast_with_options(array, values.data_type(), &strict)?, to);
    }
    match (array.data_type(), to) {
        (from, to) if from == to => Ok(array.clone()),
        (DataType::Timestamp(unit, _), DataType::Timestamp(TimeUnit::Microsecond, zone)) => {
            let (multiply, divide) = match unit {
                TimeUnit::Second => (1_000_000, 1),
                TimeUnit::Millisecond => (1_000, 1),
                TimeUnit::Microsecond => (1, 1),
                TimeUnit::Nanosecond => (1, 1_000),
            };
            let raw = cast_with_options(array, &DataType::Int64, &strict)?;
            let micros: TimestampMicrosecondArray = raw
                .as_primitive::<arrow::datatypes::Int64Type>()
                .unary(|v: i64| v.wrapping_mul(multiply).div_euclid(divide));
            Ok(Arc::new(micros.with_timezone_opt(zone.clone())))
        }
        (DataType::Date64, DataType::Date32) => {
            let raw = cast_with_options(array, &DataType::Int64, &strict)?;
            let raw: &Int64Array = raw.as_primitive();
            let days: Date32Array = raw
                .unary(|ms: i64| i32::try_from(ms.div_euclid(MILLIS_PER_DAY)).unwrap_or(i32::MAX));
            Ok(Arc::new(days))
        }
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let array = array.as_struct();
            let children = array
                .columns()
                .iter()
                .zip(fields)
                .map(|(child, field)| normalize(child, field.data_type()))
                .collect::<Result<Vec<_>>>()?;
            Ok(Arc::new(StructArray::try_new(
                fields.clone(),
                children,
                array.nulls().cloned(),
            )?))
        }
        (_, DataType::List(item)) => {
            let list = as_list(array, item)?;
            let values = normalize(list.values(), item.data_type())?;
            Ok(Arc::new(ListArray::try_new(
                item.clone(),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?))
        }
        (DataType::Map(..), DataType::Map(entries, sorted)) => {
            let map = array.as_map();
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(arrow::error::ArrowError::CastError(
                    "map entries must be a struct".into(),
                ));
            };
            let keys = normalize(map.keys(), kv[0].data_type())?;
            let values = normalize(map.values(), kv[1].data_type())?;
            let entries_array = StructArray::try_new(kv.clone(), vec![keys, values], None)?;
            Ok(Arc::new(MapArray::try_new(
                entries.clone(),
                map.offsets().clone(),
                entries_array,
                map.nulls().cloned(),
                *sorted,
            )?))
        }
        (_, to) => cast_with_options(array, to, &strict),
    }
}

/// Any list-like `array` as a `List` whose elements keep their own type (converted
/// afterwards), so that nested conversions follow [`normalize`]'s rules.
fn as_list(array: &ArrayRef, item: &FieldRef) -> Result<ListArray> {
    let element = match array.data_type() {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => f.data_type().clone(),
        other => {
            return Err(arrow::error::ArrowError::CastError(format!(
                "{other} is not a list"
            )))
        }
    };
    let as_list = DataType::List(Arc::new(Field::new(item.name(), element, true)));
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    Ok(cast_with_options(array, &as_list, &strict)?
        .as_list::<i32>()
        .clone())
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        DictionaryArray, Int32Array, StringArray, TimestampNanosecondArray, UInt32Array,
    };
    use arrow::datatypes::Int8Type;
    use databricks_zerobus_ingest_sdk::schema::{arrow_schema_from_uc_columns, UcColumn};

    use super::*;

    fn uc(name: &str, type_name: &str, type_json: &str, position: i64) -> UcColumn {
        serde_json::from_value(serde_json::json!({
            "name": name, "type_name": type_name, "type_text": type_name.to_lowercase(),
            "type_json": type_json, "nullable": true, "position": position,
        }))
        .expect("UcColumn")
    }

    #[test]
    fn the_target_schema_is_the_one_the_sdk_derives() {
        let user = Arc::new(Schema::new(vec![
            Field::new("a", DataType::UInt32, true),
            Field::new("s", DataType::Utf8View, true),
            Field::new("d", DataType::Decimal128(10, 2), true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
                true,
            ),
            Field::new("n", DataType::Timestamp(TimeUnit::Second, None), true),
            Field::new("b", DataType::FixedSizeBinary(4), true),
            Field::new_list("l", Field::new("element", DataType::Int16, false), true),
            Field::new_map(
                "m",
                "key_value",
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Int64, true),
                false,
                true,
            ),
        ]));
        let ours = target_schema(&TableSchema::try_new(user, "t").expect("schema"));
        let columns = [
            uc("a", "LONG", "", 0),
            uc("s", "STRING", "", 1),
            uc("d", "DECIMAL", "", 2),
            uc("t", "TIMESTAMP", "", 3),
            uc("n", "TIMESTAMP_NTZ", "", 4),
            uc("b", "BINARY", "", 5),
            uc(
                "l",
                "ARRAY",
                r#"{"type":"array","elementType":"short","containsNull":true}"#,
                6,
            ),
            uc(
                "m",
                "MAP",
                r#"{"type":"map","keyType":"string","valueType":"long","valueContainsNull":true}"#,
                7,
            ),
        ];
        let sdk = arrow_schema_from_uc_columns(&columns).expect("sdk schema");
        assert_eq!(ours, sdk);
    }

    #[test]
    fn values_are_hydrated_widened_and_floored() {
        let dict: DictionaryArray<Int8Type> = vec!["x", "y", "x"].into_iter().collect();
        let out = normalize(&(Arc::new(dict) as ArrayRef), &DataType::LargeUtf8).expect("dict");
        let expect = cast_with_options(
            &(Arc::new(StringArray::from(vec!["x", "y", "x"])) as ArrayRef),
            &DataType::LargeUtf8,
            &CastOptions::default(),
        )
        .expect("cast");
        assert_eq!(&out, &expect);

        let wide = UInt32Array::from(vec![u32::MAX]);
        let out = normalize(&(Arc::new(wide) as ArrayRef), &DataType::Int64).expect("widen");
        assert_eq!(
            out.as_primitive::<arrow::datatypes::Int64Type>().value(0),
            4_294_967_295
        );

        let ts = TimestampNanosecondArray::from(vec![-1_500]);
        let to = DataType::Timestamp(TimeUnit::Microsecond, None);
        let out = normalize(&(Arc::new(ts) as ArrayRef), &to).expect("ts");
        assert_eq!(
            out.as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(0),
            -2
        );

        let narrow = normalize(
            &(Arc::new(Int32Array::from(vec![70_000])) as ArrayRef),
            &DataType::Int16,
        );
        assert!(
            narrow.is_err(),
            "out-of-range values are never silently nulled"
        );
    }
}

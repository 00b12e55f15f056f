//! The reference ("oracle") for the encoder: builds, with prost-reflect, the message one row
//! of a batch must decode to, and predicts which rows must fail.
//!
//! It walks the Arrow arrays one value at a time with plain downcasts and applies the type
//! mapping of `schema::types` by hand. It shares no code with the encoder: a disagreement
//! between the two is a bug in one of them. The round-trip tests check the encoder against
//! it; `benches/encode.rs` times it as its baseline.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    ArrowNativeType, DataType, Date32Type, Date64Type, Decimal128Type, Decimal256Type,
    Decimal32Type, Decimal64Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, RunEndIndexType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The message row `row` of `batch` must decode to. Only meaningful for rows where
/// [`row_fails`] is false (panics on values that cannot be encoded).
pub fn expected_message(
    desc: &MessageDescriptor,
    batch: &RecordBatch,
    row: usize,
) -> DynamicMessage {
    message_of(desc, batch.columns(), row)
}

/// Whether row `row` of `batch` cannot be encoded: a null list element or map value, a
/// UInt64 above `i64::MAX`, a timestamp that overflows microseconds, a Date64 out of
/// `i32` days. Only values the row actually contains count (not those under a null).
pub fn row_fails(batch: &RecordBatch, row: usize) -> bool {
    batch
        .columns()
        .iter()
        .any(|column| value_fails(column, row))
}

/// A message whose field `k + 1` is `columns[k]` at `row`.
fn message_of(desc: &MessageDescriptor, columns: &[ArrayRef], row: usize) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc.clone());
    for (index, column) in columns.iter().enumerate() {
        let field = desc
            .get_field(index as u32 + 1)
            .expect("one field per column, numbered from 1");
        if let Some(value) = field_value(&field, column, row) {
            message.set_field(&field, value);
        }
    }
    message
}

/// The value of `field` for element `i` of `array`, or `None` when the field is absent
/// (null, or an empty list / map).
fn field_value(field: &FieldDescriptor, array: &ArrayRef, i: usize) -> Option<Value> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            unreachable!("map fields are entry messages")
        };
        let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let entries = list_elements(array, i)?;
        let entries = entries.as_struct();
        let mut map = HashMap::new();
        for j in 0..entries.len() {
            let key =
                value(&key_field.kind(), entries.column(0), j).expect("map keys are not null");
            let value =
                value(&value_field.kind(), entries.column(1), j).expect("map value is not null");
            // Duplicate keys: the last entry wins, as when a protobuf parser reads them.
            map.insert(map_key(key), value);
        }
        return (!map.is_empty()).then_some(Value::Map(map));
    }
    if field.is_list() {
        let elements = list_elements(array, i)?;
        let list: Vec<Value> = (0..elements.len())
            .map(|j| value(&field.kind(), &elements, j).expect("list element is not null"))
            .collect();
        return (!list.is_empty()).then_some(Value::List(list));
    }
    value(&field.kind(), array, i)
}

/// The elements of list (or map) `i` as their own array, or `None` if the list is null.
fn list_elements(array: &ArrayRef, i: usize) -> Option<ArrayRef> {
    if array.is_null(i) {
        return None;
    }
    Some(match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(i),
        DataType::LargeList(_) => array.as_list::<i64>().value(i),
        DataType::FixedSizeList(_, _) => array.as_fixed_size_list().value(i),
        DataType::ListView(_) => array.as_list_view::<i32>().value(i),
        DataType::LargeListView(_) => array.as_list_view::<i64>().value(i),
        DataType::Map(_, _) => std::sync::Arc::new(array.as_map().value(i)),
        other => panic!("not a list type: {other}"),
    })
}

/// Element `i` of a dictionary or run-end encoded array, as `(values array, index)`; any
/// other array is returned as is. `None` for a null dictionary key.
fn resolve(array: &ArrayRef, i: usize) -> Option<(ArrayRef, usize)> {
    match array.data_type() {
        DataType::Dictionary(key, _) => {
            assert_eq!(
                **key,
                DataType::Int32,
                "the oracle supports Int32 dictionary keys"
            );
            let dictionary = array.as_dictionary::<Int32Type>();
            let keys = dictionary.keys();
            if keys.is_null(i) {
                return None;
            }
            resolve(dictionary.values(), keys.value(i) as usize)
        }
        DataType::RunEndEncoded(run_ends, _) => {
            // The run containing logical position offset + i: the first run end above it.
            let logical = array.offset() + i;
            let (run_ends, values) = match run_ends.data_type() {
                DataType::Int16 => run_parts::<Int16Type>(array),
                DataType::Int32 => run_parts::<Int32Type>(array),
                _ => run_parts::<Int64Type>(array),
            };
            let physical = run_ends.partition_point(|&end| end <= logical);
            resolve(values, physical)
        }
        _ => Some((array.clone(), i)),
    }
}

/// The run ends (as `usize`) and the values of a run-end encoded array.
fn run_parts<R: RunEndIndexType>(array: &ArrayRef) -> (Vec<usize>, &ArrayRef) {
    let run = array.as_run::<R>();
    let ends = run
        .run_ends()
        .values()
        .iter()
        .map(|e| e.as_usize())
        .collect();
    (ends, run.values())
}

/// Whether element `i` is null, looking through dictionaries and run-end encoding.
fn is_null(array: &ArrayRef, i: usize) -> bool {
    match resolve(array, i) {
        None => true,
        Some((values, j)) => values.data_type() == &DataType::Null || values.is_null(j),
    }
}

/// One value of protobuf kind `kind` (the element kind, for lists), or `None` if null.
fn value(kind: &Kind, array: &ArrayRef, i: usize) -> Option<Value> {
    if is_null(array, i) {
        return None;
    }
    let (array, i) = resolve(array, i)?;
    let array = &array;
    Some(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Value::I32(array.as_primitive::<Int8Type>().value(i).into()),
        DataType::Int16 => Value::I32(array.as_primitive::<Int16Type>().value(i).into()),
        DataType::Int32 => Value::I32(array.as_primitive::<Int32Type>().value(i)),
        DataType::UInt8 => Value::I32(array.as_primitive::<UInt8Type>().value(i).into()),
        DataType::UInt16 => Value::I32(array.as_primitive::<UInt16Type>().value(i).into()),
        DataType::Int64 => Value::I64(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt32 => Value::I64(array.as_primitive::<UInt32Type>().value(i).into()),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(i);
            Value::I64(i64::try_from(v).expect("UInt64 above i64::MAX fails the row"))
        }
        DataType::Float16 => Value::F32(array.as_primitive::<Float16Type>().value(i).to_f32()),
        DataType::Float32 => Value::F32(array.as_primitive::<Float32Type>().value(i)),
        DataType::Float64 => Value::F64(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(i).to_owned()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(i).to_owned()),
        DataType::Utf8View => Value::String(array.as_string_view().value(i).to_owned()),
        DataType::Binary => bytes(array.as_binary::<i32>().value(i)),
        DataType::LargeBinary => bytes(array.as_binary::<i64>().value(i)),
        DataType::BinaryView => bytes(array.as_binary_view().value(i)),
        DataType::FixedSizeBinary(_) => bytes(array.as_fixed_size_binary().value(i)),
        DataType::Date32 => Value::I32(array.as_primitive::<Date32Type>().value(i)),
        DataType::Date64 => Value::I32(
            date64_days(array.as_primitive::<Date64Type>().value(i)).expect("Date64 in range"),
        ),
        DataType::Timestamp(unit, _) => {
            Value::I64(timestamp_micros(array, *unit, i).expect("timestamp in range"))
        }
        DataType::Decimal32(..) => {
            Value::String(array.as_primitive::<Decimal32Type>().value_as_string(i))
        }
        DataType::Decimal64(..) => {
            Value::String(array.as_primitive::<Decimal64Type>().value_as_string(i))
        }
        DataType::Decimal128(..) => {
            Value::String(array.as_primitive::<Decimal128Type>().value_as_string(i))
        }
        DataType::Decimal256(..) => {
            Value::String(array.as_primitive::<Decimal256Type>().value_as_string(i))
        }
        DataType::Struct(_) => {
            let Kind::Message(desc) = kind else {
                panic!("a struct maps to a message field, not {kind:?}")
            };
            Value::Message(message_of(desc, array.as_struct().columns(), i))
        }
        other => panic!("the oracle has no rule for {other}"),
    })
}

fn bytes(value: &[u8]) -> Value {
    Value::Bytes(value.to_vec().into())
}

fn map_key(value: Value) -> MapKey {
    match value {
        Value::String(s) => MapKey::String(s),
        Value::I32(v) => MapKey::I32(v),
        Value::I64(v) => MapKey::I64(v),
        Value::Bool(v) => MapKey::Bool(v),
        other => panic!("not a map key: {other:?}"),
    }
}

/// Date64 milliseconds to whole days, rounding towards minus infinity; `None` past `i32`.
fn date64_days(millis: i64) -> Option<i32> {
    i32::try_from(millis.div_euclid(MILLIS_PER_DAY)).ok()
}

/// A timestamp as microseconds since the epoch; `None` when that overflows `i64`.
fn timestamp_micros(array: &ArrayRef, unit: TimeUnit, i: usize) -> Option<i64> {
    match unit {
        TimeUnit::Second => array
            .as_primitive::<TimestampSecondType>()
            .value(i)
            .checked_mul(1_000_000),
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .value(i)
            .checked_mul(1_000),
        TimeUnit::Microsecond => Some(array.as_primitive::<TimestampMicrosecondType>().value(i)),
        TimeUnit::Nanosecond => Some(
            array
                .as_primitive::<TimestampNanosecondType>()
                .value(i)
                .div_euclid(1_000),
        ),
    }
}

/// Whether element `i` of `array` holds something that cannot be encoded.
fn value_fails(array: &ArrayRef, i: usize) -> bool {
    if is_null(array, i) {
        return false;
    }
    let Some((array, i)) = resolve(array, i) else {
        return false;
    };
    match array.data_type() {
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(i) > i64::MAX as u64,
        DataType::Date64 => date64_days(array.as_primitive::<Date64Type>().value(i)).is_none(),
        DataType::Timestamp(unit, _) => timestamp_micros(&array, *unit, i).is_none(),
        DataType::Struct(_) => array
            .as_struct()
            .columns()
            .iter()
            .any(|child| value_fails(child, i)),
        DataType::Map(_, _) => {
            let entries = list_elements(&array, i).expect("not null");
            let entries = entries.as_struct();
            (0..entries.len()).any(|j| {
                is_null(entries.column(1), j)
                    || value_fails(entries.column(0), j)
                    || value_fails(entries.column(1), j)
            })
        }
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(_, _)
        | DataType::ListView(_)
        | DataType::LargeListView(_) => {
            let elements = list_elements(&array, i).expect("not null");
            (0..elements.len()).any(|j| is_null(&elements, j) || value_fails(&elements, j))
        }
        _ => false,
    }
}

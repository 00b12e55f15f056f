//! Picks the codec for an Arrow array, once per column per batch.

use arrow::array::{Array, AsArray, RunArray, StringArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Float16Type, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, RunEndIndexType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};

use super::codec::{BoxedCodec, OnNull};
use super::nested::{ElementRanges, IndirectCodec, MessageCodec, RepeatedCodec};
use super::scalar::{
    BoolCodec, BytesCodec, CheckedU64, Date64ToDays, FixedCodec, NullCodec, ToMicros, ToVarint,
    VarintCodec, Widen,
};
use crate::error::{ConversionErrorKind, ZerobusError};

/// What a null means for a field declared with `nullable`.
pub(crate) fn on_null_for(nullable: bool) -> OnNull {
    if nullable {
        OnNull::Absent
    } else {
        OnNull::Reject(ConversionErrorKind::NullInNonNullableColumn)
    }
}

/// The codec writing `array` as field `field_number`.
///
/// The schema was validated by [`crate::schema::TableSchema`], so an unsupported type here
/// is a mismatch between the batch and its schema, reported as an error, never a panic.
pub(crate) fn codec<'a>(
    array: &'a dyn Array,
    field_number: u32,
    on_null: OnNull,
) -> Result<BoxedCodec<'a>, ZerobusError> {
    use DataType as A;
    let n = field_number;
    Ok(match array.data_type() {
        A::Null => Box::new(NullCodec { on_null }),
        A::Boolean => Box::new(BoolCodec::new(array.as_boolean(), n, on_null)),
        A::Int8 => varint::<Int8Type, _>(array, n, on_null, Widen),
        A::Int16 => varint::<Int16Type, _>(array, n, on_null, Widen),
        A::Int32 => varint::<Int32Type, _>(array, n, on_null, Widen),
        A::Int64 => varint::<Int64Type, _>(array, n, on_null, Widen),
        A::UInt8 => varint::<UInt8Type, _>(array, n, on_null, Widen),
        A::UInt16 => varint::<UInt16Type, _>(array, n, on_null, Widen),
        A::UInt32 => varint::<UInt32Type, _>(array, n, on_null, Widen),
        A::UInt64 => varint::<UInt64Type, _>(array, n, on_null, CheckedU64),
        A::Date32 => varint::<Date32Type, _>(array, n, on_null, Widen),
        A::Date64 => varint::<Date64Type, _>(array, n, on_null, Date64ToDays),
        A::Timestamp(unit, _) => timestamp(array, unit, n, on_null),
        A::Float16 => Box::new(FixedCodec::<Float16Type, f32>::new(
            array.as_primitive(),
            n,
            on_null,
        )),
        A::Float32 => Box::new(FixedCodec::<Float32Type, f32>::new(
            array.as_primitive(),
            n,
            on_null,
        )),
        A::Float64 => Box::new(FixedCodec::<Float64Type, f64>::new(
            array.as_primitive(),
            n,
            on_null,
        )),
        A::Utf8 => Box::new(BytesCodec::new(array.as_string::<i32>(), n, on_null)),
        A::LargeUtf8 => Box::new(BytesCodec::new(array.as_string::<i64>(), n, on_null)),
        A::Utf8View => Box::new(BytesCodec::new(array.as_string_view(), n, on_null)),
        A::Binary => Box::new(BytesCodec::new(array.as_binary::<i32>(), n, on_null)),
        A::LargeBinary => Box::new(BytesCodec::new(array.as_binary::<i64>(), n, on_null)),
        A::BinaryView => Box::new(BytesCodec::new(array.as_binary_view(), n, on_null)),
        A::FixedSizeBinary(_) => {
            Box::new(BytesCodec::new(array.as_fixed_size_binary(), n, on_null))
        }
        A::Decimal32(..) | A::Decimal64(..) | A::Decimal128(..) | A::Decimal256(..) => {
            // DECIMAL travels as its decimal string, e.g. "-12.30" for Decimal128(5, 2).
            let text = arrow::compute::cast(array, &A::Utf8)?;
            let text: StringArray = text.as_string::<i32>().clone();
            Box::new(BytesCodec::new(text, n, on_null))
        }
        A::Struct(fields) => {
            let array = array.as_struct();
            let children = fields
                .iter()
                .zip(array.columns())
                .enumerate()
                .map(|(index, (field, column))| {
                    // The descriptor's numbering (validated by the schema, so always Some).
                    let number = crate::schema::field_number(index).ok_or_else(|| {
                        ZerobusError::conversion(
                            ConversionErrorKind::TooManyColumns,
                            format!("field `{}`: no protobuf field number for it", field.name()),
                        )
                    })?;
                    let child = codec(column.as_ref(), number, on_null_for(field.is_nullable()))?;
                    Ok((field.name().as_str(), child))
                })
                .collect::<Result<_, ZerobusError>>()?;
            Box::new(MessageCodec::new(
                n,
                array.len(),
                array.nulls(),
                on_null,
                children,
            ))
        }
        A::List(_) => {
            let list = array.as_list::<i32>();
            let ranges = ElementRanges::Offsets32(list.value_offsets());
            repeated(list.nulls(), on_null, ranges, list.values().as_ref(), n)?
        }
        A::LargeList(_) => {
            let list = array.as_list::<i64>();
            let ranges = ElementRanges::Offsets64(list.value_offsets());
            repeated(list.nulls(), on_null, ranges, list.values().as_ref(), n)?
        }
        A::FixedSizeList(_, _) => {
            let list = array.as_fixed_size_list();
            let length = usize::try_from(list.value_length()).unwrap_or_default();
            let first = if list.is_empty() {
                0
            } else {
                usize::try_from(list.value_offset(0)).unwrap_or_default()
            };
            let ranges = ElementRanges::Fixed { length, first };
            repeated(list.nulls(), on_null, ranges, list.values().as_ref(), n)?
        }
        A::ListView(_) => {
            let list = array.as_list_view::<i32>();
            let ranges = ElementRanges::Views32 {
                offsets: list.value_offsets(),
                sizes: list.value_sizes(),
            };
            repeated(list.nulls(), on_null, ranges, list.values().as_ref(), n)?
        }
        A::LargeListView(_) => {
            let list = array.as_list_view::<i64>();
            let ranges = ElementRanges::Views64 {
                offsets: list.value_offsets(),
                sizes: list.value_sizes(),
            };
            repeated(list.nulls(), on_null, ranges, list.values().as_ref(), n)?
        }
        A::Map(_, _) => {
            let map = array.as_map();
            let entry = MessageCodec::new(
                n,
                map.entries().len(),
                None,
                OnNull::Reject(ConversionErrorKind::NullListElement),
                vec![
                    ("key", codec(map.keys().as_ref(), 1, on_null_for(false))?),
                    (
                        "value",
                        codec(
                            map.values().as_ref(),
                            2,
                            OnNull::Reject(ConversionErrorKind::NullMapValue),
                        )?,
                    ),
                ],
            );
            let ranges = ElementRanges::Offsets32(map.value_offsets());
            Box::new(RepeatedCodec::new(
                map.nulls(),
                on_null,
                ranges,
                Box::new(entry),
            ))
        }
        A::Dictionary(_, _) => {
            let dictionary = array.as_any_dictionary();
            let values = codec(dictionary.values().as_ref(), n, on_null)?;
            // `normalized_keys` panics on an empty dictionary; then every key is null.
            let index = if dictionary.values().is_empty() {
                vec![0; array.len()]
            } else {
                dictionary.normalized_keys()
            };
            Box::new(IndirectCodec::new(
                dictionary.keys().nulls(),
                on_null,
                index,
                values,
            ))
        }
        A::RunEndEncoded(run_ends, _) => match run_ends.data_type() {
            A::Int16 => run_end::<Int16Type>(array, n, on_null)?,
            A::Int32 => run_end::<Int32Type>(array, n, on_null)?,
            _ => run_end::<Int64Type>(array, n, on_null)?,
        },
        other => {
            return Err(ZerobusError::conversion(
                ConversionErrorKind::SchemaMismatch,
                format!("no encoder for Arrow type {other}; the batch does not match its schema"),
            ))
        }
    })
}

fn varint<'a, T, M>(array: &'a dyn Array, n: u32, on_null: OnNull, map: M) -> BoxedCodec<'a>
where
    T: ArrowPrimitiveType,
    M: ToVarint<T::Native> + 'a,
{
    Box::new(VarintCodec::new(array.as_primitive::<T>(), n, on_null, map))
}

fn timestamp<'a>(array: &'a dyn Array, unit: &TimeUnit, n: u32, on_null: OnNull) -> BoxedCodec<'a> {
    match unit {
        TimeUnit::Second => {
            varint::<TimestampSecondType, _>(array, n, on_null, ToMicros::<1_000_000, 1>)
        }
        TimeUnit::Millisecond => {
            varint::<TimestampMillisecondType, _>(array, n, on_null, ToMicros::<1_000, 1>)
        }
        TimeUnit::Microsecond => {
            varint::<TimestampMicrosecondType, _>(array, n, on_null, ToMicros::<1, 1>)
        }
        TimeUnit::Nanosecond => {
            varint::<TimestampNanosecondType, _>(array, n, on_null, ToMicros::<1, 1_000>)
        }
    }
}

fn repeated<'a>(
    nulls: Option<&'a arrow::buffer::NullBuffer>,
    on_null: OnNull,
    ranges: ElementRanges<'a>,
    values: &'a dyn Array,
    n: u32,
) -> Result<BoxedCodec<'a>, ZerobusError> {
    let element = codec(
        values,
        n,
        OnNull::Reject(ConversionErrorKind::NullListElement),
    )?;
    Ok(Box::new(RepeatedCodec::new(
        nulls, on_null, ranges, element,
    )))
}

fn run_end<'a, R: RunEndIndexType>(
    array: &'a dyn Array,
    n: u32,
    on_null: OnNull,
) -> Result<BoxedCodec<'a>, ZerobusError> {
    let run = array
        .as_any()
        .downcast_ref::<RunArray<R>>()
        .ok_or_else(|| {
            ZerobusError::conversion(
                ConversionErrorKind::SchemaMismatch,
                format!(
                    "expected a run-end encoded array, found {}",
                    array.data_type()
                ),
            )
        })?;
    let logical: Vec<u64> = (0..run.len() as u64).collect();
    let index = run.get_physical_indices(&logical)?;
    let values = codec(run.values().as_ref(), n, on_null)?;
    Ok(Box::new(IndirectCodec::new(None, on_null, index, values)))
}

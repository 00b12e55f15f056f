//! Codecs for scalar columns: integers and temporal values (varints), floats (fixed
//! width), booleans, strings and binaries (length-delimited), and the all-null type.

use std::marker::PhantomData;
use std::ops::Range;

use arrow::array::{
    Array, BooleanArray, FixedSizeBinaryArray, GenericByteArray, GenericByteViewArray,
    PrimitiveArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{ArrowNativeType, ArrowPrimitiveType, ByteArrayType, ByteViewType};

use super::codec::{
    for_each_null, is_null, size_fixed_rows, size_rows, FieldCodec, OnNull, ValueError,
};
use super::wire::{varint_len, Out, Tag, WireType};
use crate::error::ConversionErrorKind;

/// How a native value becomes the `u64` of a protobuf varint, or why it cannot.
pub(crate) trait ToVarint<N>: Copy {
    /// Whether `to_varint` can fail; infallible conversions get a branch-free size loop.
    const FALLIBLE: bool;
    fn to_varint(self, value: N) -> Result<u64, ValueError>;
}

/// Any integer up to 64 bits that fits `i64`: sign-extended, as protobuf `int32`/`int64` want.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Widen;

impl<N: Into<i64>> ToVarint<N> for Widen {
    const FALLIBLE: bool = false;
    #[inline(always)]
    fn to_varint(self, value: N) -> Result<u64, ValueError> {
        Ok(value.into() as u64)
    }
}

/// `u64` into BIGINT: values above `i64::MAX` do not fit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckedU64;

impl ToVarint<u64> for CheckedU64 {
    const FALLIBLE: bool = true;
    #[inline(always)]
    fn to_varint(self, value: u64) -> Result<u64, ValueError> {
        if value > i64::MAX as u64 {
            return Err(ValueError::new(
                ConversionErrorKind::ValueOutOfRange,
                format!(
                    "UInt64 value {value} does not fit BIGINT (at most {})",
                    i64::MAX
                ),
            ));
        }
        Ok(value)
    }
}

/// Date64 milliseconds to DATE days (floor), which must fit `i32`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Date64ToDays;

const MILLIS_PER_DAY: i64 = 86_400_000;

impl ToVarint<i64> for Date64ToDays {
    const FALLIBLE: bool = true;
    #[inline(always)]
    fn to_varint(self, millis: i64) -> Result<u64, ValueError> {
        let days = millis.div_euclid(MILLIS_PER_DAY);
        let days = i32::try_from(days).map_err(|_| {
            ValueError::new(
                ConversionErrorKind::ValueOutOfRange,
                format!("Date64 value {millis} ms is outside the DATE range"),
            )
        })?;
        Ok(i64::from(days) as u64)
    }
}

/// A timestamp in any unit to microseconds: multiply (checked) or divide (floor). The
/// factors are constants so that the common µs case costs nothing and no division by a
/// run-time divisor is ever emitted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToMicros<const MULTIPLY: i64, const DIVIDE: i64>;

impl<const MULTIPLY: i64, const DIVIDE: i64> ToVarint<i64> for ToMicros<MULTIPLY, DIVIDE> {
    const FALLIBLE: bool = MULTIPLY != 1;

    #[inline(always)]
    fn to_varint(self, value: i64) -> Result<u64, ValueError> {
        let micros = if MULTIPLY == 1 {
            value
        } else {
            value.checked_mul(MULTIPLY).ok_or_else(|| {
                ValueError::new(
                    ConversionErrorKind::ValueOutOfRange,
                    format!(
                        "timestamp {value} overflows when converted to microseconds (×{MULTIPLY})"
                    ),
                )
            })?
        };
        Ok(if DIVIDE == 1 {
            micros
        } else {
            micros.div_euclid(DIVIDE)
        } as u64)
    }
}

/// Integer-like values written as varints.
pub(crate) struct VarintCodec<'a, T: ArrowPrimitiveType, M> {
    tag: Tag,
    values: &'a ScalarBuffer<T::Native>,
    nulls: Option<&'a NullBuffer>,
    on_null: OnNull,
    map: M,
}

impl<'a, T: ArrowPrimitiveType, M: ToVarint<T::Native>> VarintCodec<'a, T, M> {
    pub(crate) fn new(
        array: &'a PrimitiveArray<T>,
        field_number: u32,
        on_null: OnNull,
        map: M,
    ) -> Self {
        Self {
            tag: Tag::new(field_number, WireType::Varint),
            values: array.values(),
            nulls: array.nulls(),
            on_null,
            map,
        }
    }
}

impl<T: ArrowPrimitiveType, M: ToVarint<T::Native>> FieldCodec for VarintCodec<'_, T, M> {
    #[inline(always)]
    fn size(&self, i: usize) -> Result<usize, ValueError> {
        if is_null(self.nulls, i) {
            return self.on_null.size();
        }
        let value = self.map.to_varint(self.values[i])?;
        Ok(self.tag.len() + varint_len(value))
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        self.nulls
    }

    #[inline(always)]
    fn write_valid(&self, i: usize, out: &mut Out<'_>) {
        if let Ok(value) = self.map.to_varint(self.values[i]) {
            out.tag(&self.tag);
            out.varint(value);
        }
    }

    fn size_column(
        &self,
        rows: Range<usize>,
        sizes: &mut [usize],
        failures: &mut Vec<(usize, ValueError)>,
    ) {
        if M::FALLIBLE || self.on_null != OnNull::Absent {
            return size_rows(self, rows, sizes, failures);
        }
        // Infallible and nulls are simply absent: every row sized without an error path
        // or a validity test, then the nulls' sizes taken back.
        let tag = self.tag.len();
        let values = &self.values[rows.clone()];
        let size_of =
            |value: T::Native| tag + varint_len(self.map.to_varint(value).unwrap_or_default());
        for (size, &value) in sizes.iter_mut().zip(values) {
            *size += size_of(value);
        }
        for_each_null(self.nulls, rows, |k| sizes[k] -= size_of(values[k]));
    }
}

/// A native float type and its fixed-width wire form.
pub(crate) trait FixedWidth: Copy {
    const WIRE_TYPE: WireType;
    const LEN: usize;
    fn put(self, out: &mut Out<'_>);
}

impl FixedWidth for f32 {
    const WIRE_TYPE: WireType = WireType::Fixed32;
    const LEN: usize = 4;
    #[inline(always)]
    fn put(self, out: &mut Out<'_>) {
        out.bytes(&self.to_le_bytes());
    }
}

impl FixedWidth for f64 {
    const WIRE_TYPE: WireType = WireType::Fixed64;
    const LEN: usize = 8;
    #[inline(always)]
    fn put(self, out: &mut Out<'_>) {
        out.bytes(&self.to_le_bytes());
    }
}

/// Floats written as protobuf `float` / `double`; `W` is the wire float (f16 widens to f32).
pub(crate) struct FixedCodec<'a, T: ArrowPrimitiveType, W> {
    tag: Tag,
    values: &'a ScalarBuffer<T::Native>,
    nulls: Option<&'a NullBuffer>,
    on_null: OnNull,
    wire: PhantomData<W>,
}

impl<'a, T, W> FixedCodec<'a, T, W>
where
    T: ArrowPrimitiveType,
    T::Native: Into<W>,
    W: FixedWidth,
{
    pub(crate) fn new(array: &'a PrimitiveArray<T>, field_number: u32, on_null: OnNull) -> Self {
        Self {
            tag: Tag::new(field_number, W::WIRE_TYPE),
            values: array.values(),
            nulls: array.nulls(),
            on_null,
            wire: PhantomData,
        }
    }
}

impl<T, W> FieldCodec for FixedCodec<'_, T, W>
where
    T: ArrowPrimitiveType,
    T::Native: Into<W>,
    W: FixedWidth,
{
    #[inline(always)]
    fn size(&self, i: usize) -> Result<usize, ValueError> {
        if is_null(self.nulls, i) {
            return self.on_null.size();
        }
        Ok(self.tag.len() + W::LEN)
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        self.nulls
    }

    #[inline(always)]
    fn write_valid(&self, i: usize, out: &mut Out<'_>) {
        out.tag(&self.tag);
        self.values[i].into().put(out);
    }

    fn size_column(
        &self,
        rows: Range<usize>,
        sizes: &mut [usize],
        failures: &mut Vec<(usize, ValueError)>,
    ) {
        if self.on_null != OnNull::Absent {
            return size_rows(self, rows, sizes, failures);
        }
        size_fixed_rows(self.nulls, rows, sizes, self.tag.len() + W::LEN);
    }
}

/// Booleans as one-byte varints.
pub(crate) struct BoolCodec<'a> {
    tag: Tag,
    array: &'a BooleanArray,
    /// The value bits, read through `BooleanBuffer::value`, which inlines (unlike
    /// `BooleanArray::value`, a call per row).
    values: &'a BooleanBuffer,
    on_null: OnNull,
}

impl<'a> BoolCodec<'a> {
    pub(crate) fn new(array: &'a BooleanArray, field_number: u32, on_null: OnNull) -> Self {
        Self {
            tag: Tag::new(field_number, WireType::Varint),
            array,
            values: array.values(),
            on_null,
        }
    }
}

impl FieldCodec for BoolCodec<'_> {
    #[inline(always)]
    fn size(&self, i: usize) -> Result<usize, ValueError> {
        if self.array.is_null(i) {
            return self.on_null.size();
        }
        Ok(self.tag.len() + 1)
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        Array::nulls(self.array)
    }

    #[inline(always)]
    fn write_valid(&self, i: usize, out: &mut Out<'_>) {
        out.tag(&self.tag);
        out.varint(u64::from(self.values.value(i)));
    }

    fn size_column(
        &self,
        rows: Range<usize>,
        sizes: &mut [usize],
        failures: &mut Vec<(usize, ValueError)>,
    ) {
        if self.on_null != OnNull::Absent {
            return size_rows(self, rows, sizes, failures);
        }
        size_fixed_rows(Array::nulls(self.array), rows, sizes, self.tag.len() + 1);
    }
}

/// Arrays whose elements are byte strings (UTF-8 or binary).
pub(crate) trait ByteValues {
    fn nulls(&self) -> Option<&NullBuffer>;
    fn bytes(&self, i: usize) -> &[u8];

    /// Adds `size_of(len)` to `sizes[k]` for each element `rows.start + k` of `rows`,
    /// `len` being its length in bytes (null elements included).
    #[inline(always)]
    fn add_sizes(&self, rows: Range<usize>, sizes: &mut [usize], size_of: impl Fn(usize) -> usize) {
        for (i, size) in rows.zip(sizes.iter_mut()) {
            *size += size_of(self.bytes(i).len());
        }
    }
}

impl<T: ByteArrayType> ByteValues for GenericByteArray<T> {
    fn nulls(&self) -> Option<&NullBuffer> {
        Array::nulls(self)
    }
    #[inline(always)]
    fn bytes(&self, i: usize) -> &[u8] {
        self.value(i).as_ref()
    }

    /// The lengths straight from consecutive offsets: no per-element bounds check.
    #[inline(always)]
    fn add_sizes(&self, rows: Range<usize>, sizes: &mut [usize], size_of: impl Fn(usize) -> usize) {
        let offsets = &self.value_offsets()[rows.start..=rows.end];
        for (ends, size) in offsets.windows(2).zip(sizes.iter_mut()) {
            *size += size_of((ends[1] - ends[0]).as_usize());
        }
    }
}

impl<T: ByteViewType + ?Sized> ByteValues for GenericByteViewArray<T> {
    fn nulls(&self) -> Option<&NullBuffer> {
        Array::nulls(self)
    }
    #[inline(always)]
    fn bytes(&self, i: usize) -> &[u8] {
        self.value(i).as_ref()
    }

    /// The lengths from the views' low 32 bits, without resolving the data buffers.
    #[inline(always)]
    fn add_sizes(&self, rows: Range<usize>, sizes: &mut [usize], size_of: impl Fn(usize) -> usize) {
        for (&view, size) in self.views()[rows].iter().zip(sizes.iter_mut()) {
            *size += size_of(view as u32 as usize);
        }
    }
}

impl ByteValues for FixedSizeBinaryArray {
    fn nulls(&self) -> Option<&NullBuffer> {
        Array::nulls(self)
    }
    #[inline(always)]
    fn bytes(&self, i: usize) -> &[u8] {
        self.value(i)
    }
}

/// Strings and binaries as length-delimited fields. `A` is a borrowed array, or an owned
/// one for values formatted on the way (decimals).
pub(crate) struct BytesCodec<A> {
    tag: Tag,
    array: A,
    on_null: OnNull,
}

impl<A: ByteValues> BytesCodec<A> {
    pub(crate) fn new(array: A, field_number: u32, on_null: OnNull) -> Self {
        Self {
            tag: Tag::new(field_number, WireType::LengthDelimited),
            array,
            on_null,
        }
    }
}

impl<A: ByteValues> FieldCodec for BytesCodec<A> {
    #[inline(always)]
    fn size(&self, i: usize) -> Result<usize, ValueError> {
        if is_null(self.array.nulls(), i) {
            return self.on_null.size();
        }
        let len = self.array.bytes(i).len();
        Ok(self.tag.len() + varint_len(len as u64) + len)
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        self.array.nulls()
    }

    #[inline(always)]
    fn write_valid(&self, i: usize, out: &mut Out<'_>) {
        let bytes = self.array.bytes(i);
        out.tag(&self.tag);
        out.varint(bytes.len() as u64);
        out.bytes(bytes);
    }

    fn size_column(
        &self,
        rows: Range<usize>,
        sizes: &mut [usize],
        failures: &mut Vec<(usize, ValueError)>,
    ) {
        if self.on_null != OnNull::Absent {
            return size_rows(self, rows, sizes, failures);
        }
        // Nulls are simply absent: every row sized, then the nulls' sizes taken back.
        let tag = self.tag.len();
        let size_of = |len: usize| tag + varint_len(len as u64) + len;
        self.array.add_sizes(rows.clone(), sizes, size_of);
        for_each_null(self.array.nulls(), rows.clone(), |k| {
            sizes[k] -= size_of(self.array.bytes(rows.start + k).len());
        });
    }
}

impl<A: ByteValues> ByteValues for &A {
    fn nulls(&self) -> Option<&NullBuffer> {
        (**self).nulls()
    }
    #[inline(always)]
    fn bytes(&self, i: usize) -> &[u8] {
        (**self).bytes(i)
    }
    #[inline(always)]
    fn add_sizes(&self, rows: Range<usize>, sizes: &mut [usize], size_of: impl Fn(usize) -> usize) {
        (**self).add_sizes(rows, sizes, size_of);
    }
}

/// The Arrow `Null` type: every element is null.
pub(crate) struct NullCodec {
    pub(crate) on_null: OnNull,
}

impl FieldCodec for NullCodec {
    fn size(&self, _: usize) -> Result<usize, ValueError> {
        self.on_null.size()
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        None
    }

    fn write_valid(&self, _: usize, _: &mut Out<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_check_their_ranges() {
        assert_eq!(CheckedU64.to_varint(7), Ok(7));
        let err = CheckedU64.to_varint(u64::MAX).unwrap_err();
        assert_eq!(err.kind, ConversionErrorKind::ValueOutOfRange);
        assert!(err.detail.contains("18446744073709551615"));

        assert_eq!(Widen.to_varint(-1i8), Ok(u64::MAX));
        assert_eq!(Date64ToDays.to_varint(-1), Ok(-1i64 as u64));
        assert_eq!(Date64ToDays.to_varint(86_400_000 * 3 + 5), Ok(3));
        assert!(Date64ToDays.to_varint(i64::MAX).is_err());

        let from_seconds = ToMicros::<1_000_000, 1>;
        assert_eq!(from_seconds.to_varint(2), Ok(2_000_000));
        assert!(from_seconds.to_varint(i64::MAX / 10).is_err());
        let from_nanos = ToMicros::<1, 1_000>;
        assert_eq!(
            from_nanos.to_varint(-1),
            Ok(-1i64 as u64),
            "floors towards -inf"
        );
    }
}

//! Round trip: random Arrow batches → `RowEncoder` → protobuf bytes → prost-reflect
//! `DynamicMessage`, compared with the message the oracle (`dynamic.rs`) builds from the
//! Arrow values directly.
//!
//! Random data in two steps: proptest draws a *type* per column (`GenType`, recursive,
//! shrinkable), a row count and a seed; `build` then fills an array of that type from a
//! small seeded RNG, so the data is reproducible from the printed case.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    new_empty_array, Array, ArrayRef, BinaryArray, BinaryViewArray, BooleanArray, DictionaryArray,
    FixedSizeBinaryArray, FixedSizeListArray, GenericListArray, GenericListViewArray,
    LargeBinaryArray, LargeStringArray, MapArray, NullArray, OffsetSizeTrait, PrimitiveArray,
    RecordBatch, RunArray, StringArray, StringViewArray, StructArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    i256, ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal128Type, Decimal256Type,
    Decimal32Type, Decimal64Type, Field, FieldRef, Fields, Float16Type, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, IntervalUnit, Schema, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type, UnionFields, UnionMode,
};
use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use arrow_zerobus_sdk_wrapper::ConversionErrorKind;
use half::f16;
use proptest::prelude::*;
use proptest::sample::select;
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, Value};

use zerobus_test_support::oracle::{expected_message, row_fails};

// ---------------------------------------------------------------------------------------
// Random types
// ---------------------------------------------------------------------------------------

/// The type of one generated column or nested field.
#[derive(Debug, Clone)]
enum GenType {
    /// A scalar Arrow type (anything of the mapping table that is not nested or indirect).
    Scalar(DataType),
    /// `Dictionary<Int32, Utf8>`.
    Dictionary,
    /// `RunEndEncoded<_, value type>` (run-end width picked from the seed).
    RunEnd(DataType),
    List(ListKind, Box<GenField>),
    Struct(Vec<GenField>),
    /// A map with this key type.
    Map(DataType, Box<GenField>),
}

#[derive(Debug, Clone, Copy)]
enum ListKind {
    List,
    LargeList,
    FixedSize(i32),
    ListView,
    LargeListView,
}

#[derive(Debug, Clone)]
struct GenField {
    ty: GenType,
    nullable: bool,
}

impl GenField {
    fn new(ty: GenType, nullable: bool) -> Self {
        // A Null column can only be nullable.
        let nullable = nullable || matches!(ty, GenType::Scalar(DataType::Null));
        Self { ty, nullable }
    }

    /// Lists and maps cannot be list elements or map values: wrap them in a struct.
    fn not_a_collection(self) -> Self {
        match self.ty {
            GenType::List(..) | GenType::Map(..) => {
                let nullable = self.nullable;
                Self::new(GenType::Struct(vec![self]), nullable)
            }
            _ => self,
        }
    }
}

fn scalar_types() -> Vec<DataType> {
    use DataType as A;
    let mut types = vec![
        A::Boolean,
        A::Int8,
        A::Int16,
        A::Int32,
        A::Int64,
        A::UInt8,
        A::UInt16,
        A::UInt32,
        A::UInt64,
        A::Float16,
        A::Float32,
        A::Float64,
        A::Utf8,
        A::LargeUtf8,
        A::Utf8View,
        A::Binary,
        A::LargeBinary,
        A::BinaryView,
        A::FixedSizeBinary(3),
        A::Date32,
        A::Date64,
        A::Decimal32(9, 3),
        A::Decimal64(18, 0),
        A::Decimal128(38, 10),
        A::Decimal128(5, 2),
        A::Decimal128(6, -2),
        A::Decimal256(38, 38),
        A::Decimal256(20, 5),
        A::Null,
    ];
    for unit in [
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ] {
        types.push(A::Timestamp(unit, None));
        types.push(A::Timestamp(unit, Some("UTC".into())));
    }
    types.push(A::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())));
    types
}

fn leaf_type() -> impl Strategy<Value = GenType> {
    prop_oneof![
        8 => select(scalar_types()).prop_map(GenType::Scalar),
        1 => Just(GenType::Dictionary),
        1 => select(vec![DataType::Int32, DataType::Utf8]).prop_map(GenType::RunEnd),
    ]
}

fn list_kind() -> impl Strategy<Value = ListKind> {
    prop_oneof![
        Just(ListKind::List),
        Just(ListKind::LargeList),
        (1..4i32).prop_map(ListKind::FixedSize),
        Just(ListKind::ListView),
        Just(ListKind::LargeListView),
    ]
}

/// Types nested up to three levels deep.
fn gen_type() -> impl Strategy<Value = GenType> {
    leaf_type().prop_recursive(3, 24, 4, |inner| {
        let field = (inner, any::<bool>()).prop_map(|(ty, nullable)| GenField::new(ty, nullable));
        let map_key = select(vec![DataType::Utf8, DataType::Int32, DataType::Int64]);
        prop_oneof![
            (list_kind(), field.clone()).prop_map(|(kind, element)| GenType::List(
                kind,
                Box::new(element.not_a_collection())
            )),
            prop::collection::vec(field.clone(), 1..4).prop_map(GenType::Struct),
            (map_key, field)
                .prop_map(|(key, value)| GenType::Map(key, Box::new(value.not_a_collection()))),
        ]
    })
}

/// One test case: the columns, the rows, the seed of the data, and how much to cut off
/// the front and back of the built batch (`batch.slice`), so arrays have an offset.
#[derive(Debug, Clone)]
struct Case {
    columns: Vec<GenField>,
    rows: usize,
    seed: u64,
    slice: Option<(usize, usize)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(
            (gen_type(), any::<bool>()).prop_map(|(ty, nullable)| GenField::new(ty, nullable)),
            1..=8,
        ),
        0..=50usize,
        any::<u64>(),
        prop::option::of((0..5usize, 0..5usize)),
    )
        .prop_map(|(columns, rows, seed, slice)| Case {
            columns,
            rows,
            seed,
            slice,
        })
}

impl Case {
    fn batch(&self) -> RecordBatch {
        let mut rng = Rng::new(self.seed);
        let (front, back) = self.slice.unwrap_or_default();
        let len = front + self.rows + back;
        let columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|c| build(c, len, &mut rng))
            .collect();
        let batch = record_batch(&self.columns, columns);
        if self.slice.is_some() {
            batch.slice(front, self.rows)
        } else {
            batch
        }
    }
}

fn record_batch(fields: &[GenField], columns: Vec<ArrayRef>) -> RecordBatch {
    let fields: Vec<Field> = fields
        .iter()
        .zip(&columns)
        .enumerate()
        .map(|(i, (f, c))| Field::new(format!("c{i}"), c.data_type().clone(), f.nullable))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("a valid batch")
}

// ---------------------------------------------------------------------------------------
// Random data
// ---------------------------------------------------------------------------------------

/// xorshift64*: tiny, seeded, good enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    /// An integer in `min..=max`: often an extreme, 0 or -1, otherwise uniform.
    fn int_in(&mut self, min: i128, max: i128) -> i128 {
        match self.below(8) {
            0 => min,
            1 => max,
            2 => 0i128.clamp(min, max),
            3 => (-1i128).clamp(min, max),
            _ => {
                let span = max.abs_diff(min) + 1;
                let wide = (u128::from(self.next()) << 64) | u128::from(self.next());
                min.wrapping_add((wide % span) as i128)
            }
        }
    }

    fn float(&mut self) -> f64 {
        match self.below(12) {
            0 => f64::NAN,
            1 => -0.0,
            2 => 0.0,
            3 => f64::INFINITY,
            4 => f64::NEG_INFINITY,
            5 => f64::MIN_POSITIVE,
            6 => f64::MAX,
            7 => f64::from_bits(self.next()),
            _ => (self.next() % 2_000_000) as f64 / 7.0 - 100_000.0,
        }
    }

    fn text(&mut self) -> String {
        match self.below(8) {
            0 => String::new(),
            1 => "héllo wörld".into(),
            2 => "日本語のテキスト 🦀".into(),
            3 => "a string longer than twelve bytes".into(),
            _ => {
                let alphabet = ['a', 'Z', '0', ' ', 'é', 'ß', '中', '🦀', '\u{0}', '"'];
                (0..self.below(16)).map(|_| self.pick(&alphabet)).collect()
            }
        }
    }

    fn blob(&mut self) -> Vec<u8> {
        let len = if self.percent(25) { 0 } else { self.below(40) };
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A validity mask for `len` values: none for a non-nullable field, otherwise none 40% of the time,
/// else about 20% nulls.
fn validity(nullable: bool, len: usize, rng: &mut Rng) -> Option<NullBuffer> {
    if !nullable || rng.percent(40) {
        return None;
    }
    let valid: Vec<bool> = (0..len).map(|_| !rng.percent(20)).collect();
    Some(NullBuffer::from(valid))
}

/// `len` optional values: `None` where `nulls` says null.
fn optional<T>(
    len: usize,
    nulls: &Option<NullBuffer>,
    mut value: impl FnMut() -> T,
) -> Vec<Option<T>> {
    (0..len)
        .map(|i| {
            let v = value();
            nulls.as_ref().is_none_or(|n| n.is_valid(i)).then_some(v)
        })
        .collect()
}

/// A primitive array; values under nulls are random too (the encoder must not look).
fn primitive<T: ArrowPrimitiveType>(
    len: usize,
    nulls: Option<NullBuffer>,
    mut value: impl FnMut() -> T::Native,
) -> PrimitiveArray<T> {
    let values: Vec<T::Native> = (0..len).map(|_| value()).collect();
    PrimitiveArray::new(values.into(), nulls)
}

/// A timestamp: an extreme `i64` now and then, otherwise a date within ±60 years.
fn timestamp(rng: &mut Rng, per_second: i64) -> i64 {
    if rng.percent(15) {
        return rng.int_in(i64::MIN.into(), i64::MAX.into()) as i64;
    }
    let seconds = rng.int_in(-2_000_000_000, 2_000_000_000) as i64;
    seconds * per_second + rng.below(per_second as usize) as i64
}

fn date64(rng: &mut Rng) -> i64 {
    if rng.percent(15) {
        return rng.int_in(i64::MIN.into(), i64::MAX.into()) as i64;
    }
    rng.int_in(-100_000, 100_000) as i64 * 86_400_000 + rng.int_in(-86_399_999, 86_399_999) as i64
}

fn build(field: &GenField, len: usize, rng: &mut Rng) -> ArrayRef {
    let nullable = field.nullable;
    match &field.ty {
        GenType::Scalar(data_type) => {
            let nulls = validity(nullable, len, rng);
            scalar(data_type, len, nulls, rng)
        }
        GenType::Dictionary => {
            // Empty dictionaries (all keys null) are covered by `empty_dictionary_values`.
            let size = 1 + rng.below(4);
            let value_nulls = validity(nullable, size, rng);
            let values = StringArray::from(optional(size, &value_nulls, || rng.text()));
            let keys = primitive::<Int32Type>(len, validity(nullable, len, rng), || {
                rng.below(size) as i32
            });
            Arc::new(DictionaryArray::new(keys, Arc::new(values)))
        }
        GenType::RunEnd(value_type) => {
            let mut ends = Vec::new();
            while ends.last().copied().unwrap_or(0) < len {
                let end = ends.last().copied().unwrap_or(0) + 1 + rng.below(3);
                ends.push(end.min(len));
            }
            let value_field = GenField::new(GenType::Scalar(value_type.clone()), nullable);
            let values = build(&value_field, ends.len(), rng);
            let ends = ends.into_iter();
            match rng.below(3) {
                0 => Arc::new(
                    RunArray::try_new(
                        &ends
                            .map(|e| e as i16)
                            .collect::<PrimitiveArray<Int16Type>>(),
                        &values,
                    )
                    .unwrap(),
                ),
                1 => Arc::new(
                    RunArray::try_new(
                        &ends
                            .map(|e| e as i32)
                            .collect::<PrimitiveArray<Int32Type>>(),
                        &values,
                    )
                    .unwrap(),
                ),
                _ => Arc::new(
                    RunArray::try_new(
                        &ends
                            .map(|e| e as i64)
                            .collect::<PrimitiveArray<Int64Type>>(),
                        &values,
                    )
                    .unwrap(),
                ),
            }
        }
        GenType::List(kind, element) => {
            let nulls = validity(nullable, len, rng);
            list(*kind, element, len, nulls, rng)
        }
        GenType::Struct(children) => {
            let columns: Vec<ArrayRef> = children.iter().map(|c| build(c, len, rng)).collect();
            let fields: Fields = children
                .iter()
                .zip(&columns)
                .enumerate()
                .map(|(i, (f, c))| Field::new(format!("f{i}"), c.data_type().clone(), f.nullable))
                .collect();
            let nulls = validity(nullable, len, rng);
            Arc::new(StructArray::new(fields, columns, nulls))
        }
        GenType::Map(key_type, value) => {
            let lengths: Vec<usize> = (0..len).map(|_| rng.below(4)).collect();
            let total = lengths.iter().sum();
            // Few distinct keys, so maps often repeat one (the last entry wins).
            let keys: ArrayRef = match key_type {
                DataType::Utf8 => Arc::new(StringArray::from_iter_values(
                    (0..total).map(|_| rng.pick(&["", "a", "b", "ключ"])),
                )),
                DataType::Int32 => Arc::new(primitive::<Int32Type>(total, None, || {
                    rng.pick(&[0, 1, 2, i32::MIN, i32::MAX])
                })),
                _ => Arc::new(primitive::<Int64Type>(total, None, || {
                    rng.pick(&[0, -1, 7, i64::MIN, i64::MAX])
                })),
            };
            let values = build(value, total, rng);
            let entry_fields = Fields::from(vec![
                Field::new("key", keys.data_type().clone(), false),
                Field::new("value", values.data_type().clone(), value.nullable),
            ]);
            let entries = StructArray::new(entry_fields, vec![keys, values], None);
            let entries_field = Field::new("entries", entries.data_type().clone(), false);
            let nulls = validity(nullable, len, rng);
            Arc::new(MapArray::new(
                Arc::new(entries_field),
                OffsetBuffer::from_lengths(lengths),
                entries,
                nulls,
                false,
            ))
        }
    }
}

fn list(
    kind: ListKind,
    element: &GenField,
    len: usize,
    nulls: Option<NullBuffer>,
    rng: &mut Rng,
) -> ArrayRef {
    let item = |values: &ArrayRef| {
        Arc::new(Field::new(
            "item",
            values.data_type().clone(),
            element.nullable,
        ))
    };
    match kind {
        ListKind::List | ListKind::LargeList => {
            // Null lists get elements too: Arrow allows it, and they must not be written.
            let lengths: Vec<usize> = (0..len).map(|_| rng.below(4)).collect();
            let values = build(element, lengths.iter().sum(), rng);
            if matches!(kind, ListKind::List) {
                let offsets = OffsetBuffer::<i32>::from_lengths(lengths);
                Arc::new(GenericListArray::new(item(&values), offsets, values, nulls))
            } else {
                let offsets = OffsetBuffer::<i64>::from_lengths(lengths);
                Arc::new(GenericListArray::new(item(&values), offsets, values, nulls))
            }
        }
        ListKind::FixedSize(size) => {
            let values = build(element, len * size as usize, rng);
            Arc::new(FixedSizeListArray::new(item(&values), size, values, nulls))
        }
        ListKind::ListView | ListKind::LargeListView => {
            // Views anywhere in the values, overlapping and out of order.
            let total = rng.below(2 * len + 1);
            let values = build(element, total, rng);
            let (mut offsets, mut sizes) = (Vec::new(), Vec::new());
            for _ in 0..len {
                let offset = rng.below(total + 1);
                offsets.push(offset);
                sizes.push(rng.below(total - offset + 1).min(4));
            }
            if matches!(kind, ListKind::ListView) {
                list_view::<i32>(item(&values), values, &offsets, &sizes, nulls)
            } else {
                list_view::<i64>(item(&values), values, &offsets, &sizes, nulls)
            }
        }
    }
}

fn list_view<O: OffsetSizeTrait>(
    field: FieldRef,
    values: ArrayRef,
    offsets: &[usize],
    sizes: &[usize],
    nulls: Option<NullBuffer>,
) -> ArrayRef {
    let native = |v: &usize| O::from_usize(*v).expect("small test offsets");
    let offsets = offsets.iter().map(native).collect::<ScalarBuffer<O>>();
    let sizes = sizes.iter().map(native).collect::<ScalarBuffer<O>>();
    Arc::new(GenericListViewArray::new(
        field, offsets, sizes, values, nulls,
    ))
}

fn scalar(data_type: &DataType, len: usize, nulls: Option<NullBuffer>, rng: &mut Rng) -> ArrayRef {
    use DataType as A;
    macro_rules! int {
        ($t:ty, $native:ty) => {
            Arc::new(primitive::<$t>(len, nulls, || {
                rng.int_in(<$native>::MIN.into(), <$native>::MAX.into()) as $native
            }))
        };
    }
    macro_rules! decimal {
        ($t:ty, $p:expr, $s:expr, $to_native:expr) => {{
            let limit = 10i128.pow(u32::from(*$p)) - 1;
            let array = primitive::<$t>(len, nulls, || $to_native(rng.int_in(-limit, limit)));
            Arc::new(array.with_precision_and_scale(*$p, *$s).unwrap())
        }};
    }
    match data_type {
        A::Null => Arc::new(NullArray::new(len)),
        A::Boolean => {
            let values: BooleanBuffer = (0..len).map(|_| rng.percent(50)).collect();
            Arc::new(BooleanArray::new(values, nulls))
        }
        A::Int8 => int!(Int8Type, i8),
        A::Int16 => int!(Int16Type, i16),
        A::Int32 => int!(Int32Type, i32),
        A::Int64 => int!(Int64Type, i64),
        A::UInt8 => int!(UInt8Type, u8),
        A::UInt16 => int!(UInt16Type, u16),
        A::UInt32 => int!(UInt32Type, u32),
        A::UInt64 => int!(UInt64Type, u64),
        A::Date32 => int!(Date32Type, i32),
        A::Date64 => Arc::new(primitive::<Date64Type>(len, nulls, || date64(rng))),
        A::Float16 => Arc::new(primitive::<Float16Type>(len, nulls, || {
            match rng.below(6) {
                0 => f16::from_bits(rng.next() as u16),
                _ => f16::from_f64(rng.float()),
            }
        })),
        A::Float32 => Arc::new(primitive::<Float32Type>(len, nulls, || {
            match rng.below(6) {
                0 => f32::from_bits(rng.next() as u32),
                _ => rng.float() as f32,
            }
        })),
        A::Float64 => Arc::new(primitive::<Float64Type>(len, nulls, || rng.float())),
        A::Timestamp(unit, tz) => {
            let array: ArrayRef = match unit {
                TimeUnit::Second => Arc::new(
                    primitive::<TimestampSecondType>(len, nulls, || timestamp(rng, 1))
                        .with_timezone_opt(tz.clone()),
                ),
                TimeUnit::Millisecond => Arc::new(
                    primitive::<TimestampMillisecondType>(len, nulls, || timestamp(rng, 1_000))
                        .with_timezone_opt(tz.clone()),
                ),
                TimeUnit::Microsecond => Arc::new(
                    primitive::<TimestampMicrosecondType>(len, nulls, || timestamp(rng, 1_000_000))
                        .with_timezone_opt(tz.clone()),
                ),
                TimeUnit::Nanosecond => Arc::new(
                    primitive::<TimestampNanosecondType>(len, nulls, || {
                        timestamp(rng, 1_000_000_000)
                    })
                    .with_timezone_opt(tz.clone()),
                ),
            };
            array
        }
        A::Decimal32(p, s) => decimal!(Decimal32Type, p, s, |v: i128| v as i32),
        A::Decimal64(p, s) => decimal!(Decimal64Type, p, s, |v: i128| v as i64),
        A::Decimal128(p, s) => decimal!(Decimal128Type, p, s, |v: i128| v),
        A::Decimal256(p, s) => decimal!(Decimal256Type, p, s, i256::from_i128),
        A::Utf8 => Arc::new(StringArray::from(optional(len, &nulls, || rng.text()))),
        A::LargeUtf8 => Arc::new(LargeStringArray::from(optional(len, &nulls, || rng.text()))),
        A::Utf8View => Arc::new(StringViewArray::from_iter(optional(len, &nulls, || {
            rng.text()
        }))),
        A::Binary => Arc::new(BinaryArray::from_iter(optional(len, &nulls, || rng.blob()))),
        A::LargeBinary => Arc::new(LargeBinaryArray::from_iter(optional(len, &nulls, || {
            rng.blob()
        }))),
        A::BinaryView => Arc::new(BinaryViewArray::from_iter(optional(len, &nulls, || {
            rng.blob()
        }))),
        A::FixedSizeBinary(size) => {
            let size = *size as usize;
            let values = optional(len, &nulls, || {
                (0..size).map(|_| rng.next() as u8).collect::<Vec<u8>>()
            });
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    values.into_iter(),
                    size as i32,
                )
                .unwrap(),
            )
        }
        other => unreachable!("not generated: {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------

/// A decoded message in a form whose equality is exact: floats by their bits (so NaN
/// equals NaN with the same payload, and -0.0 differs from 0.0; `Value`'s own `==` gets
/// both wrong), fields and map entries in a fixed order (BTreeMap), and the count of
/// unknown fields (which must be 0).
#[derive(Debug, PartialEq)]
enum Canon {
    Message {
        fields: BTreeMap<u32, Canon>,
        unknown: usize,
    },
    List(Vec<Canon>),
    Map(BTreeMap<MapKey, Canon>),
    F32Bits(u32),
    F64Bits(u64),
    Other(Value),
}

fn canonical_message(message: &DynamicMessage) -> Canon {
    Canon::Message {
        fields: message
            .fields()
            .map(|(field, value)| (field.number(), canonical(value)))
            .collect(),
        unknown: message.unknown_fields().count(),
    }
}

fn canonical(value: &Value) -> Canon {
    match value {
        Value::F32(v) => Canon::F32Bits(v.to_bits()),
        Value::F64(v) => Canon::F64Bits(v.to_bits()),
        Value::Message(m) => canonical_message(m),
        Value::List(items) => Canon::List(items.iter().map(canonical).collect()),
        Value::Map(map) => Canon::Map(map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect()),
        other => Canon::Other(other.clone()),
    }
}

fn descriptor(schema: &TableSchema) -> MessageDescriptor {
    let pool = DescriptorPool::from_file_descriptor_set(schema.file_descriptor_set())
        .expect("the descriptor is valid protobuf");
    pool.get_message_by_name(schema.message_name())
        .expect("the message is in the pool")
}

/// Encodes `batch` and compares every row with the oracle.
fn check_batch(batch: &RecordBatch) -> Result<(), TestCaseError> {
    let schema = TableSchema::try_new(batch.schema(), "main.default.roundtrip")
        .map_err(|e| TestCaseError::fail(format!("schema rejected: {e}")))?;
    let desc = descriptor(&schema);
    let encoder = RowEncoder::new(Arc::new(schema));
    let encoded = encoder
        .encode(batch)
        .map_err(|e| TestCaseError::fail(format!("encode failed: {e}")))?;
    prop_assert_eq!(encoded.num_rows(), batch.num_rows());

    // The size-only pass (the Flight transport's) agrees on everything but the bytes.
    let measured = encoder
        .measure(batch)
        .map_err(|e| TestCaseError::fail(format!("measure failed: {e}")))?;
    prop_assert!(!measured.has_records());
    prop_assert_eq!(measured.failures(), encoded.failures());
    prop_assert_eq!(measured.encoded_len(), encoded.encoded_len());
    let written: Vec<(usize, usize)> = encoded.records().map(|(r, b)| (r, b.len())).collect();
    prop_assert_eq!(measured.record_lens().collect::<Vec<_>>(), written);

    // Encoded in two slices numbered from their first row (as the wrapper encodes a batch
    // larger than one request), the rows get the same records and the same failures.
    let cut = batch.num_rows() / 3;
    let mut sliced_records = Vec::new();
    let mut sliced_failures = Vec::new();
    for (start, len) in [(0, cut), (cut, batch.num_rows() - cut)] {
        let part = encoder
            .clone()
            .with_first_row(start)
            .encode(&batch.slice(start, len))
            .map_err(|e| TestCaseError::fail(format!("encode of a slice failed: {e}")))?;
        prop_assert_eq!(part.rows(), start..start + len);
        sliced_records.extend(part.records().map(|(row, bytes)| (row, bytes.to_vec())));
        sliced_failures.extend(part.failures().iter().cloned());
    }
    let whole: Vec<(usize, Vec<u8>)> = encoded.records().map(|(r, b)| (r, b.to_vec())).collect();
    prop_assert_eq!(sliced_records, whole);
    prop_assert_eq!(sliced_failures.as_slice(), encoded.failures());

    let predicted: Vec<usize> = (0..batch.num_rows())
        .filter(|&row| row_fails(batch, row))
        .collect();
    let failed: Vec<usize> = encoded.failures().iter().map(|(row, _)| *row).collect();
    prop_assert_eq!(&failed, &predicted, "failed rows: {:?}", encoded.failures());
    for (row, failure) in encoded.failures() {
        prop_assert_eq!(failure.row, Some(*row));
        prop_assert!(
            matches!(
                failure.kind,
                ConversionErrorKind::ValueOutOfRange
                    | ConversionErrorKind::NullListElement
                    | ConversionErrorKind::NullMapValue
            ),
            "unexpected failure {:?}",
            failure
        );
        prop_assert!(encoded.record(*row).is_none());
    }

    let mut total = 0;
    for (row, bytes) in encoded.records() {
        prop_assert_eq!(encoded.record(row), Some(bytes));
        total += bytes.len();
        let decoded = DynamicMessage::decode(desc.clone(), bytes)
            .map_err(|e| TestCaseError::fail(format!("row {row} does not decode: {e}")))?;
        let expected = expected_message(&desc, batch, row);
        prop_assert_eq!(
            canonical_message(&decoded),
            canonical_message(&expected),
            "row {} differs (left: decoded, right: oracle)",
            row
        );
    }
    prop_assert_eq!(encoded.records().count() + failed.len(), batch.num_rows());
    prop_assert_eq!(total, encoded.encoded_len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_batches_decode_to_the_oracle_message(case in case()) {
        check_batch(&case.batch())?;
    }
}

// ---------------------------------------------------------------------------------------
// Deterministic cases
// ---------------------------------------------------------------------------------------

/// One column of every type of the mapping table (nested ones over a few element types).
fn every_type() -> Vec<GenField> {
    let scalar = |t: DataType| GenField::new(GenType::Scalar(t), true);
    let mut columns: Vec<GenField> = scalar_types().into_iter().map(scalar).collect();
    columns.push(GenField::new(GenType::Dictionary, true));
    columns.push(GenField::new(GenType::RunEnd(DataType::Int32), true));
    columns.push(GenField::new(GenType::RunEnd(DataType::Utf8), false));
    for (kind, element) in [
        (ListKind::List, DataType::Int64),
        (ListKind::LargeList, DataType::Utf8),
        (ListKind::FixedSize(2), DataType::Float64),
        (ListKind::ListView, DataType::Binary),
        (ListKind::LargeListView, DataType::Decimal128(10, 3)),
    ] {
        let element = GenField::new(GenType::Scalar(element), false);
        columns.push(GenField::new(GenType::List(kind, Box::new(element)), true));
    }
    let point = GenType::Struct(vec![scalar(DataType::Float32), scalar(DataType::Utf8)]);
    columns.push(GenField::new(point.clone(), true));
    let points = GenType::List(
        ListKind::List,
        Box::new(GenField::new(point.clone(), false)),
    );
    columns.push(GenField::new(points, true));
    for key in [DataType::Utf8, DataType::Int32, DataType::Int64] {
        let value = GenField::new(point.clone(), false);
        columns.push(GenField::new(GenType::Map(key, Box::new(value)), true));
    }
    columns
}

#[test]
fn every_mapped_type_round_trips() {
    for seed in 0..20 {
        let case = Case {
            columns: every_type(),
            rows: 40,
            seed,
            slice: Some((3, 2)),
        };
        check_batch(&case.batch()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

/// Conversions checked against values written out by hand, not by the oracle.
#[test]
fn conversions_match_hand_written_values() {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "ns",
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(vec![
                -1, 1_999,
            ])),
        ),
        (
            "s",
            Arc::new(PrimitiveArray::<TimestampSecondType>::from(vec![-2, 3]).with_timezone("UTC")),
        ),
        (
            "d64",
            Arc::new(PrimitiveArray::<Date64Type>::from(vec![
                -1,
                86_400_000 * 2 + 1,
            ])),
        ),
        (
            "dec",
            Arc::new(
                PrimitiveArray::<Decimal128Type>::from(vec![-1230, 5])
                    .with_precision_and_scale(5, 2)
                    .unwrap(),
            ),
        ),
        (
            "u16",
            Arc::new(PrimitiveArray::<UInt16Type>::from(vec![u16::MAX, 0])),
        ),
        (
            "h",
            Arc::new(PrimitiveArray::<Float16Type>::from(vec![
                f16::from_f32(1.5),
                f16::NEG_INFINITY,
            ])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "t").unwrap());
    let desc = descriptor(&schema);
    let encoded = RowEncoder::new(schema).encode(&batch).unwrap();
    let get = |row: usize, name: &str| {
        let message = DynamicMessage::decode(desc.clone(), encoded.record(row).unwrap()).unwrap();
        message.get_field_by_name(name).unwrap().into_owned()
    };
    assert_eq!(get(0, "ns"), Value::I64(-1), "floor, not truncation");
    assert_eq!(get(1, "ns"), Value::I64(1));
    assert_eq!(get(0, "s"), Value::I64(-2_000_000));
    assert_eq!(get(0, "d64"), Value::I32(-1));
    assert_eq!(get(1, "d64"), Value::I32(2));
    assert_eq!(get(0, "dec"), Value::String("-12.30".into()));
    assert_eq!(get(1, "dec"), Value::String("0.05".into()));
    assert_eq!(get(0, "u16"), Value::I32(65_535));
    assert_eq!(get(0, "h"), Value::F32(1.5));
    assert_eq!(get(1, "h"), Value::F32(f32::NEG_INFINITY));
}

#[test]
fn rows_that_cannot_be_encoded_fail_with_their_kind() {
    let ids: ArrayRef = Arc::new(PrimitiveArray::<UInt64Type>::from(vec![
        1,
        u64::MAX,
        3,
        4,
        5,
    ]));
    let seconds: ArrayRef = Arc::new(PrimitiveArray::<TimestampSecondType>::from(vec![
        0,
        0,
        i64::MAX,
        0,
        0,
    ]));
    let lists: ArrayRef = Arc::new(GenericListArray::<i32>::from_iter_primitive::<
        Int32Type,
        _,
        _,
    >(vec![
        Some(vec![Some(1)]),
        None,
        None,
        Some(vec![Some(2), None]),
        Some(vec![]),
    ]));
    let batch =
        RecordBatch::try_from_iter(vec![("id", ids), ("ts", seconds), ("xs", lists)]).unwrap();
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "t").unwrap());
    let encoded = RowEncoder::new(schema).encode(&batch).unwrap();
    let failures: Vec<(usize, ConversionErrorKind, Option<&str>)> = encoded
        .failures()
        .iter()
        .map(|(row, f)| (*row, f.kind, f.column.as_deref()))
        .collect();
    assert_eq!(
        failures,
        [
            (1, ConversionErrorKind::ValueOutOfRange, Some("id")),
            (2, ConversionErrorKind::ValueOutOfRange, Some("ts")),
            (3, ConversionErrorKind::NullListElement, Some("xs[1]")),
        ]
    );
    let predicted: Vec<usize> = (0..5).filter(|&row| row_fails(&batch, row)).collect();
    assert_eq!(predicted, [1, 2, 3]);
}

#[test]
fn unsupported_types_are_rejected_naming_the_column() {
    let union = DataType::Union(
        UnionFields::try_new(
            vec![0, 1],
            vec![
                Field::new("i", DataType::Int32, true),
                Field::new("s", DataType::Utf8, true),
            ],
        )
        .unwrap(),
        UnionMode::Dense,
    );
    for data_type in [
        DataType::Time64(TimeUnit::Microsecond),
        DataType::Time32(TimeUnit::Second),
        DataType::Duration(TimeUnit::Nanosecond),
        DataType::Interval(IntervalUnit::MonthDayNano),
        union,
    ] {
        let schema = Schema::new(vec![
            Field::new("ok", DataType::Int32, true),
            Field::new("bad_col", data_type.clone(), true),
        ]);
        let err = TableSchema::try_new(Arc::new(schema), "t").unwrap_err();
        let failure = err.conversion_failure().expect("a conversion error");
        assert_eq!(
            failure.kind,
            ConversionErrorKind::UnsupportedType,
            "{data_type}"
        );
        assert_eq!(failure.column.as_deref(), Some("bad_col"), "{data_type}");
        assert!(err.to_string().contains("bad_col"), "{err}");

        let nested = Schema::new(vec![Field::new(
            "outer",
            DataType::Struct(vec![Field::new("inner", data_type.clone(), true)].into()),
            true,
        )]);
        let err = TableSchema::try_new(Arc::new(nested), "t").unwrap_err();
        assert_eq!(
            err.conversion_failure().unwrap().column.as_deref(),
            Some("outer.inner"),
            "{data_type}"
        );
    }
}

/// A NOT NULL struct field may hold nulls where its struct is null (Arrow masks them);
/// they are never looked at, like values under a null list.
#[test]
fn nulls_under_a_null_struct_are_ignored() {
    let x = PrimitiveArray::<UInt64Type>::from(vec![Some(1), None, Some(u64::MAX)]);
    let fields = Fields::from(vec![Field::new("x", DataType::UInt64, false)]);
    let parent = NullBuffer::from(vec![true, false, false]);
    let point = StructArray::new(fields, vec![Arc::new(x) as ArrayRef], Some(parent));
    let batch = RecordBatch::try_from_iter(vec![("p", Arc::new(point) as ArrayRef)]).unwrap();
    check_batch(&batch).unwrap();
    assert!((0..3).all(|row| !row_fails(&batch, row)));
}

/// A dictionary column whose dictionary is empty (all keys null, or no rows at all, as
/// `new_empty_array` makes) is valid Arrow and must encode as absent values.
///
/// BUG: `encode::build::codec` calls `AnyDictionaryArray::normalized_keys`, which panics
/// (`assert_ne!(v_len, 0)`) when the dictionary has no values.
#[test]
fn empty_dictionary_values() {
    let keys = PrimitiveArray::<Int32Type>::from(vec![None, None]);
    let dictionary = DictionaryArray::new(keys, Arc::new(StringArray::from(Vec::<&str>::new())));
    let batch = RecordBatch::try_from_iter(vec![("d", Arc::new(dictionary) as ArrayRef)]).unwrap();
    check_batch(&batch).unwrap();

    let empty = new_empty_array(&DataType::Dictionary(
        Box::new(DataType::Int32),
        Box::new(DataType::Utf8),
    ));
    let batch = RecordBatch::try_from_iter(vec![("d", empty)]).unwrap();
    check_batch(&batch).unwrap();
}

//! The encoder bench's batches: `mixed` (12 flat columns) and `nested` (a list, a struct
//! and a map), deterministic for a given row count.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, ListArray, MapArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields};

/// Rows of each bench batch.
pub const ROWS: usize = 100_000;

/// xorshift64*, for deterministic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    fn text(&mut self, lo: usize, hi: usize) -> String {
        (0..self.range(lo, hi))
            .map(|_| char::from(b'a' + (self.next() % 26) as u8))
            .collect()
    }

    /// About 10% nulls.
    fn nulls(&mut self, rows: usize) -> Option<NullBuffer> {
        Some(
            (0..rows)
                .map(|_| !self.next().is_multiple_of(10))
                .collect::<Vec<bool>>()
                .into(),
        )
    }
}

/// (a) 12 flat columns; every other one has ~10% nulls.
pub fn mixed_batch(rows: usize) -> RecordBatch {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let r = &mut rng;
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "small",
            Arc::new(Int16Array::from_iter_values(
                (0..rows).map(|_| r.next() as i16),
            )),
        ),
        (
            "count",
            Arc::new(Int32Array::new(
                (0..rows).map(|_| r.range(0, 100_000) as i32).collect(),
                r.nulls(rows),
            )),
        ),
        (
            "id",
            Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|_| r.next() as i64),
            )),
        ),
        (
            "ratio",
            Arc::new(Float32Array::new(
                (0..rows).map(|_| r.next() as f32 / 1e9).collect(),
                r.nulls(rows),
            )),
        ),
        (
            "amount",
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|_| r.next() as f64 / 1e6),
            )),
        ),
        (
            "flag",
            Arc::new(BooleanArray::new(
                (0..rows).map(|_| r.next().is_multiple_of(2)).collect(),
                r.nulls(rows),
            )),
        ),
        (
            "name",
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|_| r.text(5, 30)),
            )),
        ),
        (
            "city",
            Arc::new(StringArray::from_iter(
                (0..rows).map(|_| (!r.next().is_multiple_of(10)).then(|| r.text(5, 30))),
            )),
        ),
        (
            "at",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    (0..rows).map(|_| 1_700_000_000_000_000 + r.range(0, 1 << 40) as i64),
                )
                .with_timezone("UTC"),
            ),
        ),
        (
            "day",
            Arc::new(Date32Array::new(
                (0..rows).map(|_| r.range(18_000, 21_000) as i32).collect(),
                r.nulls(rows),
            )),
        ),
        (
            "blob",
            Arc::new(BinaryArray::from_iter_values((0..rows).map(|_| {
                let len = r.range(16, 64);
                (0..len).map(|_| r.next() as u8).collect::<Vec<u8>>()
            }))),
        ),
        (
            "other",
            Arc::new(Int64Array::new(
                (0..rows).map(|_| r.range(0, 1 << 20) as i64).collect(),
                r.nulls(rows),
            )),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

/// (b) list<int64> (0–8 elements), struct{a: int32, b: utf8}, map<utf8, int32> (0–4 entries).
pub fn nested_batch(rows: usize) -> RecordBatch {
    let mut r = Rng(0xD1B5_4A32_D192_ED03);

    let lengths: Vec<usize> = (0..rows).map(|_| r.range(0, 8)).collect();
    let values =
        Int64Array::from_iter_values((0..lengths.iter().sum()).map(|_| r.next() as i64 >> 20));
    let list = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Int64, false)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(values),
        None,
    );

    let fields = Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ]);
    let a = Int32Array::from_iter_values((0..rows).map(|_| r.range(0, 1_000_000) as i32));
    let b = StringArray::from_iter_values((0..rows).map(|_| r.text(5, 30)));
    let structs = StructArray::new(fields, vec![Arc::new(a), Arc::new(b)], r.nulls(rows));

    // Distinct keys within a map, so both contenders write every entry.
    let lengths: Vec<usize> = (0..rows).map(|_| r.range(0, 4)).collect();
    let keys: Vec<String> = lengths
        .iter()
        .flat_map(|&n| (0..n).map(|k| format!("key{k}")))
        .collect();
    let keys = StringArray::from(keys);
    let total = keys.len();
    let values = Int32Array::from_iter_values((0..total).map(|_| r.range(0, 1000) as i32));
    let entry_fields = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Int32, true),
    ]);
    let entries = StructArray::new(entry_fields, vec![Arc::new(keys), Arc::new(values)], None);
    let map = MapArray::new(
        Arc::new(Field::new("entries", entries.data_type().clone(), false)),
        OffsetBuffer::from_lengths(lengths),
        entries,
        None,
        false,
    );

    RecordBatch::try_from_iter(vec![
        ("numbers", Arc::new(list) as ArrayRef),
        ("pair", Arc::new(structs) as ArrayRef),
        ("attributes", Arc::new(map) as ArrayRef),
    ])
    .unwrap()
}

/// One row of a struct column nested `depth` levels deep (`s.s.….v`, `v` = 7): the
/// deepest table the nesting limit allows at `depth` = 64.
pub fn deep_struct_batch(depth: usize) -> RecordBatch {
    let mut array: ArrayRef = Arc::new(Int64Array::from(vec![7]));
    let mut name = "v";
    for _ in 0..depth {
        let field = Field::new(name, array.data_type().clone(), true);
        array = Arc::new(StructArray::from(vec![(Arc::new(field), array)]));
        name = "s";
    }
    RecordBatch::try_from_iter([("s", array)]).unwrap()
}

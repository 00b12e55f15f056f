//! The rows of the end-to-end bench (`benches/e2e.rs`), also encoded alone by
//! `benches/encode.rs` and decoded by the local server's decoder tests: id
//! int64 (not null), name utf8 (10–40 characters), score float64, flag bool, timestamp µs
//! UTC; every 10th value of the nullable columns is null (≈ 45 bytes of protobuf per row).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The table's Arrow schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

/// `rows` deterministic rows (names of 10–40 characters, every 10th value null).
pub fn batch(rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (0..rows as i64).collect();
    let some = |i: &i64| i % 10 != 3;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(StringArray::from_iter(ids.iter().map(|i| {
            some(i).then(|| format!("{:0>width$}", i, width = 10 + (*i % 31) as usize))
        }))),
        Arc::new(Float64Array::from_iter(
            ids.iter().map(|i| some(i).then_some(*i as f64 * 0.25)),
        )),
        Arc::new(BooleanArray::from_iter(
            ids.iter().map(|i| some(i).then_some(i % 2 == 0)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                ids.iter()
                    .map(|i| some(i).then_some(1_700_000_000_000_000 + i)),
            )
            .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(schema(), columns).expect("batch")
}

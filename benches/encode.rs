//! Encoder throughput: `RowEncoder` against a prost-reflect baseline that builds one
//! `DynamicMessage` per row (the round-trip test's oracle) and serializes it.
//!
//! Run with `cargo bench --bench encode`. Throughput is the encoded output (bytes of the
//! records), the same for every contender:
//!
//! - `ours`: `RowEncoder::encode` (size pass, then the records written);
//! - `ours_measure`: `RowEncoder::measure`, the size pass alone (what the Arrow Flight
//!   transport runs to validate and size rows it sends as Arrow);
//! - `dynamic_message`: the baseline.
//!
//! Batches: `mixed` and `nested` (100,000 rows, `zerobus_test_support::data`), and
//! `events_1MB`, the 1 MB batch of the end-to-end bench (22,222 rows of
//! `zerobus_test_support::events`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use prost::Message;
use prost_reflect::{DescriptorPool, MessageDescriptor};

use zerobus_test_support::data::{mixed_batch, nested_batch, ROWS};
use zerobus_test_support::{events, oracle};

/// prost-reflect's way: one `DynamicMessage` per row, serialized. Returns the total bytes.
fn dynamic_message_encode(desc: &MessageDescriptor, batch: &RecordBatch) -> usize {
    (0..batch.num_rows())
        .map(|row| {
            oracle::expected_message(desc, batch, row)
                .encode_to_vec()
                .len()
        })
        .sum()
}

fn bench_batch(c: &mut Criterion, name: &str, batch: &RecordBatch) {
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "bench").unwrap());
    let pool = DescriptorPool::from_file_descriptor_set(schema.file_descriptor_set()).unwrap();
    let desc = pool.get_message_by_name(schema.message_name()).unwrap();
    let encoder = RowEncoder::new(schema);

    let encoded = encoder.encode(batch).unwrap();
    assert!(encoded.failures().is_empty());
    assert_eq!(
        encoder.measure(batch).unwrap().encoded_len(),
        encoded.encoded_len()
    );
    // Both contenders produce the same amount of output.
    assert_eq!(encoded.encoded_len(), dynamic_message_encode(&desc, batch));

    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Bytes(encoded.encoded_len() as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("ours", |b| {
        b.iter(|| encoder.encode(black_box(batch)).unwrap())
    });
    group.bench_function("ours_measure", |b| {
        b.iter(|| encoder.measure(black_box(batch)).unwrap())
    });
    group.bench_function("dynamic_message", |b| {
        b.iter(|| dynamic_message_encode(&desc, black_box(batch)))
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    bench_batch(c, "mixed", &mixed_batch(ROWS));
    bench_batch(c, "nested", &nested_batch(ROWS));
    bench_batch(c, "events_1MB", &events::batch(22_222));
}

criterion_group!(benches, encode);
criterion_main!(benches);

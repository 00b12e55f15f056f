//! Cutting a batch's records into ingest calls of at most `max_request_bytes`, always under
//! the SDK's payload limit.
//!
//! The SDK rejects an `ingest_records_offset` call whose records add up to more than
//! `max_ingest_payload_bytes` (10 MiB − 64 KiB by default), and the service limits the
//! gRPC message, which also carries a tag and a length per record. A chunk therefore
//! counts each record as its bytes plus that framing, so both limits hold.
//!
//! Chunks are cut at [`max_request_bytes`](crate::WrapperConfiguration::max_request_bytes)
//! (512 KiB by default), well under the payload limit: the SDK sends a request, the
//! service receives it and decodes it one after the other, so a large batch in small
//! requests keeps both ends busy at once. A record larger than that target but within
//! the payload limit is a chunk of its own.

use crate::encode::{varint_len, EncodedBatch};
use crate::error::{ConversionErrorKind, ConversionFailure, ZerobusError};

/// The rows of one ingest call, in row order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Input row indices.
    pub(crate) rows: Vec<usize>,
}

impl Chunk {
    /// The records of input rows `rows` as the owned byte vectors the SDK takes.
    ///
    /// The SDK's ingest API only accepts owned records (`Vec<u8>` per record, no borrowed
    /// slices or shared buffers), so this is the one copy of the row bytes the wrapper makes.
    pub(crate) fn records_of(rows: &[usize], encoded: &EncodedBatch) -> Vec<Vec<u8>> {
        // Sized up front: `filter_map` gives `collect` no size hint, and growing the
        // vector of a large chunk moved its entries a dozen times.
        let mut records = Vec::with_capacity(rows.len());
        records.extend(
            rows.iter()
                .filter_map(|row| encoded.record(*row))
                .map(<[u8]>::to_vec),
        );
        records
    }
}

/// Bytes one record takes in the request: field tag, length varint, payload.
fn framed_len(len: usize) -> usize {
    // The encoder's branch-free varint length: this runs once per row of every batch.
    1 + varint_len(u64::try_from(len).unwrap_or(u64::MAX)) + len
}

/// Rows the planner takes at once, without sizing each, when they are all short records
/// and fit the chunk whole.
const BLOCK_ROWS: usize = 64;

/// The longest record whose length takes a one-byte varint: two bytes of framing.
const SHORT_RECORD: usize = 127;

/// Splits the encoded rows of `encoded` into chunks of at most `target` framed bytes,
/// except that a record over `target` (but within `limit`) makes a chunk of its own.
///
/// A record over `limit`, the SDK's payload limit, is returned as a failed row (size
/// limit); rows that failed encoding are skipped (they are already in the batch's
/// failures).
///
/// Rows are added greedily, in order. Blocks of [`BLOCK_ROWS`] short records (the usual
/// case) that fit the chunk whole are taken from their offsets alone; the rest are sized
/// row by row, with the same cuts.
pub(crate) fn plan_chunks(
    encoded: &EncodedBatch,
    target: usize,
    limit: usize,
) -> (Vec<Chunk>, Vec<(usize, ZerobusError)>) {
    let mut chunks = Vec::new();
    let mut too_large = Vec::new();
    let mut rows = Vec::new();
    let mut used = 0;
    let short_records_fit = framed_len(SHORT_RECORD) <= limit;
    // Tag and one-byte length: the framing of every short record.
    let short_framing = framed_len(SHORT_RECORD) - SHORT_RECORD;
    // Run by run, adding rows to a chunk a range at a time.
    for (run, offsets) in encoded.runs() {
        // The first row of the run not yet in `rows`.
        let mut from = run.start;
        // Up to `row_by_row` (an index into the run), the rows of a block that did not
        // qualify are sized one by one.
        let mut row_by_row = 0;
        let mut index = 0;
        while index < run.len() {
            if index >= row_by_row {
                let end = (index + BLOCK_ROWS).min(run.len());
                let block = &offsets[index..=end];
                let bytes = block[end - index] - block[0] + short_framing * (end - index);
                if short_records_fit && used + bytes <= target && all_short(block) {
                    used += bytes;
                    index = end;
                    continue;
                }
                row_by_row = end;
            }
            let row = run.start + index;
            index += 1;
            let len = offsets[index] - offsets[index - 1];
            let size = framed_len(len);
            if size > limit {
                rows.extend(from..row);
                from = row + 1;
                too_large.push((
                    row,
                    ZerobusError::ConversionError(
                        ConversionFailure::new(
                            ConversionErrorKind::RecordTooLarge,
                            format!(
                                "record of {len} bytes exceeds the Zerobus ingest payload limit \
                                 of {limit} bytes (including {} bytes of framing)",
                                size - len
                            ),
                        )
                        .with_row(row),
                    ),
                ));
                continue;
            }
            if used > 0 && used + size > target {
                rows.extend(from..row);
                from = row;
                chunks.push(Chunk {
                    rows: std::mem::take(&mut rows),
                });
                used = 0;
            }
            used += size;
        }
        rows.extend(from..run.end);
    }
    if !rows.is_empty() {
        chunks.push(Chunk { rows });
    }
    (chunks, too_large)
}

/// Whether every record between consecutive `offsets` is at most [`SHORT_RECORD`] bytes.
fn all_short(offsets: &[usize]) -> bool {
    // A fold over the whole block (no early exit): no branch that depends on the data.
    let longest = offsets
        .windows(2)
        .map(|ends| ends[1] - ends[0])
        .fold(0, usize::max);
    longest <= SHORT_RECORD
}

/// Splits the largest chunks in halves until there are at least `streams` chunks, so a
/// large batch keeps every multiplexed stream busy; a part never has fewer than
/// `min_rows` rows (a chunk under `2 × min_rows` rows is not split). Rows keep their
/// order across the returned chunks.
pub(crate) fn spread(mut chunks: Vec<Chunk>, streams: usize, min_rows: usize) -> Vec<Chunk> {
    while chunks.len() < streams {
        let Some((largest, rows)) = chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| (i, chunk.rows.len()))
            .max_by_key(|(i, rows)| (*rows, std::cmp::Reverse(*i)))
        else {
            break;
        };
        if rows < 2 * min_rows.max(1) {
            break;
        }
        let right = chunks[largest].rows.split_off(rows / 2);
        chunks.insert(largest + 1, Chunk { rows: right });
    }
    chunks
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BinaryArray, RecordBatch, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::encode::RowEncoder;
    use crate::schema::TableSchema;

    fn encode(values: &[Option<&[u8]>]) -> EncodedBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("b", DataType::Binary, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(BinaryArray::from(values.to_vec()))],
        )
        .expect("batch");
        let table = Arc::new(TableSchema::try_new(schema, "t").expect("schema"));
        RowEncoder::new(table).encode(&batch).expect("encode")
    }

    #[test]
    fn framing_counts_tag_and_varint() {
        assert_eq!(framed_len(0), 2);
        assert_eq!(framed_len(127), 129);
        assert_eq!(framed_len(128), 131);
        assert_eq!(framed_len(16_384), 16_384 + 4);
    }

    #[test]
    fn chunks_stay_under_the_limit_and_keep_every_row_once() {
        let payloads: Vec<Vec<u8>> = (0..50).map(|i| vec![7u8; (i * 37) % 300]).collect();
        let values: Vec<Option<&[u8]>> = payloads.iter().map(|p| Some(p.as_slice())).collect();
        let encoded = encode(&values);
        let limit = 1000;
        let (chunks, failed) = plan_chunks(&encoded, limit, limit);
        assert!(failed.is_empty());
        let rows: Vec<usize> = chunks.iter().flat_map(|c| c.rows.clone()).collect();
        assert_eq!(rows, (0..50).collect::<Vec<_>>());
        for chunk in &chunks {
            let framed: usize = chunk
                .rows
                .iter()
                .map(|r| framed_len(encoded.record(*r).unwrap().len()))
                .sum();
            assert!(framed <= limit, "{framed} > {limit}");
            assert_eq!(
                Chunk::records_of(&chunk.rows, &encoded).len(),
                chunk.rows.len()
            );
        }
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
    }

    #[test]
    fn chunks_stay_under_the_target_and_a_larger_record_travels_alone() {
        // framed sizes (tag + length + record of tag + length + value): 14, 104, 14, 14,
        // 306 (over the target), 14
        let small = [1u8; 10];
        let mid = [2u8; 100];
        let big = [3u8; 300];
        let values: Vec<Option<&[u8]>> = vec![
            Some(&small),
            Some(&mid),
            Some(&small),
            Some(&small),
            Some(&big),
            Some(&small),
        ];
        let encoded = encode(&values);
        let (chunks, failed) = plan_chunks(&encoded, 120, 1000);
        assert!(failed.is_empty(), "306 framed bytes are within the limit");
        let rows: Vec<Vec<usize>> = chunks.into_iter().map(|c| c.rows).collect();
        assert_eq!(rows, vec![vec![0, 1], vec![2, 3], vec![4], vec![5]]);

        let (chunks, failed) = plan_chunks(&encoded, 120, 200);
        assert_eq!(failed.len(), 1, "over the SDK's limit: fails");
        assert_eq!(failed[0].0, 4);
        let rows: Vec<Vec<usize>> = chunks.into_iter().map(|c| c.rows).collect();
        assert_eq!(rows, vec![vec![0, 1], vec![2, 3, 5]]);
    }

    fn chunk(rows: std::ops::Range<usize>) -> Chunk {
        Chunk {
            rows: rows.collect(),
        }
    }

    #[test]
    fn spreading_splits_the_largest_chunks_until_every_stream_has_one() {
        let spread4 = spread(vec![chunk(0..100), chunk(100..120)], 4, 10);
        let sizes: Vec<usize> = spread4.iter().map(|c| c.rows.len()).collect();
        assert_eq!(sizes, vec![25, 25, 50, 20]);
        let rows: Vec<usize> = spread4.iter().flat_map(|c| c.rows.clone()).collect();
        assert_eq!(rows, (0..120).collect::<Vec<_>>(), "order and rows kept");

        let small = spread(vec![chunk(0..30)], 8, 10);
        let sizes: Vec<usize> = small.iter().map(|c| c.rows.len()).collect();
        assert_eq!(
            sizes,
            vec![15, 15],
            "no part under min_rows: 15 -> 7 + 8 would be"
        );
        assert_eq!(
            spread(vec![chunk(0..5)], 1, 1).len(),
            1,
            "one stream: as is"
        );
        assert!(spread(Vec::new(), 4, 1).is_empty());
    }

    #[test]
    fn rows_that_failed_encoding_are_left_out_and_the_rest_keep_their_order() {
        // u64::MAX does not fit BIGINT: rows 1 and 4 fail in the encoder.
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::UInt64, false)]));
        let values = vec![1, u64::MAX, 2, 3, u64::MAX, 4, 5];
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(UInt64Array::from(values))])
            .expect("batch");
        let table = Arc::new(TableSchema::try_new(schema, "t").expect("schema"));
        let encoded = RowEncoder::new(table)
            .with_first_row(10)
            .encode(&batch)
            .expect("encode");
        assert_eq!(encoded.failures().len(), 2);
        // Each record is 2 bytes (tag, one-byte varint), 4 framed: two per chunk of 8.
        let (chunks, too_large) = plan_chunks(&encoded, 8, 100);
        assert!(too_large.is_empty());
        let rows: Vec<Vec<usize>> = chunks.into_iter().map(|c| c.rows).collect();
        assert_eq!(rows, vec![vec![10, 12], vec![13, 15], vec![16]]);
        let (chunks, _) = plan_chunks(&encoded, 100, 100);
        let rows: Vec<Vec<usize>> = chunks.into_iter().map(|c| c.rows).collect();
        assert_eq!(rows, vec![vec![10, 12, 13, 15, 16]]);
    }

    /// The plan by its definition: every row sized on its own, added greedily.
    fn plan_row_by_row(encoded: &EncodedBatch, target: usize, limit: usize) -> Vec<Vec<usize>> {
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut used = 0;
        for (row, len) in encoded.record_lens() {
            let size = framed_len(len);
            if size > limit {
                continue;
            }
            if chunks.is_empty() || (used > 0 && used + size > target) {
                chunks.push(Vec::new());
                used = 0;
            }
            chunks.last_mut().expect("a chunk").push(row);
            used += size;
        }
        chunks
    }

    proptest::proptest! {
        /// Short and long records, rows that failed encoding, any target and limit: the
        /// same chunks as sizing every row on its own, and the same rows over the limit.
        #[test]
        fn blocks_of_short_records_give_the_row_by_row_plan(
            rows in proptest::collection::vec(
                (
                    // Mostly short records (as in real batches), many near the 127-byte
                    // edge of one-byte lengths, some long.
                    proptest::prop_oneof![4 => 0usize..40, 2 => 118usize..132, 1 => 0usize..300],
                    proptest::bool::weighted(0.05),
                ),
                0..1_000,
            ),
            target in 1usize..20_000,
            limit in 100usize..600,
        ) {
            let payloads: Vec<Vec<u8>> = rows.iter().map(|(len, _)| vec![5u8; *len]).collect();
            let numbers: Vec<u64> = rows
                .iter()
                .map(|(len, fails)| if *fails { u64::MAX } else { *len as u64 })
                .collect();
            let schema = Arc::new(Schema::new(vec![
                Field::new("b", DataType::Binary, false),
                Field::new("n", DataType::UInt64, false),
            ]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(BinaryArray::from_iter_values(payloads.iter())),
                    Arc::new(UInt64Array::from(numbers)),
                ],
            )
            .expect("batch");
            let table = Arc::new(TableSchema::try_new(schema, "t").expect("schema"));
            let encoded = RowEncoder::new(table).encode(&batch).expect("encode");

            let (chunks, too_large) = plan_chunks(&encoded, target, limit);
            let planned: Vec<Vec<usize>> = chunks.into_iter().map(|c| c.rows).collect();
            proptest::prop_assert_eq!(planned, plan_row_by_row(&encoded, target, limit));
            let over: Vec<usize> = encoded
                .record_lens()
                .filter(|(_, len)| framed_len(*len) > limit)
                .map(|(row, _)| row)
                .collect();
            let failed: Vec<usize> = too_large.iter().map(|(row, _)| *row).collect();
            proptest::prop_assert_eq!(failed, over);
        }
    }

    #[test]
    fn a_record_over_the_limit_fails_alone() {
        let big = vec![1u8; 500];
        let encoded = encode(&[Some(b"a"), Some(&big), None, Some(b"b")]);
        let (chunks, failed) = plan_chunks(&encoded, 100, 100);
        assert_eq!(
            chunks,
            vec![Chunk {
                rows: vec![0, 2, 3]
            }]
        );
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, 1);
        assert!(
            failed[0].1.to_string().contains("payload limit of 100"),
            "{}",
            failed[0].1
        );
    }
}

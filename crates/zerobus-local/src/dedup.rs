//! Spotting rows a table has received before (resends after a recovery): each row is
//! encoded with Arrow's row format and its hash remembered, for the most recent rows only.
//!
//! What a resend after a recovery repeats is what the client had sent but not seen
//! acknowledged: the latest rows of the stream. So a window of the last distinct rows
//! catches every resend while the memory stays bounded (about 25-35 bytes a remembered
//! row); a row repeated after more than a window of other rows is not counted.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use arrow::array::RecordBatch;
use arrow::row::{RowConverter, SortField};

/// The default number of distinct rows a table remembers to count duplicates: 1 000 000
/// (at most about 35 MB a table).
pub const DEFAULT_DUPLICATE_WINDOW: usize = 1_000_000;

/// Hashes of the last `window` distinct rows a table received, oldest first out. A hash
/// collision (about one in 10^7 at a million rows) would count one row too many as a
/// duplicate.
#[derive(Debug)]
pub(crate) struct SeenRows {
    window: usize,
    hashes: Mutex<Window>,
}

/// The remembered hashes: a set to look them up, a queue in the order they were first
/// seen to forget the oldest.
#[derive(Debug, Default)]
struct Window {
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

impl SeenRows {
    /// Remembers up to `window` distinct rows (at least one).
    pub(crate) fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            hashes: Mutex::default(),
        }
    }

    /// How many rows are remembered now (never more than the window).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        crate::lock(&self.hashes).set.len()
    }

    /// Remembers the rows of `batch`; returns how many were seen before (earlier in the
    /// batch included). Types the row format cannot encode are not checked (0).
    pub(crate) fn count_repeats(&self, batch: &RecordBatch) -> u64 {
        let fields = batch
            .schema()
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        let rows = match RowConverter::new(fields)
            .and_then(|converter| converter.convert_columns(batch.columns()))
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(error = %e, "local Zerobus: rows not checked for duplicates");
                return 0;
            }
        };
        self.count_repeated_records(rows.iter().map(|row| row.data()))
    }

    /// Remembers `records` (encoded rows, e.g. protobuf or JSON records as sent); returns
    /// how many were seen before.
    pub(crate) fn count_repeated_records<'a>(
        &self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> u64 {
        let mut hashes = crate::lock(&self.hashes);
        let mut repeats = 0;
        for record in records {
            let mut hasher = DefaultHasher::new();
            record.hash(&mut hasher);
            let hash = hasher.finish();
            if !hashes.set.insert(hash) {
                repeats += 1;
                continue;
            }
            hashes.order.push_back(hash);
            if hashes.order.len() > self.window {
                if let Some(oldest) = hashes.order.pop_front() {
                    hashes.set.remove(&oldest);
                }
            }
        }
        repeats
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(ids: &[i32], names: &[Option<&str>]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn repeats_are_counted_within_and_across_batches() {
        let seen = SeenRows::new(DEFAULT_DUPLICATE_WINDOW);
        let first = batch(&[1, 2, 1], &[Some("a"), None, Some("a")]);
        assert_eq!(seen.count_repeats(&first), 1);
        // Same id, other name: a different row. Null and "" differ too.
        let second = batch(&[1, 2, 2], &[Some("b"), None, Some("")]);
        assert_eq!(seen.count_repeats(&second), 1);
    }

    #[test]
    fn only_the_last_window_of_distinct_rows_is_remembered() {
        let seen = SeenRows::new(1_000);
        let records: Vec<String> = (0..10_000).map(|i| format!(r#"{{"id":{i}}}"#)).collect();
        let bytes = || records.iter().map(String::as_bytes);
        assert_eq!(seen.count_repeated_records(bytes()), 0);
        assert_eq!(seen.len(), 1_000, "the window is the bound");
        // The last 1 000 are still known, the earlier ones forgotten.
        assert_eq!(seen.count_repeated_records(bytes().skip(9_000)), 1_000);
        assert_eq!(seen.count_repeated_records(bytes().take(10)), 0);
        assert_eq!(seen.len(), 1_000);
    }
}

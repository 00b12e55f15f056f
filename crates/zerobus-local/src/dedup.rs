//! Spotting rows a table has received before (resends after a recovery): each row is
//! encoded with Arrow's row format and its hash remembered.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use arrow::array::RecordBatch;
use arrow::row::{RowConverter, SortField};

/// Hashes of every row a table received; 8 bytes a row. A hash collision (about one in
/// 10^7 at a million rows) would count one row too many as a duplicate.
#[derive(Debug, Default)]
pub(crate) struct SeenRows {
    hashes: Mutex<HashSet<u64>>,
}

impl SeenRows {
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
        let mut hashes = self.hashes.lock().unwrap_or_else(|e| e.into_inner());
        records
            .into_iter()
            .filter(|record| {
                let mut hasher = DefaultHasher::new();
                record.hash(&mut hasher);
                !hashes.insert(hasher.finish())
            })
            .count() as u64
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
        let seen = SeenRows::default();
        let first = batch(&[1, 2, 1], &[Some("a"), None, Some("a")]);
        assert_eq!(seen.count_repeats(&first), 1);
        // Same id, other name: a different row. Null and "" differ too.
        let second = batch(&[1, 2, 2], &[Some("b"), None, Some("")]);
        assert_eq!(seen.count_repeats(&second), 1);
    }
}

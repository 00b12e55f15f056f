//! Row-index helpers shared by the encoder, the wrapper and the results.

use std::ops::Range;

/// Rows of a batch's first part when nothing is known of its bytes per row.
pub(crate) const FIRST_PART_ROWS: usize = 4096;

/// Bounds of the first part's rows when they are guessed
/// ([`RowParts::with_first_guess`]).
const FIRST_PART_ROWS_GUESSED: std::ops::RangeInclusive<usize> = 256..=65_536;

/// Cuts `0..rows` into consecutive parts of about `target` encoded bytes each, learning
/// the bytes per row from each part as it is encoded ([`observe`](Self::observe)).
///
/// The wrapper encodes and queues a large batch part by part, so its first requests
/// travel (and the service decodes them) while the rest is still being encoded. Parts
/// aim a little under `target` (7/8), so that a part usually makes exactly one request
/// of at most `max_request_bytes`; a last part smaller than 1/8 of a part joins the one
/// before it. An empty batch is one empty part.
#[derive(Debug)]
pub(crate) struct RowParts {
    rows: usize,
    next: usize,
    target: usize,
    part_rows: usize,
    started: bool,
}

impl RowParts {
    pub(crate) fn new(rows: usize, target: usize) -> Self {
        Self {
            rows,
            next: 0,
            target: target - target / 8,
            part_rows: FIRST_PART_ROWS,
            started: false,
        }
    }

    /// Sizes the first part from a guess of the bytes per row (e.g. the Arrow batch's
    /// memory per row; 256 to 65,536 rows) instead of [`FIRST_PART_ROWS`], so a batch that
    /// fits one request is usually one part.
    pub(crate) fn with_first_guess(mut self, bytes_per_row: usize) -> Self {
        let rows = self.target / bytes_per_row.max(1);
        self.part_rows = rows.clamp(
            *FIRST_PART_ROWS_GUESSED.start(),
            *FIRST_PART_ROWS_GUESSED.end(),
        );
        self
    }

    /// Records that a part of `rows` rows encoded into `bytes` bytes: the next parts take
    /// as many rows as fit the target at that rate.
    pub(crate) fn observe(&mut self, rows: usize, bytes: usize) {
        if rows > 0 {
            let per_row = bytes.div_ceil(rows).max(1);
            self.part_rows = (self.target / per_row).max(1);
        }
    }
}

impl Iterator for RowParts {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.started && self.next >= self.rows {
            return None;
        }
        self.started = true;
        let start = self.next;
        let remaining = self.rows - start;
        let mut len = remaining.min(self.part_rows);
        if remaining - len < self.part_rows / 8 {
            len = remaining;
        }
        self.next = start + len;
        Some(start..self.next)
    }
}

/// The indices in `0..total` that are not in `excluded` (which must be sorted ascending).
pub(crate) fn rows_except(
    total: usize,
    excluded: impl IntoIterator<Item = usize>,
) -> impl Iterator<Item = usize> {
    row_runs(total, excluded).flatten()
}

/// The runs of consecutive indices in `0..total` that are not in `excluded` (sorted
/// ascending; repeats and indices past `total` are ignored), in order and never empty.
///
/// Whole runs let callers copy or size a run at once instead of row by row: a batch
/// with no failures is a single run.
pub(crate) fn row_runs(
    total: usize,
    excluded: impl IntoIterator<Item = usize>,
) -> impl Iterator<Item = Range<usize>> {
    let mut excluded = excluded.into_iter();
    let mut next = 0;
    std::iter::from_fn(move || {
        while next < total {
            let end = match excluded.next() {
                // A repeat of the index just skipped.
                Some(row) if row < next => continue,
                Some(row) => row.min(total),
                None => total,
            };
            let run = next..end;
            next = end + 1;
            if !run.is_empty() {
                return Some(run);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_follow_the_observed_bytes_per_row_and_cover_every_row_once() {
        // 100 bytes per row, target 512 KiB: 7/8 of it is 458,752 bytes = 4587 rows.
        let mut parts = RowParts::new(20_000, 512 * 1024);
        let mut seen = Vec::new();
        while let Some(part) = parts.next() {
            parts.observe(part.len(), part.len() * 100);
            seen.push(part);
        }
        assert_eq!(
            seen,
            vec![0..4096, 4096..8683, 8683..13270, 13270..17857, 17857..20000]
        );

        // A tail under 1/8 of a part joins the last part.
        let mut parts = RowParts::new(4096 + 4587 + 500, 512 * 1024);
        let first = parts.next().unwrap();
        parts.observe(first.len(), first.len() * 100);
        assert_eq!(parts.next(), Some(4096..9183));
        assert_eq!(parts.next(), None);
    }

    #[test]
    fn small_and_empty_batches_are_one_part() {
        assert_eq!(
            RowParts::new(1000, 512 * 1024).collect::<Vec<_>>(),
            vec![0..1000]
        );
        assert_eq!(RowParts::new(0, 512 * 1024).collect::<Vec<_>>(), vec![0..0]);
        // A tail of up to 1/8 of the first part joins it.
        assert_eq!(
            RowParts::new(4096 + 511, 1024).collect::<Vec<_>>(),
            vec![0..4607]
        );
    }

    #[test]
    fn a_guess_sizes_the_first_part() {
        // 7/8 of 512 KiB at 64 bytes a row: 7168 rows, so 8000 rows are one part.
        let parts = RowParts::new(8000, 512 * 1024).with_first_guess(64);
        assert_eq!(parts.collect::<Vec<_>>(), vec![0..8000]);
        let mut parts = RowParts::new(100_000, 512 * 1024).with_first_guess(64);
        assert_eq!(parts.next(), Some(0..7168));
        // Guesses far off are bounded.
        let mut huge = RowParts::new(100_000, 512 * 1024).with_first_guess(1 << 30);
        assert_eq!(huge.next(), Some(0..256));
        let mut tiny = RowParts::new(100_000, 512 * 1024).with_first_guess(0);
        assert_eq!(tiny.next(), Some(0..65_536));
    }

    #[test]
    fn rows_over_the_target_make_one_row_parts() {
        let mut parts = RowParts::new(FIRST_PART_ROWS + 1000, 1024);
        let first = parts.next().unwrap();
        assert_eq!(first, 0..FIRST_PART_ROWS);
        parts.observe(first.len(), first.len() * 5000);
        let rest: Vec<_> = parts.collect();
        assert_eq!(rest.len(), 1000);
        assert!(rest.iter().all(|part| part.len() == 1));
    }

    #[test]
    fn complement_of_sorted_rows() {
        assert_eq!(rows_except(6, [1, 3, 3, 5]).collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(rows_except(3, []).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(rows_except(2, [0, 1, 7]).count(), 0);
    }

    #[test]
    fn runs_between_excluded_rows() {
        let runs =
            |total, excluded: &[usize]| row_runs(total, excluded.to_vec()).collect::<Vec<_>>();
        assert_eq!(runs(6, &[1, 3, 3, 5]), [0..1, 2..3, 4..5]);
        assert_eq!(runs(3, &[]), vec![(0..3)]);
        assert_eq!(runs(5, &[0, 4]), vec![(1..4)]);
        assert_eq!(runs(4, &[2, 9]), [0..2, 3..4]);
        assert!(runs(2, &[0, 1, 7]).is_empty());
        assert!(runs(0, &[]).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn runs_hold_exactly_the_rows_not_excluded(
            total in 0usize..200,
            mut excluded in proptest::collection::vec(0usize..220, 0..60),
        ) {
            excluded.sort_unstable();
            let runs: Vec<_> = row_runs(total, excluded.clone()).collect();
            proptest::prop_assert!(runs.iter().all(|run| !run.is_empty()));
            proptest::prop_assert!(runs.windows(2).all(|w| w[0].end < w[1].start), "{runs:?}");
            let rows: Vec<usize> = runs.into_iter().flatten().collect();
            let expected: Vec<usize> = (0..total).filter(|row| !excluded.contains(row)).collect();
            proptest::prop_assert_eq!(rows, expected);
        }
    }
}

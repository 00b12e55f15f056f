//! Row-index helpers shared by the encoder and the results.

/// The indices in `0..total` that are not in `excluded` (which must be sorted ascending).
pub(crate) fn rows_except(
    total: usize,
    excluded: impl IntoIterator<Item = usize>,
) -> impl Iterator<Item = usize> {
    let mut excluded = excluded.into_iter().peekable();
    (0..total).filter(move |row| {
        while excluded.peek().is_some_and(|e| e < row) {
            excluded.next();
        }
        excluded.peek() != Some(row)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complement_of_sorted_rows() {
        assert_eq!(rows_except(6, [1, 3, 3, 5]).collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(rows_except(3, []).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(rows_except(2, [0, 1, 7]).count(), 0);
    }
}

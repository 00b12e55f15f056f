//! The [`FieldCodec`] trait: how one Arrow array becomes one protobuf field.
//!
//! A codec answers two questions for element `i` of its array: how many bytes the field
//! takes ([`FieldCodec::size`], which also finds every per-value error) and what they are
//! ([`FieldCodec::write`]). The column loops are default methods, so each codec type gets
//! its own monomorphized loop: one virtual call per column, none per value.

use arrow::buffer::NullBuffer;
use arrow::util::bit_iterator::BitIndexIterator;

use super::wire::Out;
use crate::error::ConversionErrorKind;

/// Why one value cannot be encoded, with the path below the top-level column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValueError {
    pub(crate) kind: ConversionErrorKind,
    pub(crate) detail: String,
    /// Path segments from the innermost outwards (`zip`, `address`).
    path: Vec<String>,
}

impl ValueError {
    pub(crate) fn new(kind: ConversionErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            path: Vec::new(),
        }
    }

    /// The same error, one level further out (`segment` is a field name or `[k]`).
    pub(crate) fn within(mut self, segment: impl Into<String>) -> Self {
        self.path.push(segment.into());
        self
    }

    /// `column` followed by the nested path, e.g. `address.zip` or `points[3].x`.
    pub(crate) fn column_path(&self, column: &str) -> String {
        let mut path = column.to_string();
        for segment in self.path.iter().rev() {
            if !segment.starts_with('[') {
                path.push('.');
            }
            path.push_str(segment);
        }
        path
    }
}

/// What a null means where it occurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnNull {
    /// The field is simply absent (a nullable column or struct field).
    Absent,
    /// The null cannot be represented: the row fails with this kind.
    Reject(ConversionErrorKind),
}

impl OnNull {
    /// The size contribution of a null here: nothing, or the row's error.
    #[inline]
    pub(crate) fn size(self) -> Result<usize, ValueError> {
        match self {
            Self::Absent => Ok(0),
            Self::Reject(kind) => Err(ValueError::new(kind, null_message(kind))),
        }
    }
}

fn null_message(kind: ConversionErrorKind) -> &'static str {
    match kind {
        ConversionErrorKind::NullListElement => {
            "list element is null; protobuf repeated fields cannot hold nulls \
             (filter the nulls out, or wrap elements in a struct)"
        }
        ConversionErrorKind::NullMapValue => {
            "map value is null; a protobuf map entry cannot tell null from the default value"
        }
        _ => "value is null but the field is declared NOT NULL",
    }
}

/// Whether element `i` is null.
#[inline(always)]
pub(crate) fn is_null(nulls: Option<&NullBuffer>, i: usize) -> bool {
    nulls.is_some_and(|nulls| nulls.is_null(i))
}

/// Which rows a write pass covers: a range of rows, or the listed ones (the others failed).
#[derive(Debug, Clone)]
pub(crate) enum Rows<'r> {
    Range(std::ops::Range<usize>),
    Only(&'r [usize]),
}

/// Encodes the elements of one Arrow array as one protobuf field.
pub(crate) trait FieldCodec {
    /// Encoded bytes of the field for element `i`, key included; 0 when absent.
    fn size(&self, i: usize) -> Result<usize, ValueError>;

    /// Writes the field for element `i`, which is not null. Only called for elements whose
    /// `size` succeeded, and writes exactly that many bytes.
    fn write_valid(&self, i: usize, out: &mut Out<'_>);

    /// Which elements are null (`None`: none are). Null elements are written as nothing.
    fn nulls(&self) -> Option<&NullBuffer>;

    /// Writes the field for element `i` (nothing when it is null). Only called for
    /// elements whose `size` succeeded, and writes exactly that many bytes.
    #[inline(always)]
    fn write(&self, i: usize, out: &mut Out<'_>) {
        if !is_null(self.nulls(), i) {
            self.write_valid(i, out);
        }
    }

    /// Adds the field's size for each row of `rows` to `sizes` (`sizes[k]` is row
    /// `rows.start + k`); rows that fail go to `failures`.
    fn size_column(
        &self,
        rows: std::ops::Range<usize>,
        sizes: &mut [usize],
        failures: &mut Vec<(usize, ValueError)>,
    ) {
        size_rows(self, rows, sizes, failures);
    }

    /// Writes the field of each row of `rows` at that row's cursor (`cursors[k]` is row
    /// `first_row + k`) and advances the cursor.
    fn write_column(
        &self,
        rows: Rows<'_>,
        first_row: usize,
        buf: &mut [std::mem::MaybeUninit<u8>],
        cursors: &mut [usize],
    ) {
        // The null test is chosen once per column: a column without nulls has none per row.
        match (self.nulls(), rows) {
            (None, rows) => write_rows(self, rows, first_row, buf, cursors, |_| true),
            (Some(nulls), Rows::Range(range)) => {
                // Only the valid rows, found 64 at a time (trailing zeros of the validity
                // bits): no per-row test that mispredicts on every null.
                let valid = BitIndexIterator::new(
                    nulls.validity(),
                    nulls.offset() + range.start,
                    range.len(),
                );
                for k in valid {
                    let cursor = &mut cursors[k];
                    let mut out = Out::at(buf, *cursor);
                    self.write_valid(range.start + k, &mut out);
                    *cursor = out.pos;
                }
            }
            (Some(nulls), rows) => {
                write_rows(self, rows, first_row, buf, cursors, |i| nulls.is_valid(i))
            }
        }
    }
}

/// The write loop over `rows`, writing the rows for which `valid` holds.
#[inline(always)]
fn write_rows<C: FieldCodec + ?Sized>(
    codec: &C,
    rows: Rows<'_>,
    first_row: usize,
    buf: &mut [std::mem::MaybeUninit<u8>],
    cursors: &mut [usize],
    valid: impl Fn(usize) -> bool,
) {
    // Plain loops (no closure over the write) so `write_valid` inlines and the position
    // stays in a register.
    match rows {
        Rows::Range(range) => {
            for (i, cursor) in range.zip(cursors.iter_mut()) {
                if valid(i) {
                    let mut out = Out::at(buf, *cursor);
                    codec.write_valid(i, &mut out);
                    *cursor = out.pos;
                }
            }
        }
        Rows::Only(rows) => {
            for &i in rows {
                if valid(i) {
                    let cursor = &mut cursors[i - first_row];
                    let mut out = Out::at(buf, *cursor);
                    codec.write_valid(i, &mut out);
                    *cursor = out.pos;
                }
            }
        }
    }
}

/// The general size loop: one `size` call per row, errors collected.
#[inline(always)]
pub(crate) fn size_rows<C: FieldCodec + ?Sized>(
    codec: &C,
    rows: std::ops::Range<usize>,
    sizes: &mut [usize],
    failures: &mut Vec<(usize, ValueError)>,
) {
    for (i, size) in rows.zip(sizes.iter_mut()) {
        match codec.size(i) {
            Ok(n) => *size += n,
            Err(error) => failures.push((i, error)),
        }
    }
}

/// The size loop of a field with one encoded length (`field` bytes) whose nulls are
/// absent: branch-free, nothing can fail.
#[inline(always)]
pub(crate) fn size_fixed_rows(
    nulls: Option<&NullBuffer>,
    rows: std::ops::Range<usize>,
    sizes: &mut [usize],
    field: usize,
) {
    sizes.iter_mut().for_each(|size| *size += field);
    for_each_null(nulls, rows, |k| sizes[k] -= field);
}

/// Calls `f(k)` for each null element `rows.start + k` of `rows`, in order.
///
/// The infallible size loops add every row's size, nulls included, in a plain loop over
/// the values (no validity test per row), then take the nulls' sizes back here: the
/// validity bits are read 64 at a time, so a column with few nulls costs about one test
/// per 64 rows.
#[inline(always)]
pub(crate) fn for_each_null(
    nulls: Option<&NullBuffer>,
    rows: std::ops::Range<usize>,
    mut f: impl FnMut(usize),
) {
    let Some(nulls) = nulls.filter(|nulls| nulls.null_count() > 0) else {
        return;
    };
    let chunks = nulls
        .buffer()
        .bit_chunks(nulls.offset() + rows.start, rows.len());
    // `missing` has a bit set for each null row of the 64 starting at row `base`.
    let mut visit = |mut missing: u64, base: usize| {
        while missing != 0 {
            f(base + missing.trailing_zeros() as usize);
            missing &= missing - 1;
        }
    };
    let mut base = 0;
    for valid in chunks.iter() {
        visit(!valid, base);
        base += 64;
    }
    // The remainder is shorter than 64 bits: the bits past its end are not rows.
    let tail = (1u64 << chunks.remainder_len()) - 1;
    visit(!chunks.remainder_bits() & tail, base);
}

/// A boxed codec borrowing the arrays of one batch.
pub(crate) type BoxedCodec<'a> = Box<dyn FieldCodec + 'a>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_outside_in() {
        let error = ValueError::new(ConversionErrorKind::ValueOutOfRange, "x")
            .within("zip")
            .within("[3]")
            .within("addresses");
        assert_eq!(error.column_path("customer"), "customer.addresses[3].zip");
    }

    #[test]
    fn rejected_nulls_explain_themselves() {
        let err = OnNull::Reject(ConversionErrorKind::NullListElement)
            .size()
            .unwrap_err();
        assert!(err.detail.contains("repeated fields cannot hold nulls"));
        assert_eq!(OnNull::Absent.size(), Ok(0));
    }
}

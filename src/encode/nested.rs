//! Codecs for nested and indirect columns: messages (structs, map entries), repeated fields
//! (lists, maps), and the encodings that point into a values array (dictionary, run-end).

use std::cell::Cell;

use arrow::buffer::NullBuffer;

use super::codec::{is_null, BoxedCodec, FieldCodec, OnNull, ValueError};
use super::wire::{varint_len, Out, Tag, WireType};

/// A nested message: a struct value, a list element struct or a map entry.
pub(crate) struct MessageCodec<'a> {
    tag: Tag,
    nulls: Option<&'a NullBuffer>,
    on_null: OnNull,
    /// The fields in field-number order, with their names for error paths.
    children: Vec<(&'a str, BoxedCodec<'a>)>,
    /// Body size of each element, kept by `size` for `write` (which only runs for elements
    /// sized before it), so the write pass does not size the children again.
    body_sizes: Vec<Cell<usize>>,
}

impl<'a> MessageCodec<'a> {
    /// A codec for the `len` elements of a struct-like array.
    pub(crate) fn new(
        field_number: u32,
        len: usize,
        nulls: Option<&'a NullBuffer>,
        on_null: OnNull,
        children: Vec<(&'a str, BoxedCodec<'a>)>,
    ) -> Self {
        Self {
            tag: Tag::new(field_number, WireType::LengthDelimited),
            nulls,
            on_null,
            children,
            body_sizes: vec![Cell::new(0); len],
        }
    }

    fn body_size(&self, i: usize) -> Result<usize, ValueError> {
        self.children.iter().try_fold(0, |total, (name, child)| {
            Ok(total + child.size(i).map_err(|e| e.within(*name))?)
        })
    }
}

impl FieldCodec for MessageCodec<'_> {
    fn size(&self, i: usize) -> Result<usize, ValueError> {
        if is_null(self.nulls, i) {
            return self.on_null.size();
        }
        let body = self.body_size(i)?;
        self.body_sizes[i].set(body);
        Ok(self.tag.len() + varint_len(body as u64) + body)
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        self.nulls
    }

    fn write_valid(&self, i: usize, out: &mut Out<'_>) {
        let body = self.body_sizes[i].get();
        out.tag(&self.tag);
        out.varint(body as u64);
        for (_, child) in &self.children {
            child.write(i, out);
        }
    }
}

/// Where the elements of list `i` sit in the values array.
pub(crate) enum ElementRanges<'a> {
    Offsets32(&'a [i32]),
    Offsets64(&'a [i64]),
    Fixed {
        length: usize,
        first: usize,
    },
    Views32 {
        offsets: &'a [i32],
        sizes: &'a [i32],
    },
    Views64 {
        offsets: &'a [i64],
        sizes: &'a [i64],
    },
}

impl ElementRanges<'_> {
    #[inline]
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        // Arrow guarantees offsets and sizes are non-negative and in bounds.
        match self {
            Self::Offsets32(o) => o[i] as usize..o[i + 1] as usize,
            Self::Offsets64(o) => o[i] as usize..o[i + 1] as usize,
            Self::Fixed { length, first } => {
                let start = first + i * length;
                start..start + length
            }
            Self::Views32 { offsets, sizes } => {
                offsets[i] as usize..(offsets[i] + sizes[i]) as usize
            }
            Self::Views64 { offsets, sizes } => {
                offsets[i] as usize..(offsets[i] + sizes[i]) as usize
            }
        }
    }
}

/// A `repeated` field: every element of list `i` is written with the list's own tag by
/// `element` (which rejects null elements). Maps are lists of entry messages.
pub(crate) struct RepeatedCodec<'a> {
    nulls: Option<&'a NullBuffer>,
    on_null: OnNull,
    ranges: ElementRanges<'a>,
    element: BoxedCodec<'a>,
}

impl<'a> RepeatedCodec<'a> {
    pub(crate) fn new(
        nulls: Option<&'a NullBuffer>,
        on_null: OnNull,
        ranges: ElementRanges<'a>,
        element: BoxedCodec<'a>,
    ) -> Self {
        Self {
            nulls,
            on_null,
            ranges,
            element,
        }
    }
}

impl FieldCodec for RepeatedCodec<'_> {
    fn size(&self, i: usize) -> Result<usize, ValueError> {
        if is_null(self.nulls, i) {
            // Protobuf cannot tell a null list from an empty one; both are absent.
            return self.on_null.size();
        }
        let range = self.ranges.range(i);
        let start = range.start;
        range.into_iter().try_fold(0, |total, j| {
            let size = self
                .element
                .size(j)
                .map_err(|e| e.within(format!("[{}]", j - start)))?;
            Ok(total + size)
        })
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        self.nulls
    }

    fn write_valid(&self, i: usize, out: &mut Out<'_>) {
        for j in self.ranges.range(i) {
            self.element.write(j, out);
        }
    }
}

/// Dictionary and run-end encoded columns: element `i` is element `index[i]` of the values.
pub(crate) struct IndirectCodec<'a> {
    /// Nulls of the keys (dictionary); run-end arrays keep their nulls in the values.
    nulls: Option<&'a NullBuffer>,
    on_null: OnNull,
    index: Vec<usize>,
    values: BoxedCodec<'a>,
}

impl<'a> IndirectCodec<'a> {
    pub(crate) fn new(
        nulls: Option<&'a NullBuffer>,
        on_null: OnNull,
        index: Vec<usize>,
        values: BoxedCodec<'a>,
    ) -> Self {
        Self {
            nulls,
            on_null,
            index,
            values,
        }
    }
}

impl FieldCodec for IndirectCodec<'_> {
    fn size(&self, i: usize) -> Result<usize, ValueError> {
        if is_null(self.nulls, i) {
            return self.on_null.size();
        }
        self.values.size(self.index[i])
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        self.nulls
    }

    fn write_valid(&self, i: usize, out: &mut Out<'_>) {
        self.values.write(self.index[i], out);
    }
}

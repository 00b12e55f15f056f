//! Protobuf wire primitives: varints, tags, and a cursor into a pre-sized buffer.

use std::mem::MaybeUninit;

/// Protobuf wire types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}

/// Bytes needed for `value` as a varint (1 to 10).
#[inline(always)]
pub(crate) fn varint_len(value: u64) -> usize {
    // Same formula as prost: ceil(significant_bits / 7), at least 1.
    ((((value | 1).leading_zeros() ^ 63) * 9 + 73) / 64) as usize
}

/// A field key (field number + wire type), pre-encoded once per column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tag {
    bytes: [u8; 5],
    len: u8,
}

impl Tag {
    pub(crate) fn new(field_number: u32, wire_type: WireType) -> Self {
        let mut key = (u64::from(field_number) << 3) | wire_type as u64;
        let mut bytes = [0u8; 5];
        let mut len = 0;
        while key >= 0x80 {
            bytes[len] = (key as u8) | 0x80;
            key >>= 7;
            len += 1;
        }
        bytes[len] = key as u8;
        Self {
            bytes,
            len: len as u8 + 1,
        }
    }

    /// Encoded length of the key.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }
}

/// Writes into a buffer whose size was computed beforehand; `pos` is the next byte.
///
/// The buffer is the output's spare capacity, not yet initialized: the encoder writes every
/// byte of it exactly once instead of zeroing it first (a `memset` of the whole output
/// cost ~12 % of an encode). `Out` only ever stores initialized bytes into it.
pub(crate) struct Out<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    pub(crate) pos: usize,
}

/// `src` seen as possibly-uninitialized bytes, to copy into an [`Out`].
#[inline(always)]
fn as_uninit(src: &[u8]) -> &[MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and every initialized byte is a
    // valid `MaybeUninit<u8>`; the slice is only read.
    #[allow(unsafe_code)]
    unsafe {
        &*(src as *const [u8] as *const [MaybeUninit<u8>])
    }
}

impl<'a> Out<'a> {
    #[cfg(test)]
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        // SAFETY: same layout; `Out` only stores initialized bytes, so `buf` stays
        // initialized.
        #[allow(unsafe_code)]
        let buf = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        Self { buf, pos: 0 }
    }

    /// A writer at `pos` of `buf`.
    #[inline(always)]
    pub(crate) fn at(buf: &'a mut [MaybeUninit<u8>], pos: usize) -> Self {
        Self { buf, pos }
    }

    #[inline(always)]
    pub(crate) fn tag(&mut self, tag: &Tag) {
        if tag.len == 1 {
            self.buf[self.pos] = MaybeUninit::new(tag.bytes[0]);
            self.pos += 1;
        } else {
            self.bytes(&tag.bytes[..tag.len()]);
        }
    }

    #[inline(always)]
    pub(crate) fn varint(&mut self, value: u64) {
        if value < 0x80 {
            // One byte: tags, short lengths, booleans, small numbers.
            self.buf[self.pos] = MaybeUninit::new(value as u8);
            self.pos += 1;
            return;
        }
        if value >> 63 == 1 {
            // Negative int32/int64 values always take ten bytes: unrolled, one bounds check.
            let out = &mut self.buf[self.pos..self.pos + 10];
            for (k, byte) in out[..9].iter_mut().enumerate() {
                *byte = MaybeUninit::new((value >> (7 * k)) as u8 | 0x80);
            }
            out[9] = MaybeUninit::new(1);
            self.pos += 10;
            return;
        }
        let mut value = value;
        while value >= 0x80 {
            self.buf[self.pos] = MaybeUninit::new((value as u8) | 0x80);
            value >>= 7;
            self.pos += 1;
        }
        self.buf[self.pos] = MaybeUninit::new(value as u8);
        self.pos += 1;
    }

    #[inline(always)]
    pub(crate) fn bytes(&mut self, src: &[u8]) {
        let src = as_uninit(src);
        let n = src.len();
        let dst = &mut self.buf[self.pos..self.pos + n];
        // Short strings are the common case: fixed-size moves beat a call to memcpy, whose
        // dispatch costs more than the copy itself. One branch-free case covers 8 to 64
        // bytes (eight 8-byte moves, overlapping at the end) so that lengths varying from
        // row to row do not mispredict a choice between sizes.
        match n {
            0 => {}
            1..=3 => {
                dst[0] = src[0];
                dst[n / 2] = src[n / 2];
                dst[n - 1] = src[n - 1];
            }
            4..=7 => {
                dst[..4].copy_from_slice(&src[..4]);
                dst[n - 4..].copy_from_slice(&src[n - 4..]);
            }
            8..=64 => {
                for k in 0..8 {
                    let at = (8 * k).min(n - 8);
                    dst[at..at + 8].copy_from_slice(&src[at..at + 8]);
                }
            }
            _ => dst.copy_from_slice(src),
        }
        self.pos += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_prost() {
        let edges = (0..64).flat_map(|bits| {
            let top = 1u64 << bits;
            [top - 1, top, top | 0x5555_5555_5555_5555 >> (63 - bits)]
        });
        for value in edges.chain([u32::MAX as u64, u64::MAX, i64::MAX as u64]) {
            assert_eq!(
                varint_len(value),
                prost::encoding::encoded_len_varint(value),
                "{value}"
            );
            let mut buf = vec![0u8; varint_len(value)];
            Out::new(&mut buf).varint(value);
            let mut expected = Vec::new();
            prost::encoding::encode_varint(value, &mut expected);
            assert_eq!(buf, expected);
        }
    }

    #[test]
    fn byte_copies_of_every_short_length_are_exact() {
        for n in 0..=70 {
            let src: Vec<u8> = (0..n as u8).map(|b| b.wrapping_mul(37) | 1).collect();
            let mut buf = vec![0u8; n + 2];
            let mut out = Out::new(&mut buf);
            out.pos = 1;
            out.bytes(&src);
            assert_eq!(out.pos, n + 1);
            assert_eq!(&buf[1..n + 1], src.as_slice(), "length {n}");
            assert_eq!((buf[0], buf[n + 1]), (0, 0), "no write outside, length {n}");
        }
    }

    #[test]
    fn tags_encode_the_key() {
        let tag = Tag::new(2000, WireType::LengthDelimited);
        let mut buf = vec![0u8; tag.len()];
        Out::new(&mut buf).tag(&tag);
        let mut expected = Vec::new();
        prost::encoding::encode_key(
            2000,
            prost::encoding::WireType::LengthDelimited,
            &mut expected,
        );
        assert_eq!(buf, expected);
        assert_eq!(Tag::new(1, WireType::Varint).len(), 1);
    }
}

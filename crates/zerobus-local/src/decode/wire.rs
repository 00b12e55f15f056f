//! The protobuf wire format, just enough to split a message into its fields.

/// One field value as it appears on the wire; `Len` is a byte range of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Raw {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: `start..end` in the record.
    Len(usize, usize),
    /// Wire type 5.
    Fixed32(u32),
}

/// The wire types this decoder knows (groups are not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    /// The default value of a field of this wire type (what an absent map key or value
    /// means).
    pub(super) fn default_raw(self) -> Raw {
        match self {
            WireType::Varint => Raw::Varint(0),
            WireType::Fixed64 => Raw::Fixed64(0),
            WireType::Len => Raw::Len(0, 0),
            WireType::Fixed32 => Raw::Fixed32(0),
        }
    }
}

impl WireType {
    /// The value of this wire type whose [`Raw::payload`] is `payload`.
    #[inline(always)]
    pub(super) fn raw(self, [a, b]: [u64; 2]) -> Raw {
        match self {
            WireType::Varint => Raw::Varint(a),
            WireType::Fixed64 => Raw::Fixed64(a),
            WireType::Len => Raw::Len(a as usize, b as usize),
            WireType::Fixed32 => Raw::Fixed32(a as u32),
        }
    }
}

impl Raw {
    /// The value without its wire type, as two words ([`WireType::raw`] undoes it).
    #[inline(always)]
    pub(super) fn payload(self) -> [u64; 2] {
        match self {
            Raw::Varint(v) | Raw::Fixed64(v) => [v, 0],
            Raw::Len(start, end) => [start as u64, end as u64],
            Raw::Fixed32(v) => [u64::from(v), 0],
        }
    }

    pub(super) fn wire_type(self) -> WireType {
        match self {
            Raw::Varint(_) => WireType::Varint,
            Raw::Fixed64(_) => WireType::Fixed64,
            Raw::Len(..) => WireType::Len,
            Raw::Fixed32(_) => WireType::Fixed32,
        }
    }
}

/// A malformed message; [`String::from`] gives its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireError {
    TruncatedVarint,
    LongVarint,
    /// A fixed-width value of this many bytes runs past the message.
    TruncatedFixed(usize),
    FieldNumber(u64),
    /// A length-delimited field (number, length) runs past the message.
    Overrun(u32, u64),
    Group(u32),
    WireType(u32, u8),
    PackedLen,
}

impl From<WireError> for String {
    #[cold]
    fn from(error: WireError) -> String {
        match error {
            WireError::TruncatedVarint => "truncated varint".into(),
            WireError::LongVarint => "varint longer than 10 bytes".into(),
            WireError::TruncatedFixed(n) => format!("truncated {n}-byte value"),
            WireError::FieldNumber(n) => format!("invalid field number {n}"),
            WireError::Overrun(number, len) => {
                format!("field {number}: length {len} runs past the message")
            }
            WireError::Group(number) => format!("field {number}: groups are not supported"),
            WireError::WireType(number, wire) => {
                format!("field {number}: invalid wire type {wire}")
            }
            WireError::PackedLen => "length-delimited values cannot be packed".into(),
        }
    }
}

/// Reads the fields of the message in `buf[start..end]`, calling `field(number, raw)`
/// for each in wire order.
#[inline]
pub(super) fn for_each_field<E: From<String>>(
    buf: &[u8],
    start: usize,
    end: usize,
    mut field: impl FnMut(u32, Raw) -> Result<(), E>,
) -> Result<(), E> {
    let buf = &buf[..end];
    let mut pos = start;
    while pos < buf.len() {
        let (number, raw) = next_field(buf, &mut pos).map_err(|e| E::from(e.into()))?;
        field(number, raw)?;
    }
    Ok(())
}

/// Reads the field (key and value) at `pos`; `buf` ends where the message ends.
#[inline(always)]
fn next_field(buf: &[u8], pos: &mut usize) -> Result<(u32, Raw), WireError> {
    let key = varint(buf, pos)?;
    let number = match u32::try_from(key >> 3) {
        Ok(number) if number > 0 => number,
        _ => return Err(WireError::FieldNumber(key >> 3)),
    };
    let raw = match key & 7 {
        0 => Raw::Varint(varint(buf, pos)?),
        1 => Raw::Fixed64(u64::from_le_bytes(fixed::<8>(buf, pos)?)),
        2 => {
            let len = varint(buf, pos)?;
            let start = *pos;
            let stop = usize::try_from(len)
                .ok()
                .and_then(|len| start.checked_add(len))
                .filter(|stop| *stop <= buf.len())
                .ok_or(WireError::Overrun(number, len))?;
            *pos = stop;
            Raw::Len(start, stop)
        }
        5 => Raw::Fixed32(u32::from_le_bytes(fixed::<4>(buf, pos)?)),
        3 | 4 => return Err(WireError::Group(number)),
        other => return Err(WireError::WireType(number, other as u8)),
    };
    Ok((number, raw))
}

/// Splits a packed repeated field (`buf[start..end]`) into values of wire type `wire`.
pub(super) fn for_each_packed(
    buf: &[u8],
    start: usize,
    end: usize,
    wire: WireType,
    mut value: impl FnMut(Raw),
) -> Result<(), String> {
    let buf = &buf[..end];
    let mut pos = start;
    while pos < buf.len() {
        value(match wire {
            WireType::Varint => Raw::Varint(varint(buf, &mut pos)?),
            WireType::Fixed64 => Raw::Fixed64(u64::from_le_bytes(fixed::<8>(buf, &mut pos)?)),
            WireType::Fixed32 => Raw::Fixed32(u32::from_le_bytes(fixed::<4>(buf, &mut pos)?)),
            WireType::Len => return Err(WireError::PackedLen.into()),
        });
    }
    Ok(())
}

/// Reads a varint at `pos` (`buf` ends where the message ends); one byte (most keys,
/// lengths and small values) takes the short path, longer ones a loop without calls.
#[inline(always)]
fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let rest = buf.get(*pos..).unwrap_or_default();
    match rest.first() {
        Some(&byte) if byte < 0x80 => {
            *pos += 1;
            Ok(u64::from(byte))
        }
        _ => {
            let mut value: u64 = 0;
            for (i, &byte) in rest.iter().take(10).enumerate() {
                value |= u64::from(byte & 0x7f) << (7 * i);
                if byte < 0x80 {
                    *pos += i + 1;
                    return Ok(value);
                }
            }
            Err(if rest.len() < 10 {
                WireError::TruncatedVarint
            } else {
                WireError::LongVarint
            })
        }
    }
}

#[inline(always)]
fn fixed<const N: usize>(buf: &[u8], pos: &mut usize) -> Result<[u8; N], WireError> {
    let bytes: [u8; N] = buf
        .get(*pos..*pos + N)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(WireError::TruncatedFixed(N))?;
    *pos += N;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(buf: &[u8]) -> Result<Vec<(u32, Raw)>, String> {
        let mut out = Vec::new();
        for_each_field(buf, 0, buf.len(), |n, raw| {
            out.push((n, raw));
            Ok::<(), String>(())
        })?;
        Ok(out)
    }

    #[test]
    fn splits_fields_of_every_wire_type() {
        // 1: varint 300, 2: "hi", 3: fixed32 7, 4: fixed64 9
        let buf = [
            0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x1d, 7, 0, 0, 0, 0x21, 9, 0, 0, 0, 0, 0, 0,
            0,
        ];
        assert_eq!(
            fields(&buf).unwrap(),
            vec![
                (1, Raw::Varint(300)),
                (2, Raw::Len(5, 7)),
                (3, Raw::Fixed32(7)),
                (4, Raw::Fixed64(9)),
            ]
        );
    }

    #[test]
    fn rejects_truncated_and_overlong_input() {
        assert!(fields(&[0x08]).is_err());
        assert!(fields(&[0x08, 0x80]).is_err());
        assert!(fields(&[0x12, 0x05, b'a'])
            .unwrap_err()
            .contains("length 5"));
        assert!(fields(&[0x0b]).unwrap_err().contains("groups"));
        assert!(
            fields(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
                .is_err()
        );
    }

    #[test]
    fn unpacks_packed_varints() {
        let buf = [0x01, 0xac, 0x02, 0x00];
        let mut values = Vec::new();
        for_each_packed(&buf, 0, buf.len(), WireType::Varint, |r| values.push(r)).unwrap();
        assert_eq!(
            values,
            vec![Raw::Varint(1), Raw::Varint(300), Raw::Varint(0)]
        );
    }
}

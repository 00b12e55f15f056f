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

impl Raw {
    pub(super) fn wire_type(self) -> WireType {
        match self {
            Raw::Varint(_) => WireType::Varint,
            Raw::Fixed64(_) => WireType::Fixed64,
            Raw::Len(..) => WireType::Len,
            Raw::Fixed32(_) => WireType::Fixed32,
        }
    }
}

/// Reads the fields of the message in `buf[start..end]`, calling `field(number, raw)`
/// for each in wire order.
pub(super) fn for_each_field<E: From<String>>(
    buf: &[u8],
    start: usize,
    end: usize,
    mut field: impl FnMut(u32, Raw) -> Result<(), E>,
) -> Result<(), E> {
    let mut pos = start;
    while pos < end {
        let key = varint(buf, &mut pos, end)?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid field number {}", key >> 3))?;
        let raw = read_value(buf, &mut pos, end, (key & 7) as u8, number)?;
        field(number, raw)?;
    }
    Ok(())
}

/// Reads the value of wire type `wire` at `pos`.
#[inline]
fn read_value(
    buf: &[u8],
    pos: &mut usize,
    end: usize,
    wire: u8,
    number: u32,
) -> Result<Raw, String> {
    Ok(match wire {
        0 => Raw::Varint(varint(buf, pos, end)?),
        1 => Raw::Fixed64(u64::from_le_bytes(fixed::<8>(buf, pos, end)?)),
        2 => {
            let len = varint(buf, pos, end)?;
            let start = *pos;
            let stop = usize::try_from(len)
                .ok()
                .and_then(|len| start.checked_add(len))
                .filter(|stop| *stop <= end)
                .ok_or_else(|| format!("field {number}: length {len} runs past the message"))?;
            *pos = stop;
            Raw::Len(start, stop)
        }
        5 => Raw::Fixed32(u32::from_le_bytes(fixed::<4>(buf, pos, end)?)),
        3 | 4 => return Err(format!("field {number}: groups are not supported")),
        other => return Err(format!("field {number}: invalid wire type {other}")),
    })
}

/// Splits a packed repeated field (`buf[start..end]`) into values of wire type `wire`.
pub(super) fn for_each_packed(
    buf: &[u8],
    start: usize,
    end: usize,
    wire: WireType,
    mut value: impl FnMut(Raw),
) -> Result<(), String> {
    let mut pos = start;
    while pos < end {
        value(match wire {
            WireType::Varint => Raw::Varint(varint(buf, &mut pos, end)?),
            WireType::Fixed64 => Raw::Fixed64(u64::from_le_bytes(fixed::<8>(buf, &mut pos, end)?)),
            WireType::Fixed32 => Raw::Fixed32(u32::from_le_bytes(fixed::<4>(buf, &mut pos, end)?)),
            WireType::Len => return Err("length-delimited values cannot be packed".into()),
        });
    }
    Ok(())
}

/// Reads a varint; one byte (most keys, lengths and small values) takes the short path.
#[inline]
fn varint(buf: &[u8], pos: &mut usize, end: usize) -> Result<u64, String> {
    if let Some(&byte) = buf[..end].get(*pos) {
        if byte < 0x80 {
            *pos += 1;
            return Ok(u64::from(byte));
        }
    }
    varint_long(buf, pos, end)
}

#[inline(never)]
fn varint_long(buf: &[u8], pos: &mut usize, end: usize) -> Result<u64, String> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = buf[..end].get(*pos) else {
            return Err("truncated varint".into());
        };
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn fixed<const N: usize>(buf: &[u8], pos: &mut usize, end: usize) -> Result<[u8; N], String> {
    let bytes = buf[..end]
        .get(*pos..*pos + N)
        .ok_or_else(|| format!("truncated {N}-byte value"))?;
    *pos += N;
    Ok(bytes.try_into().expect("N bytes"))
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

//! Unsigned LEB128 for `u32` lengths, as every WorkOS SDK writes them.

/// Longest encoding of a `u32`.
pub const MAX_LEN: usize = 5;

/// Why a length prefix could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError {
    Truncated,
    Overflow,
    Overlong,
}

/// Reads a `u32` from the front of `bytes`; returns it and the bytes it used.
///
/// Rejects encodings longer than 5 bytes, values above `u32::MAX`, and
/// overlong forms whose last byte is zero (a different byte string for the
/// same number would let two ciphertexts frame the same keys).
pub(crate) fn read_u32(bytes: &[u8]) -> Result<(u32, usize), ReadError> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if i == MAX_LEN {
            return Err(ReadError::Overflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if value > u64::from(u32::MAX) {
                return Err(ReadError::Overflow);
            }
            if i > 0 && byte == 0 {
                return Err(ReadError::Overlong);
            }
            // The range check above makes this lossless.
            return Ok((value as u32, i + 1));
        }
    }
    if bytes.len() >= MAX_LEN {
        Err(ReadError::Overflow)
    } else {
        Err(ReadError::Truncated)
    }
}

/// How many bytes [`write_u32`] uses for `value`.
pub(crate) const fn encoded_len(value: u32) -> usize {
    match value {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0xfff_ffff => 4,
        _ => 5,
    }
}

/// Writes `value` into the front of `out`, which must hold
/// [`encoded_len`]`(value)` bytes; returns the bytes written.
pub(crate) fn write_u32(mut value: u32, out: &mut [u8]) -> usize {
    let mut i = 0;
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[i] = low;
            return i + 1;
        }
        out[i] = low | 0x80;
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_round_trip() {
        for value in [0, 1, 127, 128, 16383, 16384, 2_097_151, 2_097_152, u32::MAX] {
            let mut buf = [0u8; MAX_LEN];
            let n = write_u32(value, &mut buf);
            assert_eq!(n, encoded_len(value), "{value}");
            assert_eq!(read_u32(&buf[..n]), Ok((value, n)), "{value}");
        }
    }

    #[test]
    fn known_encodings() {
        assert_eq!(read_u32(&[0x00]), Ok((0, 1)));
        assert_eq!(read_u32(&[0x7f]), Ok((127, 1)));
        assert_eq!(read_u32(&[0x80, 0x01]), Ok((128, 2)));
        assert_eq!(read_u32(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Ok((u32::MAX, 5)));
    }

    #[test]
    fn rejects_bad_prefixes() {
        assert_eq!(read_u32(&[]), Err(ReadError::Truncated));
        assert_eq!(read_u32(&[0x80]), Err(ReadError::Truncated));
        assert_eq!(
            read_u32(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(ReadError::Overflow)
        );
        assert_eq!(
            read_u32(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(ReadError::Overflow)
        );
        assert_eq!(
            read_u32(&[0x80, 0x80, 0x80, 0x80, 0x80]),
            Err(ReadError::Overflow)
        );
        assert_eq!(read_u32(&[0x81, 0x00]), Err(ReadError::Overlong));
        assert_eq!(read_u32(&[0x80, 0x80, 0x00]), Err(ReadError::Overlong));
    }
}

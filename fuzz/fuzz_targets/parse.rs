//! Envelope detection and every forced layout over arbitrary bytes, plus the
//! base64 front door over arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_format::{Envelope, KeyBlob, Layout};

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::parse(data) {
        assert_eq!(envelope.to_bytes(), data);
        if let Ok(keys) = envelope.encrypted_keys() {
            let _ = KeyBlob::parse(&keys);
        }
    }
    for layout in Layout::ALL {
        if let Ok(envelope) = Envelope::parse_as(data, layout) {
            assert_eq!(envelope.encoded_len(), data.len());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let mut buf = Vec::new();
        let _ = Envelope::parse_base64(text, &mut buf);
    }
});

//! Encoding then parsing round-trips in every layout; arbitrary bytes never
//! panic the parser.

use proptest::prelude::*;
use vault_format::__private::{Frame, WORKOS_MAGIC};
use vault_format::{b64, Envelope, KeyBlob, Layout};

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::A12),
        Just(Layout::A32),
        Just(Layout::B),
        Just(Layout::APrime)
    ]
}

/// A WorkOS-looking blob of `filler` extra bytes, so detection can find it.
fn workos_blob(filler: Vec<u8>) -> Vec<u8> {
    [
        WORKOS_MAGIC.as_slice(),
        b"d4ecdb90-30fc-560a-80c4-a1ad67b2b53c",
        &filler,
    ]
    .concat()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_large(
        layout in layout(),
        iv_seed in any::<u8>(),
        keys in proptest::collection::vec(any::<u8>(), 0..70_000),
        ciphertext in proptest::collection::vec(any::<u8>(), 0..100_000),
    ) {
        let iv = vec![iv_seed; layout.iv_len()];
        let tag = [iv_seed ^ 0x5a; 16];
        let region = if layout == Layout::APrime { b64::encode(&keys).into_bytes() } else { keys.clone() };
        let envelope = Envelope::new(layout, &iv, &tag, &region, &ciphertext).unwrap();
        let bytes = envelope.to_bytes();
        prop_assert_eq!(bytes.len(), envelope.encoded_len());
        let parsed = Envelope::parse_as(&bytes, layout).unwrap();
        prop_assert_eq!(parsed, envelope);
        let decoded = parsed.encrypted_keys().unwrap();
        prop_assert_eq!(decoded.as_ref(), keys.as_slice());
        prop_assert_eq!(b64::decode(&envelope.to_base64()).unwrap(), bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn detection_finds_the_layout(
        layout in layout(),
        iv in any::<[u8; 32]>(),
        filler in proptest::collection::vec(any::<u8>(), 0..300),
        ciphertext in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let blob = workos_blob(filler);
        let region = if layout == Layout::APrime { b64::encode(&blob).into_bytes() } else { blob.clone() };
        let envelope = Envelope::new(layout, &iv[..layout.iv_len()], &[7; 16], &region, &ciphertext).unwrap();
        let bytes = envelope.to_bytes();
        let parsed = Envelope::parse(&bytes).unwrap();
        prop_assert_eq!(parsed.layout(), layout);
        prop_assert_eq!(parsed, envelope);
        prop_assert!(KeyBlob::parse(&parsed.encrypted_keys().unwrap()).is_known());
    }

    #[test]
    fn frame_ranges_tile_the_envelope(layout in layout(), keys_len in 0usize..20_000, ct_len in 0usize..5000) {
        let frame = Frame::new(layout, keys_len, ct_len).unwrap();
        let mut ranges = [frame.iv(), frame.tag(), frame.keys(), frame.ciphertext()];
        ranges.sort_by_key(|r| (r.start, r.end));
        let covered: usize = ranges.iter().map(|r| r.len()).sum();
        // Everything but the length prefix is covered, without overlap.
        let prefix = frame.len() - covered;
        prop_assert!((1..=5).contains(&prefix));
        for pair in ranges.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(envelope) = Envelope::parse(&bytes) {
            prop_assert!(envelope.encoded_len() == bytes.len());
            let _ = envelope.encrypted_keys();
        }
        for layout in Layout::ALL {
            if let Ok(envelope) = Envelope::parse_as(&bytes, layout) {
                prop_assert_eq!(envelope.to_bytes(), bytes.clone());
            }
        }
        let _ = KeyBlob::parse(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let mut buf = Vec::new();
        let _ = Envelope::parse_base64(&text, &mut buf);
    }

    #[test]
    fn magic_at_a_random_offset_never_panics(
        prefix in proptest::collection::vec(any::<u8>(), 0..64),
        suffix in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = [prefix.as_slice(), WORKOS_MAGIC.as_slice(), &suffix].concat();
        let _ = Envelope::parse(&bytes);
    }
}

/// Splits `text` at the given points (sorted, deduplicated, in range).
fn pieces<'a>(text: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (text.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut at = 0;
    for cut in cuts {
        out.push(&text[at..cut]);
        at = cut;
    }
    out.push(&text[at..]);
    out
}

fn stream_decode(text: &[u8], cuts: &[usize]) -> Result<Vec<u8>, vault_format::Error> {
    let mut out = Vec::new();
    let mut decoder = b64::Decoder::new();
    for piece in pieces(text, cuts) {
        decoder.push(piece, &mut out)?;
    }
    decoder.finish(&mut out)?;
    Ok(out)
}

/// Streaming and whole-text decoding agree: the same bytes, or both an
/// error. Streaming cannot look ahead, so it may stop at misplaced padding
/// before a stray character further on; but a stray character it names is
/// the one whole-text decoding names, at the same offset.
fn assert_same_outcome(text: &str, cuts: &[usize]) -> Result<(), TestCaseError> {
    use vault_format::Error;
    let whole = b64::decode(text);
    let streamed = stream_decode(text.as_bytes(), cuts);
    match (&whole, &streamed) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(a), Err(b @ (Error::InvalidBase64Character { .. } | Error::UrlSafeBase64 { .. })))
        | (Err(a @ Error::Empty), Err(b)) => prop_assert_eq!(a, b),
        (Err(_), Err(Error::MalformedBase64 { .. })) => {}
        _ => prop_assert!(
            false,
            "{text:?} split at {cuts:?}: {whole:?} vs {streamed:?}"
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn streaming_decode_matches_whole_decode_on_valid_text(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        spaces in proptest::collection::vec((any::<usize>(), prop::sample::select(vec![" ", "\n", "\r\n", "\t"])), 0..8),
        unpadded in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut text = b64::encode(&bytes);
        if unpadded {
            text = text.trim_end_matches('=').to_owned();
        }
        for (at, space) in spaces {
            let at = at % (text.len() + 1);
            text.insert_str(at, space);
        }
        assert_same_outcome(&text, &cuts)?;
        if !bytes.is_empty() {
            prop_assert_eq!(stream_decode(text.as_bytes(), &cuts).unwrap(), bytes);
        }
    }

    #[test]
    fn streaming_decode_matches_whole_decode_on_any_text(
        text in "[A-Za-z0-9+/= \n_é!-]{0,80}",
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        // Cut only at character boundaries here; cutting inside a UTF-8
        // character is covered below.
        let cuts: Vec<usize> = cuts
            .into_iter()
            .map(|c| c % (text.len() + 1))
            .filter(|&c| text.is_char_boundary(c))
            .collect();
        assert_same_outcome(&text, &cuts)?;
    }
}

#[test]
fn a_stray_character_split_across_pieces_is_still_named() {
    let text = "aGVsbG8gé29ybGQ=";
    let at = text.find('é').unwrap();
    assert_eq!(
        stream_decode(text.as_bytes(), &[at + 1]),
        Err(vault_format::Error::InvalidBase64Character {
            character: '\u{fffd}',
            offset: at
        })
    );
    assert_eq!(
        stream_decode(text.as_bytes(), &[at]),
        Err(vault_format::Error::InvalidBase64Character {
            character: 'é',
            offset: at
        })
    );
}

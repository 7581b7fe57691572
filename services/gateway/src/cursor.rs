//! Opaque pagination cursors.
//!
//! Underneath, a cursor is just the last id of the previous page, which is
//! what makes pages stable while new tweets arrive (keyset pagination, never
//! offsets). It is wrapped with a kind byte and a truncated HMAC and encoded
//! as base64url, so clients cannot forge one, cannot reuse a followers cursor
//! on a timeline, and must treat it as opaque: the encoding can change.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;

/// What a cursor points into; part of the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CursorKind {
    /// Lists of tweets, by tweet id.
    Tweets = 1,
    /// Lists of users, by user id.
    Users = 2,
}

const VERSION: u8 = 1;
const TAG_LEN: usize = 8;
const PAYLOAD_LEN: usize = 2 + 8;

#[derive(Clone)]
pub struct Cursors {
    key: Hmac<Sha256>,
}

impl Cursors {
    pub fn new(secret: &[u8]) -> Self {
        let mut key = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        key.update(b"chirp cursor");
        Self { key }
    }

    pub fn encode(&self, kind: CursorKind, id: i64) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        bytes.push(VERSION);
        bytes.push(kind as u8);
        bytes.extend_from_slice(&id.to_be_bytes());
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(&self, kind: CursorKind, cursor: &str) -> Result<i64, ApiError> {
        let invalid = || ApiError::invalid("the cursor is malformed or was not issued by this API");
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if bytes.len() != PAYLOAD_LEN + TAG_LEN || bytes[0] != VERSION || bytes[1] != kind as u8 {
            return Err(invalid());
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        let mut mac = self.key.clone();
        mac.update(payload);
        mac.verify_truncated_left(tag).map_err(|_| invalid())?;
        let id = i64::from_be_bytes(payload[2..].try_into().map_err(|_| invalid())?);
        Ok(id)
    }

    fn tag(&self, payload: &[u8]) -> [u8; 32] {
        let mut mac = self.key.clone();
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cursors() -> Cursors {
        Cursors::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn round_trips() {
        for id in [0, 1, 42, i64::MAX, -1] {
            let cursor = cursors().encode(CursorKind::Tweets, id);
            assert_eq!(cursors().decode(CursorKind::Tweets, &cursor).unwrap(), id);
        }
    }

    #[test]
    fn refuses_forgeries_other_kinds_and_garbage() {
        let cursor = cursors().encode(CursorKind::Tweets, 7);
        assert!(cursors().decode(CursorKind::Users, &cursor).is_err());
        let other_key = Cursors::new(b"another secret, another secret!!");
        assert!(other_key.decode(CursorKind::Tweets, &cursor).is_err());
        let mut tampered = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        tampered[9] ^= 1;
        assert!(
            cursors()
                .decode(CursorKind::Tweets, &URL_SAFE_NO_PAD.encode(tampered))
                .is_err()
        );
        for garbage in ["", "abc", "!!!!", "0", &"A".repeat(1000)] {
            assert!(
                cursors().decode(CursorKind::Tweets, garbage).is_err(),
                "{garbage}"
            );
        }
    }

    fn any_kind() -> impl Strategy<Value = CursorKind> {
        prop_oneof![Just(CursorKind::Tweets), Just(CursorKind::Users)]
    }

    proptest! {
        #[test]
        fn any_id_of_any_kind_round_trips(id in any::<i64>(), kind in any_kind()) {
            let cursor = cursors().encode(kind, id);
            prop_assert_eq!(cursors().decode(kind, &cursor).ok(), Some(id));
        }

        /// Flipping any bits of any byte breaks the signature or the header.
        #[test]
        fn any_tampered_byte_is_refused(
            id in any::<i64>(),
            kind in any_kind(),
            index in any::<prop::sample::Index>(),
            flip in 1..=u8::MAX,
        ) {
            let mut bytes = URL_SAFE_NO_PAD.decode(cursors().encode(kind, id)).unwrap();
            let at = index.index(bytes.len());
            bytes[at] ^= flip;
            prop_assert!(cursors().decode(kind, &URL_SAFE_NO_PAD.encode(bytes)).is_err());
        }

        /// Whatever a client sends is refused with an error, never a panic.
        #[test]
        fn random_strings_are_refused(garbage in ".*", kind in any_kind()) {
            prop_assert!(cursors().decode(kind, &garbage).is_err());
        }

        #[test]
        fn random_bytes_of_the_right_length_are_refused(
            bytes in prop::collection::vec(any::<u8>(), PAYLOAD_LEN + TAG_LEN),
            kind in any_kind(),
        ) {
            prop_assert!(cursors().decode(kind, &URL_SAFE_NO_PAD.encode(bytes)).is_err());
        }
    }
}

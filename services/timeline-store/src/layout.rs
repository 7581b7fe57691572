//! The bytes of a home timeline in Redis: key names, members and markers.
//! Pure, so the ordering argument is tested without a server.
//!
//! # Keys
//!
//! Everything about one user lives under keys sharing the hash tag
//! `{<user_id>}`, so in a Redis Cluster they sit in one slot and a script may
//! touch them together; nothing here ever names two users' keys in one
//! command. The key prefix must not contain `{`, or it would become the tag.
//!
//! - `<prefix>tl:{<user_id>}`: the timeline, a sorted set.
//! - `<prefix>tl:{<user_id>}:rebuild`: the token of the rebuild in progress.
//! - `<prefix>tl:{<user_id>}:pulled`: the authors a page of this timeline
//!   pulls at read time (under hybrid, the celebrities the user follows),
//!   as the rebuild that completed it found them: a string of their ids,
//!   8 big-endian bytes each ([`encode_ids`]). It is written and dropped
//!   together with the timeline, so it is exactly as fresh as the pushed
//!   half; a timeline without it (Redis evicted one key of the two) is not
//!   served.
//! - `<prefix>tl:{<user_id>}:seen`: the reader's activity record, when
//!   `ACTIVE_WINDOW_SECS` is on: `1`, set by every read of their home
//!   timeline to expire after the window. It belongs to the reader, not to
//!   the timeline, so dropping a timeline leaves it; it shares the hash tag
//!   so that the push script can check it beside the timeline.
//!
//! A deleted tweet's tombstone is `<prefix>tomb:{<tweet_id>}`, tagged by the
//! tweet, and the feed of recent deletions is one key, `<prefix>deleted`.
//!
//! # Members
//!
//! A tweet id is a positive `i64`, written as its 8 big-endian bytes, every
//! member with score 0: Redis then orders members by bytes, which for
//! equal-length big-endian numbers is numeric order, and pages are
//! `ZRANGE … BYLEX REV`. A float score cannot carry the id (a 63-bit
//! Snowflake does not fit a double's 53-bit mantissa). With score 0 and an
//! 8-byte string, a listpack entry costs 12 bytes (10 for the member, 2 for
//! the score) where the 19 ASCII digits of before cost 23, and far less than
//! a skiplist node: that is the whole memory budget of an entry.
//!
//! # Markers
//!
//! Members shorter than 8 bytes are markers. The three in use are prefixes
//! of every id's zero-padded bytes (`""`, `"\0"`, `"\0\0"`), so they sort
//! below every id, and a page's exclusive lower bound, [`ABOVE_MARKERS`],
//! leaves them out. They make states out of a key's mere presence:
//!
//! - [`COMPLETE`]: a rebuild finished; the timeline holds every pushed
//!   tweet newer than its oldest entry. Without it the key is not served.
//! - [`REBUILDING`]: a rebuild began; pushes land here meanwhile, so the
//!   rebuild's result is merged with them and none is lost.
//! - [`CUT`]: older entries exist beyond the oldest one held (the timeline
//!   was trimmed to capacity, or the rebuild was): a page that runs past it
//!   continues from the stores.

/// The complete-timeline marker; see the module doc.
pub const COMPLETE: &[u8] = b"";
/// The being-rebuilt marker.
pub const REBUILDING: &[u8] = b"\0";
/// The older-entries-exist marker.
pub const CUT: &[u8] = b"\0\0";
/// Exclusive lower bound of every page: above the highest marker, below
/// every id.
pub const ABOVE_MARKERS: &[u8] = b"(\0\0";
/// Inclusive upper bound of the markers, for reading them alone.
pub const UP_TO_MARKERS: &[u8] = b"[\0\0";

pub fn timeline_key(prefix: &str, user_id: i64) -> String {
    format!("{prefix}tl:{{{user_id}}}")
}

pub fn rebuild_key(prefix: &str, user_id: i64) -> String {
    format!("{prefix}tl:{{{user_id}}}:rebuild")
}

pub fn pulled_key(prefix: &str, user_id: i64) -> String {
    format!("{prefix}tl:{{{user_id}}}:pulled")
}

pub fn seen_key(prefix: &str, user_id: i64) -> String {
    format!("{prefix}tl:{{{user_id}}}:seen")
}

pub fn tombstone_key(prefix: &str, tweet_id: i64) -> String {
    format!("{prefix}tomb:{{{tweet_id}}}")
}

pub fn deleted_feed_key(prefix: &str) -> String {
    format!("{prefix}deleted")
}

pub fn encode(tweet_id: i64) -> [u8; 8] {
    tweet_id.to_be_bytes()
}

/// The id of a member, or `None` for a marker.
pub fn decode(member: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(member.try_into().ok()?))
}

/// Ids as one string, 8 big-endian bytes each.
pub fn encode_ids(ids: &[i64]) -> Vec<u8> {
    ids.iter().flat_map(|&id| encode(id)).collect()
}

/// The ids of a string written by [`encode_ids`].
pub fn decode_ids(bytes: &[u8]) -> Vec<i64> {
    bytes.chunks_exact(8).filter_map(decode).collect()
}

/// `(` and the encoded id: an exclusive `BYLEX` bound.
pub fn below(tweet_id: i64) -> Vec<u8> {
    let mut bound = vec![b'('];
    bound.extend_from_slice(&encode(tweet_id));
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_sort_like_the_ids_and_markers_below_them_all() {
        let ids = [1_i64, 255, 256, 99_999, 7_000_000_000_000_000_000, i64::MAX];
        let mut members: Vec<Vec<u8>> = ids.iter().map(|&id| encode(id).to_vec()).collect();
        members.extend([COMPLETE, REBUILDING, CUT].map(<[u8]>::to_vec));
        members.sort();
        assert_eq!(&members[..3], [COMPLETE, REBUILDING, CUT]);
        let decoded: Vec<i64> = members.iter().filter_map(|m| decode(m)).collect();
        assert_eq!(decoded, ids);
        assert!(CUT < &encode(0)[..], "even id 0 sorts above the markers");
    }

    #[test]
    fn a_list_of_ids_round_trips_through_its_string() {
        let ids = [1_i64, 256, i64::MAX];
        assert_eq!(encode_ids(&ids).len(), 24);
        assert_eq!(decode_ids(&encode_ids(&ids)), ids);
        assert!(decode_ids(&encode_ids(&[])).is_empty());
    }

    #[test]
    fn one_users_keys_share_a_hash_tag() {
        assert_eq!(timeline_key("chirp:", 42), "chirp:tl:{42}");
        assert_eq!(rebuild_key("chirp:", 42), "chirp:tl:{42}:rebuild");
        assert_eq!(pulled_key("chirp:", 42), "chirp:tl:{42}:pulled");
        assert_eq!(seen_key("chirp:", 42), "chirp:tl:{42}:seen");
        assert_eq!(tombstone_key("chirp:", 7), "chirp:tomb:{7}");
    }
}

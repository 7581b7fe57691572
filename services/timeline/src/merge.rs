//! Merging the sources of one page: pure, so the pagination argument can be
//! tested without any backend.
//!
//! Every source (the pushed timeline, each pulled author) is asked for its
//! newest `limit + 1` ids below the cursor. The newest `limit + 1` ids of the
//! union are then all among the answers, since each of them is among the
//! newest `limit + 1` of its own source; so the merged page is exactly what
//! one big sorted timeline would have returned, and its last id is a cursor
//! from which the next page continues without gaps or duplicates.

use chirp_common::paging;

/// Merges `sources` (each newest first) into one page of at most `limit` ids,
/// newest first, without duplicates, and returns the next page's cursor when
/// the sources hold more.
pub fn newest_first(sources: Vec<Vec<i64>>, limit: usize) -> (Vec<i64>, Option<i64>) {
    let mut ids: Vec<i64> = sources.into_iter().flatten().collect();
    // An author who crossed the celebrity threshold can be in both halves.
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids.truncate(limit + 1);
    // The cursor is the last id *read*, not the last tweet returned: when the
    // oldest ids of a page were deleted, the next page must still start after them.
    let cursor = paging::cut(&mut ids, limit, |&id| id);
    (ids, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_only_when_more_ids_exist() {
        assert_eq!(newest_first(vec![vec![9, 8, 7]], 2), (vec![9, 8], Some(8)));
        assert_eq!(newest_first(vec![vec![9, 8]], 2), (vec![9, 8], None));
        assert_eq!(newest_first(Vec::new(), 2), (Vec::new(), None));
    }

    #[test]
    fn sources_interleave_newest_first_without_duplicates() {
        let pushed = vec![10, 7, 4];
        let celebrity = vec![9, 7, 3];
        let (page, cursor) = newest_first(vec![pushed, celebrity, Vec::new()], 4);
        assert_eq!(page, [10, 9, 7, 4]);
        assert_eq!(cursor, Some(4));
    }

    /// Paging through the merge with each source cut at the cursor, as the
    /// service does, yields every id once, in order, for any page size.
    #[test]
    fn paging_through_a_merge_has_no_gaps_or_duplicates() {
        let sources = [
            vec![30, 24, 23, 22, 9, 8, 2],
            vec![29, 28, 27, 26, 25, 1],
            vec![24, 21, 20, 3],
        ];
        let mut everything: Vec<i64> = sources.iter().flatten().copied().collect();
        everything.sort_unstable_by(|a, b| b.cmp(a));
        everything.dedup();
        for limit in 1..=everything.len() + 1 {
            let mut read = Vec::new();
            let mut cursor = None;
            loop {
                let below = |source: &Vec<i64>| -> Vec<i64> {
                    let newer = |id: &&i64| cursor.is_none_or(|c| **id < c);
                    source
                        .iter()
                        .filter(newer)
                        .take(limit + 1)
                        .copied()
                        .collect()
                };
                let (page, next) = newest_first(sources.iter().map(below).collect(), limit);
                read.extend(page);
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(read, everything, "page size {limit}");
        }
    }
}

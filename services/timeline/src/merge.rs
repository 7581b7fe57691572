//! Step 5 of a page, the merge of its lists of ids: pure, so the pagination
//! argument can be tested without any backend.
//!
//! Every list (the pushed timeline, each pulled author) is asked for its
//! newest `limit + 1` ids below the cursor. The newest `limit + 1` ids of the
//! union are then all among the answers, since each of them is among the
//! newest `limit + 1` of its own list; so the merged page is exactly what
//! one big sorted timeline would have returned, and its last id is a cursor
//! from which the next page continues without gaps or duplicates.

use std::collections::HashMap;

use chirp_domain::paging;
use chirp_proto::timeline::ItemSource;

/// One page of ids, newest first, and where each came from.
pub struct Merged {
    pub ids: Vec<i64>,
    /// The next page's cursor, when the lists hold more.
    pub next_before: Option<i64>,
    sources: HashMap<i64, ItemSource>,
}

impl Merged {
    /// Where `id`, one of [`Merged::ids`], came from.
    pub fn source_of(&self, id: i64) -> ItemSource {
        self.sources
            .get(&id)
            .copied()
            .unwrap_or(ItemSource::Unspecified)
    }
}

/// Merges the `pushed` ids (each labelled with its source) and the `pulled`
/// lists, each newest first, into one page of at most `limit` ids. An id in
/// both keeps the pushed label.
pub fn page(pushed: Vec<(i64, ItemSource)>, pulled: Vec<Vec<i64>>, limit: usize) -> Merged {
    let mut sources: HashMap<i64, ItemSource> = pushed.iter().copied().collect();
    for &id in pulled.iter().flatten() {
        sources.entry(id).or_insert(ItemSource::Pulled);
    }
    let mut lists = pulled;
    lists.push(pushed.into_iter().map(|(id, _)| id).collect());
    let (ids, next_before) = newest_first(lists, limit);
    sources.retain(|id, _| ids.contains(id));
    Merged {
        ids,
        next_before,
        sources,
    }
}

/// Merges `lists` (each newest first) into one page of at most `limit` ids,
/// newest first, without duplicates, and returns the next page's cursor when
/// the lists hold more.
fn newest_first(lists: Vec<Vec<i64>>, limit: usize) -> (Vec<i64>, Option<i64>) {
    let mut ids: Vec<i64> = lists.into_iter().flatten().collect();
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
    fn each_id_keeps_its_source_and_a_pushed_label_wins() {
        let pushed = vec![(10, ItemSource::Pushed), (7, ItemSource::Store)];
        let merged = page(pushed, vec![vec![9, 7]], 5);
        assert_eq!(merged.ids, [10, 9, 7]);
        assert_eq!(merged.source_of(10), ItemSource::Pushed);
        assert_eq!(merged.source_of(9), ItemSource::Pulled);
        assert_eq!(merged.source_of(7), ItemSource::Store);
    }

    #[test]
    fn lists_interleave_newest_first_without_duplicates() {
        let pushed = vec![10, 7, 4];
        let celebrity = vec![9, 7, 3];
        let (page, cursor) = newest_first(vec![pushed, celebrity, Vec::new()], 4);
        assert_eq!(page, [10, 9, 7, 4]);
        assert_eq!(cursor, Some(4));
    }

    /// Paging through the merge with each list cut at the cursor, as the
    /// service does, yields every id once, in order, for any page size.
    #[test]
    fn paging_through_a_merge_has_no_gaps_or_duplicates() {
        let lists = [
            vec![30, 24, 23, 22, 9, 8, 2],
            vec![29, 28, 27, 26, 25, 1],
            vec![24, 21, 20, 3],
        ];
        let mut everything: Vec<i64> = lists.iter().flatten().copied().collect();
        everything.sort_unstable_by(|a, b| b.cmp(a));
        everything.dedup();
        for limit in 1..=everything.len() + 1 {
            let mut read = Vec::new();
            let mut cursor = None;
            loop {
                let below = |list: &Vec<i64>| -> Vec<i64> {
                    let newer = |id: &&i64| cursor.is_none_or(|c| **id < c);
                    list.iter().filter(newer).take(limit + 1).copied().collect()
                };
                let (page, next) = newest_first(lists.iter().map(below).collect(), limit);
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

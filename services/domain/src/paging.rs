//! Keyset pagination, the way every chirp list pages.
//!
//! A page is read with one row more than it returns: that extra row tells,
//! without a COUNT, whether a next page exists, and the key of the last row
//! kept is where the next page starts. Keys, never offsets, so rows inserted
//! or deleted meanwhile cannot shift the next page.

/// How many rows a list returns: a default when the caller asks for none,
/// and a ceiling.
#[derive(Debug, Clone, Copy)]
pub struct PageSize {
    pub default: u32,
    pub max: u32,
}

impl PageSize {
    /// The page size for a request's `limit`, where 0 means unset (proto3).
    pub fn resolve(self, requested: u32) -> usize {
        let size = if requested == 0 {
            self.default
        } else {
            requested.min(self.max)
        };
        size as usize
    }
}

/// Cuts `rows`, read with one row more than `limit`, down to the page, and
/// returns the key of its last row when the extra row showed there is more.
pub fn cut<T, K>(rows: &mut Vec<T>, limit: usize, key: impl FnOnce(&T) -> K) -> Option<K> {
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    if has_more { rows.last().map(key) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_only_when_more_rows_exist() {
        let mut rows = vec![9, 8, 7];
        assert_eq!(cut(&mut rows, 2, |&id| id), Some(8));
        assert_eq!(rows, vec![9, 8]);
        assert_eq!(cut(&mut rows, 2, |&id| id), None);
        assert_eq!(cut(&mut Vec::<i64>::new(), 2, |&id| id), None);
    }

    #[test]
    fn sizes_default_and_are_capped() {
        let size = PageSize {
            default: 20,
            max: 100,
        };
        assert_eq!(size.resolve(0), 20);
        assert_eq!(size.resolve(7), 7);
        assert_eq!(size.resolve(u32::MAX), 100);
    }
}

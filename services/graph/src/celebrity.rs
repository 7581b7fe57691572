//! Who is a celebrity: a flag stored with each user, with hysteresis at the
//! threshold, and the start-up pass that brings every flag in line with the
//! configured marks.
//!
//! Crossing the threshold, either way, costs the drop of every follower's
//! timeline, about the threshold's number ([`crate::pending_drops`]). With a
//! single mark, one follow toggled on an author at the threshold − 1 pays
//! that on every toggle: ten thousand drops, and as many rebuilds, per click.
//! So the flag rises at `CELEBRITY_THRESHOLD` and falls only below a lower
//! mark, `CELEBRITY_HYSTERESIS_PERCENT` of the threshold beneath it; in
//! between, an author stays what they were. Two crossings of one author are
//! then at least that gap of follow changes apart, so a follow change causes
//! on average at most 2 × 100 / percent timeline drops: 20 at the default of
//! 10 %, whatever the threshold, where toggling caused 10 000 per change.
//! The price is small: two authors with the same count inside the gap may be
//! treated differently, and both treatments are correct (pushed or pulled,
//! a tweet reaches every follower) and cost within that percentage of each
//! other. A wider gap would make crossings rarer still, but would keep
//! pushing authors well past the point where pulling them is cheaper.
//!
//! Since the count alone no longer says it, the flag is stored
//! (`users.is_celebrity`), moved by the transaction that moves the count,
//! through one SQL function (`celebrity_flag`, in the migrations), and every
//! other service reads it from here: the fan-out worker through `GetUser`,
//! the timeline service through `ListFollowedCelebrities`. Nothing else
//! compares a count with the threshold.
//!
//! A changed threshold (or percentage) changes the marks, not the flags, so
//! every start classifies all users again ([`classify_all`]): one not a
//! celebrity at or above the new threshold rises, one below the new lower
//! mark falls, and the same statement queues the drop of each such author's
//! followers' timelines, in the durable queue a crossing by follow uses.
//! When the marks did not change, the pass is two index scans that find
//! nothing.

use sqlx::PgPool;

use crate::GraphError;

/// The two follower counts at which the flag moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    /// At or above it, an author is a celebrity (`CELEBRITY_THRESHOLD`).
    pub rise_at: i64,
    /// Below it, an author is not; in between, they stay what they were.
    pub fall_below: i64,
}

impl Marks {
    /// The marks of `threshold` with a gap of `hysteresis_percent` of it,
    /// rounded down to whole followers.
    pub fn new(threshold: i64, hysteresis_percent: u8) -> Self {
        let gap = threshold.saturating_mul(i64::from(hysteresis_percent)) / 100;
        Self {
            rise_at: threshold,
            fall_below: threshold - gap.max(0),
        }
    }
}

/// Sets every user's flag as [`Marks`] would have it, queueing the drop of
/// the followers' timelines of each author whose flag changes, in one
/// statement; returns how many changed. The two conditions are the cases
/// where `celebrity_flag` differs from the stored flag, written so that each
/// is an index scan (`users_follower_count_idx`, `users_celebrities_idx`).
pub async fn classify_all(pool: &PgPool, marks: Marks) -> Result<i64, GraphError> {
    let changed = sqlx::query_scalar(
        "WITH changed AS ( \
             UPDATE users SET is_celebrity = NOT is_celebrity \
             WHERE (NOT is_celebrity AND follower_count >= $1) \
                OR (is_celebrity AND follower_count < $2) \
             RETURNING user_id \
         ), queued AS ( \
             INSERT INTO pending_timeline_drops (user_id, whose) \
             SELECT user_id, 'followers' FROM changed \
         ) \
         SELECT count(*) FROM changed",
    )
    .bind(marks.rise_at)
    .bind(marks.fall_below)
    .fetch_one(pool)
    .await?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::Marks;

    #[test]
    fn the_lower_mark_is_the_threshold_less_its_percentage_rounded_down() {
        assert_eq!(Marks::new(10_000, 10).fall_below, 9_000);
        assert_eq!(Marks::new(10, 10).fall_below, 9);
        assert_eq!(Marks::new(3, 10).fall_below, 3, "no whole follower");
        assert_eq!(Marks::new(10_000, 0).fall_below, 10_000);
        assert_eq!(Marks::new(10_000, 10).rise_at, 10_000);
    }
}

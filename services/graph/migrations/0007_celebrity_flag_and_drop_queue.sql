-- Whether an author is a celebrity, stored: with hysteresis at the threshold
-- (celebrity.rs) the follower count alone no longer says it, since between
-- the two marks the answer is whichever side the author came from. This flag
-- is the one answer every service gets (GetUser, ListFollowedCelebrities).
-- Existing users start at false; the service's start-up classification then
-- raises every one at the threshold and queues their followers' timeline
-- drops, as it does after any change of the threshold: a one-time rebuild
-- of those timelines, and never a flag that disagrees with them.
ALTER TABLE users ADD COLUMN is_celebrity BOOLEAN NOT NULL DEFAULT false;

-- The rule, in one place for every statement that moves a follower count:
-- at or above `rise_at` an author is a celebrity, below `fall_below` not,
-- and in between stays what they were.
CREATE FUNCTION celebrity_flag(was BOOLEAN, followers BIGINT, rise_at BIGINT, fall_below BIGINT)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN followers >= rise_at THEN true
                WHEN followers < fall_below THEN false
                ELSE was END
$$;

-- The start-up classification looks for celebrities who fell below the lower
-- mark; there are few of them, so this index is small.
CREATE INDEX users_celebrities_idx ON users (follower_count) WHERE is_celebrity;

-- The drop queue (pending_drops.rs) gets one row per piece of work instead of
-- one per author: a crossing queued while an earlier one of the same author
-- is being done is a row of its own, which that work does not delete. And it
-- now also holds the drop of a follower's own timeline after a follow or an
-- unfollow (`whose` = 'own'), besides that of an author's followers'
-- timelines after a crossing ('followers').
ALTER TABLE pending_timeline_drops DROP CONSTRAINT pending_timeline_drops_pkey;
ALTER TABLE pending_timeline_drops RENAME COLUMN author_id TO user_id;
ALTER TABLE pending_timeline_drops
    ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ADD COLUMN whose TEXT NOT NULL DEFAULT 'followers' CHECK (whose IN ('own', 'followers'));
ALTER TABLE pending_timeline_drops ALTER COLUMN whose DROP DEFAULT;
CREATE INDEX pending_timeline_drops_user_idx ON pending_timeline_drops (user_id, whose);

-- Authors whose followers' cached home timelines must be dropped: written in
-- the transaction of the unfollow that took the author below the celebrity
-- threshold, deleted once every follower's timeline is gone. A row here is
-- work that survives a failed Redis call or a crash (see pending_drops.rs).
CREATE TABLE pending_timeline_drops (
    author_id BIGINT      PRIMARY KEY REFERENCES users (user_id),
    queued_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

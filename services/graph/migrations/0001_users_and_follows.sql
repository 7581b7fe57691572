-- Users and the follow graph. Counts are denormalised onto users so that the
-- celebrity check on every tweet is a primary-key read, not a COUNT(*).
CREATE TABLE users (
    user_id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    handle          TEXT        NOT NULL,
    display_name    TEXT        NOT NULL,
    follower_count  BIGINT      NOT NULL DEFAULT 0 CHECK (follower_count >= 0),
    following_count BIGINT      NOT NULL DEFAULT 0 CHECK (following_count >= 0),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Handles are unique regardless of case: @Alice and @alice are one person.
CREATE UNIQUE INDEX users_handle_lower_key ON users (lower(handle));

CREATE TABLE follows (
    follower_id BIGINT      NOT NULL REFERENCES users (user_id),
    followee_id BIGINT      NOT NULL REFERENCES users (user_id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);

-- The primary key answers "whom does X follow"; this answers "who follows X",
-- the question fan-out asks for every tweet.
CREATE INDEX follows_followee_follower_idx ON follows (followee_id, follower_id);

-- Idempotency keys of sign-ups (CreateUser with an idempotency key): a client
-- whose answer was lost retries with the same key and gets the same user back,
-- instead of a "handle taken" from its own first attempt. The key commits in
-- the same transaction as the user, so either both exist or neither does. The
-- body is kept to tell a retry from a different sign-up reusing the key. A key
-- lives as long as its user: a row per keyed sign-up, a few dozen bytes.
CREATE TABLE sign_up_keys (
    idempotency_key TEXT        PRIMARY KEY,
    user_id         BIGINT      NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    handle          TEXT        NOT NULL,
    display_name    TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

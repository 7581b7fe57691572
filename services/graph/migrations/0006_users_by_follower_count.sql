-- "Popular accounts" (ListPopularUsers) reads the first N users of this index
-- instead of sorting every user. The price: a follow or unfollow changes an
-- indexed column, so its counter UPDATE is no longer a heap-only (HOT) update
-- and touches this index too. user_id breaks ties, so the order is stable.
CREATE INDEX users_follower_count_idx ON users (follower_count DESC, user_id);

-- What a post's decision reads about its group — the group's status and attending physician, its active
-- memberships and their roles, its consents — changes only in a transaction that also updates the group's
-- row (`store::groups`: `lock_group!` and the handover and archive statements). `state_version` counts
-- those updates, so the group commit can decide a batch on groups it read earlier and write only if no
-- group's `state_version` moved meanwhile (`store::posts::commit_unlocked`). A new post moves only
-- `last_seq` and leaves it alone: a node keeps its groups while other nodes post to them.
ALTER TABLE groups ADD COLUMN state_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION groups_state_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.state_version := OLD.state_version + 1;
    RETURN NEW;
END
$$;

-- Every update but the group commit's (the only one that moves `last_seq`, and it moves nothing else).
CREATE TRIGGER groups_state_version BEFORE UPDATE ON groups FOR EACH ROW
    WHEN (OLD.last_seq IS NOT DISTINCT FROM NEW.last_seq) EXECUTE FUNCTION groups_state_changed();

-- `state_version` counts the updates of a group's row other than the group commit's (see the PostgreSQL
-- migration of the same number). SQLite's committer does not need it — its write lock is held from the read
-- to the write — but it is kept here too, so the column means the same on both databases.
ALTER TABLE groups ADD COLUMN state_version INTEGER NOT NULL DEFAULT 0;

-- Every update but the group commit's (the only one that moves `last_seq`, and it moves nothing else).
-- SQLite does not fire triggers from a trigger's own statements (recursive_triggers is off).
CREATE TRIGGER groups_state_version AFTER UPDATE ON groups FOR EACH ROW
    WHEN OLD.last_seq IS NEW.last_seq
BEGIN
    UPDATE groups SET state_version = OLD.state_version + 1 WHERE id = NEW.id;
END;

-- A post's group and author are checked by the group commit inside its transaction (the group row locked,
-- the author's active membership read: `store::posts::commit_in`), not by a foreign-key trigger per row:
-- on PostgreSQL the two row-level checks were half the cost of inserting a post (renkei-bench measured
-- 4.6 µs a row for the row and its key, 9–11 with the unique indexes, 19–22 with the two foreign keys).
-- What those keys also guarded, that no post outlives its group or author, holds because users and groups
-- are never deleted: people are disabled and groups closed, and their records kept. The triggers below
-- make that a rule of the database rather than a habit of the code. (SQLite keeps its foreign keys: its
-- checks are index probes, not triggers, and the same triggers.)
ALTER TABLE posts DROP CONSTRAINT posts_group_id_fkey, DROP CONSTRAINT posts_author_id_fkey;

CREATE FUNCTION never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% are never deleted: disable a user, close a group', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER users_never_deleted BEFORE DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION never_deleted();
CREATE TRIGGER groups_never_deleted BEFORE DELETE OR TRUNCATE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION never_deleted();

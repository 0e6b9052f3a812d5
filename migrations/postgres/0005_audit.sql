-- The append-only, hash-chained audit log (MHLW guideline 6.0, ch. 17: the access log). Each entry carries
-- the hash of the previous one; a trigger rejects UPDATE, DELETE and TRUNCATE. Never post bodies,
-- passwords, tokens or patient identifiers: ids and action details only.

CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor_id       UUID,
    action         TEXT   NOT NULL,
    group_id       UUID,
    target_user_id UUID,
    client_addr    TEXT,
    session_id     UUID,
    details        TEXT   NOT NULL,
    prev_hash      TEXT   NOT NULL,
    hash           TEXT   NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at);
CREATE INDEX audit_log_group ON audit_log (group_id, at);
CREATE INDEX audit_log_action ON audit_log (action, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

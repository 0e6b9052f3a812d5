-- The append-only, hash-chained audit log (MHLW guideline 6.0, ch. 17: the access log). Each entry carries
-- the hash of the previous one; triggers reject UPDATE and DELETE. Never post bodies, passwords, tokens or
-- patient identifiers: ids and action details only.

CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY NOT NULL,
    at             BIGINT NOT NULL,
    actor_id       BLOB,
    action         TEXT   NOT NULL,
    group_id       BLOB,
    target_user_id BLOB,
    client_addr    TEXT,
    session_id     BLOB,
    details        TEXT   NOT NULL,
    prev_hash      TEXT   NOT NULL,
    hash           TEXT   NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at);
CREATE INDEX audit_log_group ON audit_log (group_id, at);
CREATE INDEX audit_log_action ON audit_log (action, at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

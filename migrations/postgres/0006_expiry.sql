-- Sessions closed by the housekeeping sweep once past their absolute expiry or idle timeout (each with a
-- `session_expired` audit entry), so the access log shows how every session ended.
ALTER TABLE sessions ADD COLUMN expired_at BIGINT;
CREATE INDEX sessions_open ON sessions (expires_at) WHERE revoked_at IS NULL AND expired_at IS NULL;

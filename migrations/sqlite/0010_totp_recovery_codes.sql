-- One-time recovery codes for a lost authenticator, shown once at TOTP enrolment and stored as SHA-256
-- hashes (each code carries 80 random bits, so the hash cannot be searched backwards).
CREATE TABLE totp_recovery_codes (
    code_hash  TEXT   PRIMARY KEY NOT NULL,
    user_id    BLOB   NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX totp_recovery_codes_user ON totp_recovery_codes (user_id);

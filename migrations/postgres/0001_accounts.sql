-- Accounts, sessions, setup tokens and failed-login records.
-- Times are BIGINT microseconds since the Unix epoch (UTC) in both dialects, so comparisons mean the same
-- thing on SQLite and PostgreSQL. Ids are UUIDs (BLOB in SQLite, uuid here).

CREATE TABLE users (
    id                   UUID    PRIMARY KEY,
    login                TEXT    NOT NULL UNIQUE,
    display_name         TEXT    NOT NULL,
    profession           TEXT    NOT NULL,
    organisation         TEXT    NOT NULL,
    phone                TEXT,
    role                 TEXT    NOT NULL CHECK (role IN ('member', 'admin')),
    status               TEXT    NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash        TEXT,
    must_change_password BOOLEAN NOT NULL,
    totp_secret          TEXT,
    totp_pending_secret  TEXT,
    totp_last_step       BIGINT,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);

CREATE TABLE setup_tokens (
    token_hash  TEXT   PRIMARY KEY,
    user_id     UUID   NOT NULL REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX setup_tokens_user ON setup_tokens (user_id);

CREATE TABLE sessions (
    id           UUID   PRIMARY KEY,
    user_id      UUID   NOT NULL REFERENCES users (id),
    token_hash   TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    client_addr  TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_failures (
    id          BIGSERIAL PRIMARY KEY,
    login       TEXT      NOT NULL,
    client_addr TEXT      NOT NULL,
    at          BIGINT    NOT NULL
);
CREATE INDEX login_failures_login ON login_failures (login, at);
CREATE INDEX login_failures_addr ON login_failures (client_addr, at);

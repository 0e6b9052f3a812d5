-- Notifications (Web Push, e-mail): each member's settings and watermark, their browsers' subscriptions,
-- the durable outbox every node sends from (a row is claimed before it is sent, so it goes out once), and
-- the server's VAPID public key, so that nodes started with different key files are refused.
CREATE TABLE notification_settings (
    user_id          UUID     PRIMARY KEY NOT NULL REFERENCES users (id),
    push             BOOLEAN NOT NULL,
    email            BOOLEAN NOT NULL,
    email_address    TEXT,
    digest_minutes   INTEGER NOT NULL,
    -- Posts created at or before this instant have been counted in a notification (or were there when
    -- notifications were turned on).
    noticed_through  BIGINT  NOT NULL,
    last_sent_at     BIGINT,
    updated_at       BIGINT  NOT NULL
);

CREATE TABLE push_subscriptions (
    id            UUID    PRIMARY KEY NOT NULL,
    user_id       UUID    NOT NULL REFERENCES users (id),
    endpoint      TEXT   NOT NULL UNIQUE,
    p256dh        TEXT   NOT NULL,
    auth          TEXT   NOT NULL,
    device        TEXT,
    created_at    BIGINT NOT NULL,
    last_sent_at  BIGINT
);
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

CREATE TABLE notification_outbox (
    id               UUID     PRIMARY KEY NOT NULL,
    user_id          UUID     NOT NULL REFERENCES users (id),
    channel          TEXT    NOT NULL CHECK (channel IN ('push', 'email')),
    subscription_id  UUID     REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    email_address    TEXT,
    posts            INTEGER NOT NULL,
    question         BOOLEAN NOT NULL,
    created_at       BIGINT  NOT NULL,
    next_attempt_at  BIGINT  NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_until    BIGINT,
    sent_at          BIGINT,
    failed_at        BIGINT,
    last_error       TEXT
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

CREATE TABLE vapid_key (
    id          INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    public_key  TEXT    NOT NULL
);

-- Posts: a gap-free sequence per group (groups.last_seq, advanced in the transaction that inserts the
-- post), every version kept, seen marks, read positions.

ALTER TABLE groups ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE posts (
    id                  UUID    PRIMARY KEY,
    group_id            UUID    NOT NULL REFERENCES groups (id),
    seq                 BIGINT  NOT NULL,
    author_id           UUID    NOT NULL REFERENCES users (id),
    author_name         TEXT    NOT NULL,
    author_profession   TEXT    NOT NULL,
    author_organisation TEXT    NOT NULL,
    kind                TEXT    NOT NULL CHECK (kind IN ('update', 'treatment_question', 'care_plan_question')),
    body                TEXT,
    reply_to            BIGINT,
    client_msg_id       TEXT    NOT NULL,
    consent_version     INTEGER,
    created_at          BIGINT  NOT NULL,
    version             INTEGER NOT NULL,
    edited_at           BIGINT,
    deleted_at          BIGINT,
    UNIQUE (group_id, seq),
    UNIQUE (author_id, client_msg_id)
);

CREATE TABLE post_versions (
    post_id  UUID    NOT NULL REFERENCES posts (id),
    version  INTEGER NOT NULL,
    body     TEXT,
    at       BIGINT  NOT NULL,
    PRIMARY KEY (post_id, version)
);

CREATE TABLE post_seen (
    post_id  UUID   NOT NULL REFERENCES posts (id),
    user_id  UUID   NOT NULL REFERENCES users (id),
    at       BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id)
);

CREATE TABLE read_marks (
    group_id      UUID   NOT NULL REFERENCES groups (id),
    user_id       UUID   NOT NULL REFERENCES users (id),
    last_read_seq BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

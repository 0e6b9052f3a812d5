-- no-transaction
-- The attending physician's care policy (診療方針) is a post kind of its own, with its record as JSON
-- beside the text (the cautions for care). SQLite cannot alter a CHECK constraint, so the posts table is
-- rebuilt (https://sqlite.org/lang_altertable.html, "making other kinds of table schema changes"): with
-- foreign keys off while the table is copied and renamed.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE posts_rebuilt (
    id                  BLOB    PRIMARY KEY NOT NULL,
    group_id            BLOB    NOT NULL REFERENCES groups (id),
    seq                 BIGINT  NOT NULL,
    author_id           BLOB    NOT NULL REFERENCES users (id),
    author_name         TEXT    NOT NULL,
    author_profession   TEXT    NOT NULL,
    author_organisation TEXT    NOT NULL,
    kind                TEXT    NOT NULL
        CHECK (kind IN ('update', 'treatment_question', 'care_plan_question', 'care_policy')),
    body                TEXT,
    reply_to            BIGINT,
    client_msg_id       TEXT    NOT NULL,
    consent_version     INTEGER,
    created_at          BIGINT  NOT NULL,
    version             INTEGER NOT NULL,
    edited_at           BIGINT,
    deleted_at          BIGINT,
    attachments         TEXT,
    care_policy         TEXT,
    UNIQUE (group_id, seq),
    UNIQUE (author_id, client_msg_id)
);
INSERT INTO posts_rebuilt (id, group_id, seq, author_id, author_name, author_profession, author_organisation,
    kind, body, reply_to, client_msg_id, consent_version, created_at, version, edited_at, deleted_at, attachments)
SELECT id, group_id, seq, author_id, author_name, author_profession, author_organisation, kind, body, reply_to,
    client_msg_id, consent_version, created_at, version, edited_at, deleted_at, attachments FROM posts;
DROP TABLE posts;
ALTER TABLE posts_rebuilt RENAME TO posts;
ALTER TABLE post_versions ADD COLUMN care_policy TEXT;
COMMIT;
PRAGMA foreign_keys = ON;

-- Attachments: files uploaded to a patient group, then referenced by a post. Kept in the database (see
-- docs/decisions/0005-attachments-in-the-database.md): one backup, one transaction, every node sees them.
-- `post_seq` is set by the commit of the first post that references the file; a file no post references
-- within a day is removed by the housekeeping sweep.
CREATE TABLE attachments (
    id           UUID    PRIMARY KEY,
    group_id     UUID    NOT NULL REFERENCES groups (id),
    uploader_id  UUID    NOT NULL REFERENCES users (id),
    kind         TEXT    NOT NULL CHECK (kind IN ('jpeg', 'png', 'webp', 'pdf')),
    name         TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    width        INTEGER,
    height       INTEGER,
    created_at   BIGINT  NOT NULL,
    post_seq     BIGINT
);
CREATE INDEX attachments_unreferenced ON attachments (created_at) WHERE post_seq IS NULL;
-- The bytes, apart from the row the group commit updates (`post_seq`): docs/decisions/0005.
CREATE TABLE attachment_files (
    attachment_id    UUID    PRIMARY KEY REFERENCES attachments (id) ON DELETE CASCADE,
    sha256           BYTEA   NOT NULL,
    content          BYTEA   NOT NULL,
    thumbnail        BYTEA,
    thumbnail_sha256 BYTEA
);
-- What a post shares, as a JSON array of its attachments' descriptions (NULL for none): read with the post,
-- so a page of history costs no second query.
ALTER TABLE posts ADD COLUMN attachments TEXT;
-- Each version of an edited post keeps the files it shared (an edit may add or remove files).
ALTER TABLE post_versions ADD COLUMN attachments TEXT;

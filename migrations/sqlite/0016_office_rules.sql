-- Each office's own rules (rule 7), kept by administrators: professions of the office that may export a
-- timeline, networks its members may download files from (JSON arrays), and its retention override.
CREATE TABLE office_rules (
    organisation              TEXT    PRIMARY KEY NOT NULL,
    timeline_export           TEXT    NOT NULL,
    attachment_networks       TEXT    NOT NULL,
    purge_archived_after_days INTEGER,
    updated_by                BLOB    NOT NULL REFERENCES users (id),
    updated_at                BIGINT  NOT NULL
);

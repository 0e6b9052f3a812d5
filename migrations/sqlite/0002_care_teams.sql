-- Care teams: groups (patient and community), versioned consent, membership episodes.
-- A membership row is one episode (invited → active → left/removed, or declined/expired/cancelled); a
-- re-invitation starts a new row, so the whole history stays. At most one current (invited or active)
-- episode per user and group.

CREATE TABLE groups (
    id                     BLOB    PRIMARY KEY NOT NULL,
    kind                   TEXT    NOT NULL CHECK (kind IN ('patient', 'community')),
    label                  TEXT    NOT NULL,
    status                 TEXT    NOT NULL CHECK (status IN ('active', 'read_only', 'archived')),
    attending_physician_id BLOB    REFERENCES users (id),
    patient_full_name      TEXT,
    patient_kana           TEXT,
    patient_number         TEXT,
    notes                  TEXT,
    handover_to_id         BLOB    REFERENCES users (id),
    created_by             BLOB    NOT NULL REFERENCES users (id),
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL
);

CREATE TABLE consents (
    group_id              BLOB    NOT NULL REFERENCES groups (id),
    version               INTEGER NOT NULL,
    kind                  TEXT    NOT NULL CHECK (kind IN ('recorded', 'amended', 'withdrawn')),
    consenter_kind        TEXT    NOT NULL,
    consenter_name        TEXT    NOT NULL,
    consenter_relationship TEXT,
    method                TEXT    NOT NULL,
    obtained_on           TEXT    NOT NULL,
    scope                 TEXT    NOT NULL,
    recorded_by           BLOB    NOT NULL REFERENCES users (id),
    recorded_at           BIGINT  NOT NULL,
    PRIMARY KEY (group_id, version)
);

CREATE TABLE memberships (
    id          BLOB    PRIMARY KEY NOT NULL,
    group_id    BLOB    NOT NULL REFERENCES groups (id),
    user_id     BLOB    NOT NULL REFERENCES users (id),
    role        TEXT    NOT NULL CHECK (role IN ('attending_physician', 'member')),
    state       TEXT    NOT NULL CHECK (state IN ('invited', 'active', 'declined', 'expired', 'cancelled', 'left', 'removed')),
    invited_by  BLOB    REFERENCES users (id),
    invited_at  BIGINT  NOT NULL,
    expires_at  BIGINT,
    joined_at   BIGINT,
    ended_at    BIGINT
);
CREATE UNIQUE INDEX memberships_current ON memberships (group_id, user_id) WHERE state IN ('invited', 'active');
CREATE INDEX memberships_user ON memberships (user_id, state);
CREATE INDEX memberships_group ON memberships (group_id, state);

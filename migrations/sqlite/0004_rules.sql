-- The ICT collaboration rules: members' availability hours (rule 5), and the record of every rule
-- override (rule 6's explicit "not an emergency"), with the matched terms but never the post body.

ALTER TABLE users ADD COLUMN availability TEXT;

CREATE TABLE rule_overrides (
    id       BLOB   PRIMARY KEY NOT NULL,
    rule     TEXT   NOT NULL,
    user_id  BLOB   NOT NULL REFERENCES users (id),
    group_id BLOB   NOT NULL REFERENCES groups (id),
    post_id  BLOB   REFERENCES posts (id),
    matched  TEXT   NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX rule_overrides_at ON rule_overrides (at);

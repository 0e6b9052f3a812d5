-- The ICT collaboration rules: members' availability hours (rule 5). Rule overrides are audit entries.

ALTER TABLE users ADD COLUMN availability TEXT;

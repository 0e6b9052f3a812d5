-- The attending physician's care policy (診療方針) is a post kind of its own, with its record as JSON
-- beside the text (the cautions for care).
ALTER TABLE posts DROP CONSTRAINT posts_kind_check,
    ADD CONSTRAINT posts_kind_check
        CHECK (kind IN ('update', 'treatment_question', 'care_plan_question', 'care_policy')),
    ADD COLUMN care_policy TEXT;
ALTER TABLE post_versions ADD COLUMN care_policy TEXT;

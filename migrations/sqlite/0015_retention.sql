-- Retention (rule 7): when a group was archived, and when its content was purged. A purged group stays as
-- a tombstone — its id, dates and memberships, its label replaced by its neutral reference — while its
-- posts, their versions, marks and files, its patient identifiers and its consenters' names are deleted.
-- Groups archived before this migration count from their last change.
ALTER TABLE groups ADD COLUMN archived_at BIGINT;
ALTER TABLE groups ADD COLUMN purged_at BIGINT;
UPDATE groups SET archived_at = updated_at WHERE status = 'archived';

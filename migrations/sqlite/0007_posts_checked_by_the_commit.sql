-- Users and groups are never deleted: people are disabled and groups closed, and their records kept.
-- On PostgreSQL the posts' foreign keys to them were dropped for the group commit's speed (see the
-- PostgreSQL migration of the same name); SQLite keeps them, and both refuse deletion the same way.
CREATE TRIGGER users_never_deleted BEFORE DELETE ON users
BEGIN
    SELECT RAISE(ABORT, 'users are never deleted: disable a user, close a group');
END;

CREATE TRIGGER groups_never_deleted BEFORE DELETE ON groups
BEGIN
    SELECT RAISE(ABORT, 'groups are never deleted: disable a user, close a group');
END;

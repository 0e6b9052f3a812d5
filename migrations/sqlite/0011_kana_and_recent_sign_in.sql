-- The reading of a professional's name (フリガナ), so a physician finds 「さとう」 in the directory as they
-- would in a paper roster; optional, set by the administrator who registers them.
ALTER TABLE users ADD COLUMN kana TEXT;
-- When the session's owner last proved who they are (the login itself, or a re-entered password): an
-- administrator's action that changes accounts, groups or exports needs a recent one.
ALTER TABLE sessions ADD COLUMN authenticated_at BIGINT;

-- A login attempt is recorded as a failure before its password is checked (so a concurrent burst is
-- counted one by one) and stays `pending` until it has failed: the back-off per address counts settled
-- failures only, so colleagues behind one clinic address logging in at the same moment do not slow
-- each other down.
ALTER TABLE login_failures ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;

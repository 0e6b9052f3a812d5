-- The keyed chain: each entry's HMAC-SHA256 (over its hash) under a key kept outside the database, so
-- that someone who can write the database but not read the key cannot forge a correctly hashed entry.
-- Entries written before the key existed have none.
ALTER TABLE audit_log ADD COLUMN mac TEXT;
-- Which key seals this log (a fingerprint, never the key): the first server to start registers its key,
-- and a node or command with another key is refused instead of sealing entries the others cannot check.
CREATE TABLE audit_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);

-- The audit chain becomes keyed (issue 10 item 3). Entries appended from now on carry an
-- HMAC-SHA256 under a random audit key (`version` 2); entries written before keep their
-- plain SHA-256 hash (`version` 1) and keep verifying, because rows are immutable and are
-- never re-chained. The first keyed entry's MAC covers the last plain hash, so editing any
-- older entry breaks the keyed chain too.
ALTER TABLE audit ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- The one audit key, wrapped by a key-encryption key like a family's data key (rewrapped by
-- `keys rotate --new-kek`). `first_seq` is the first entry under the key; it is bound into
-- the wrapping, so moving it (to pass off keyed entries as plain ones) breaks the key.
CREATE TABLE audit_key (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    kek_id       INTEGER NOT NULL REFERENCES keks(id),
    wrapped_key  BLOB    NOT NULL,
    first_seq    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Audit entries are append-only: erasure keeps them (they hold references and codes only).
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only: UPDATE is refused');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only: DELETE is refused');
END;

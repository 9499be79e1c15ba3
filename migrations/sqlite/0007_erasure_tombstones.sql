-- Erasure that erases (issue 10 item 1).
--
-- The outbox gets the status 'cancelled' (a pending message of an erased family is never
-- sent) and `body_dropped_at`: erasure drops the subjects and bodies of the family's
-- messages, and the sweep drops every sent body older than `mail.keep_sent`, keeping the
-- metadata row (kind, times, status, team addresses). SQLite cannot change a CHECK in
-- place, so the outbox is rebuilt. Migrations run inside a transaction with foreign keys
-- on, where dropping a parent table would cascade: so its attachments table is rebuilt
-- alongside, pointing at the new outbox before the old one is dropped, and the renames
-- carry the reference over.
--
-- An erased family keeps its row as a tombstone (reference, status 'erased', erased_at,
-- erase_reason). Its NOT NULL plan columns are overwritten with one constant placeholder,
-- the same for every erased family, so they tell nothing (rebuilding `families` would
-- cascade into every table that references it).
--
-- Exports get `expired_at`: the sweep deletes export folders in `state_dir/exports` after
-- `export.keep`, and erasure lists the exports not yet expired that may hold the family.

CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY,
    key              TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    family_ref       TEXT,
    recipients       TEXT    NOT NULL,                 -- JSON array of addresses (teams, not families)
    cc               TEXT    NOT NULL DEFAULT '[]',
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,                 -- '' once dropped
    created_at       INTEGER NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    claimed_until    INTEGER,
    last_error       TEXT,
    sent_at          INTEGER,
    body_dropped_at  INTEGER
);
INSERT INTO outbox_new (id, key, kind, family_ref, recipients, cc, subject, body, created_at,
    status, attempts, next_attempt_at, claimed_until, last_error, sent_at)
SELECT id, key, kind, family_ref, recipients, cc, subject, body, created_at, status, attempts,
    next_attempt_at, claimed_until, last_error, sent_at
FROM outbox;

CREATE TABLE outbox_attachments_new (
    outbox_id     INTEGER NOT NULL REFERENCES outbox_new(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    filename      TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    bytes         BLOB    NOT NULL,                    -- only ever age-encrypted content
    PRIMARY KEY (outbox_id, position)
);
INSERT INTO outbox_attachments_new (outbox_id, position, filename, content_type, bytes)
SELECT outbox_id, position, filename, content_type, bytes FROM outbox_attachments;

DROP TABLE outbox_attachments;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
ALTER TABLE outbox_attachments_new RENAME TO outbox_attachments;
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_family ON outbox (family_ref);
CREATE INDEX outbox_sent_body ON outbox (sent_at) WHERE status = 'sent' AND body_dropped_at IS NULL;

ALTER TABLE exports ADD COLUMN expired_at INTEGER;
CREATE INDEX exports_live ON exports (created_at) WHERE expired_at IS NULL;

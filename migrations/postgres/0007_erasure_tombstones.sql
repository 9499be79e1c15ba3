-- Erasure that erases (issue 10 item 1); the PostgreSQL twin of migrations/sqlite/0007.
--
-- The outbox gets the status 'cancelled' (a pending message of an erased family is never
-- sent) and `body_dropped_at`: erasure drops the subjects and bodies of the family's
-- messages, and the sweep drops every sent body older than `mail.keep_sent`, keeping the
-- metadata row (kind, times, status, team addresses). PostgreSQL changes the CHECK in place
-- (SQLite has to rebuild the table).
--
-- Exports get `expired_at`: the sweep deletes export folders in `state_dir/exports` after
-- `export.keep`, and erasure lists the exports not yet expired that may hold the family.

ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'cancelled'));
ALTER TABLE outbox ADD COLUMN body_dropped_at BIGINT;
CREATE INDEX outbox_family ON outbox (family_ref);
CREATE INDEX outbox_sent_body ON outbox (sent_at) WHERE status = 'sent' AND body_dropped_at IS NULL;

ALTER TABLE exports ADD COLUMN expired_at BIGINT;
CREATE INDEX exports_live ON exports (created_at) WHERE expired_at IS NULL;

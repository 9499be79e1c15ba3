-- The PostgreSQL twin of migrations/sqlite/0008: the audit chain becomes keyed (issue 10
-- item 3). Entries appended from now on carry an HMAC-SHA256 under a random audit key
-- (`version` 2); entries written before keep their plain SHA-256 hash (`version` 1) and keep
-- verifying, because rows are immutable and are never re-chained. The first keyed entry's
-- MAC covers the last plain hash, so editing any older entry breaks the keyed chain too.
ALTER TABLE audit ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- The one audit key, wrapped by a key-encryption key like a family's data key (rewrapped by
-- `keys rotate --new-kek`). `first_seq` is the first entry under the key; it is bound into
-- the wrapping, so moving it (to pass off keyed entries as plain ones) breaks the key.
CREATE TABLE audit_key (
    id           BIGINT  PRIMARY KEY CHECK (id = 1),
    kek_id       BIGINT  NOT NULL REFERENCES keks(id) DEFERRABLE,
    wrapped_key  BYTEA   NOT NULL,
    first_seq    BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL
);

-- Audit entries are append-only: erasure keeps them (they hold references and codes only).
-- SQLite's RAISE(ABORT) triggers, in PL/pgSQL; TRUNCATE is refused too.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % is refused', TG_OP;
END
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

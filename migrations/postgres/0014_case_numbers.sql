-- The PostgreSQL twin of migrations/sqlite/0014 (BIGINT, BYTEA, deferrable keys).
-- The team's own case number for a family (the municipality's file number), sealed with the
-- family's key, one per municipality: after a move each team sees only its own.
CREATE TABLE case_numbers (
    family_id      BIGINT NOT NULL REFERENCES families(id) ON DELETE CASCADE DEFERRABLE,
    municipality   TEXT   NOT NULL,
    sealed_number  BYTEA  NOT NULL,
    set_at         BIGINT NOT NULL,
    PRIMARY KEY (family_id, municipality)
);

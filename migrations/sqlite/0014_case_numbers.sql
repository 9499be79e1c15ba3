-- The team's own case number for a family: the municipality's file number in its own case
-- system, so a worker finds the family there. Treated as personal data: sealed with the
-- family's key, bound to the municipality it belongs to. Kept per municipality, so after a
-- move each team sees its own number (the receiving team sets its own), never the other's.
CREATE TABLE case_numbers (
    family_id      INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    municipality   TEXT    NOT NULL,
    sealed_number  BLOB    NOT NULL,
    set_at         INTEGER NOT NULL,
    PRIMARY KEY (family_id, municipality)
);

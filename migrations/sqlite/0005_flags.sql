-- Relapse signals: a flag is a rule that fired for a child (member) or a family, with its
-- lifecycle open -> acknowledged -> resolved. Evidence and notes contain observation values
-- and free text, so they are sealed with the family's data key.
--
-- `subject` is the member reference (or the family reference for family-level flags);
-- a flag is raised at most once per (rule, subject, trigger check-in), and at most one flag
-- per (rule, subject) is open or acknowledged at any time.
CREATE TABLE flags (
    id                  INTEGER PRIMARY KEY,
    family_id           INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    member_id           INTEGER REFERENCES members(id) ON DELETE CASCADE,
    subject             TEXT    NOT NULL,
    rule                TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    severity            TEXT    NOT NULL CHECK (severity IN ('info', 'amber', 'red')),
    trigger_checkin_id  INTEGER NOT NULL REFERENCES checkins(id) ON DELETE CASCADE,
    status              TEXT    NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'acknowledged', 'resolved')),
    raised_at           INTEGER NOT NULL,
    sealed_evidence     BLOB,
    acknowledged_at     INTEGER,
    sealed_ack          BLOB,                          -- who and note
    resolved_at         INTEGER,
    sealed_resolution   BLOB,                          -- who and note
    UNIQUE (rule, subject, trigger_checkin_id)
);
CREATE UNIQUE INDEX flags_one_active ON flags (rule, subject) WHERE status != 'resolved';
CREATE INDEX flags_family ON flags (family_id);
CREATE INDEX flags_unresolved ON flags (severity) WHERE status != 'resolved';

-- A check-in whose every allowed contact attempt failed is stored as `missed` (issue 11
-- item 1), so `checkin list`, the API and exports read it from the status itself.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt the documented way
-- (create, copy, drop, rename). `Store::migrate` runs migrations with foreign keys off, so
-- dropping the old table does not cascade into observations, flags and attempts, and checks
-- every reference afterwards.
CREATE TABLE checkins_rebuilt (
    id              INTEGER PRIMARY KEY,
    ref             TEXT    NOT NULL UNIQUE,
    family_id       INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    wave            INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'recorded', 'missed', 'cancelled', 'lapsed')),
    notice_stage    INTEGER NOT NULL DEFAULT 0,        -- see domain::reminder::Stage
    overdue_count   INTEGER NOT NULL DEFAULT 0,
    last_notice_at  INTEGER,
    next_notice_at  INTEGER,                           -- NULL: nothing more will be sent
    contact_at      INTEGER,                           -- when the contact (attempt) happened
    recorded_at     INTEGER,
    outcome         TEXT CHECK (outcome IN ('reached', 'not_reached', 'declined')),
    mode            TEXT CHECK (mode IN ('home_visit', 'phone', 'video', 'office', 'walk')),
    sealed_record   BLOB,                              -- family observations and notes
    attempts        INTEGER NOT NULL DEFAULT 0,
    retry_due_at    INTEGER,
    missed_at       INTEGER,
    UNIQUE (family_id, wave)
);
INSERT INTO checkins_rebuilt (id, ref, family_id, wave, due_at, status, notice_stage,
    overdue_count, last_notice_at, next_notice_at, contact_at, recorded_at, outcome, mode,
    sealed_record, attempts, retry_due_at, missed_at)
SELECT id, ref, family_id, wave, due_at,
    CASE WHEN missed_at IS NOT NULL THEN 'missed' ELSE status END, notice_stage,
    overdue_count, last_notice_at, next_notice_at, contact_at, recorded_at, outcome, mode,
    sealed_record, attempts, retry_due_at, missed_at
FROM checkins;
DROP TABLE checkins;
ALTER TABLE checkins_rebuilt RENAME TO checkins;
CREATE INDEX checkins_next_notice ON checkins (next_notice_at) WHERE status = 'open';
CREATE INDEX checkins_open_due ON checkins (due_at) WHERE status = 'open';
CREATE INDEX checkins_family_open ON checkins (family_id, due_at) WHERE status = 'open';

-- A plan that ended at its term asks the team for its evaluation once, and reminds once
-- (issue 11 item 6): when each went out.
ALTER TABLE families ADD COLUMN evaluation_asked_at INTEGER;
ALTER TABLE families ADD COLUMN evaluation_reminded_at INTEGER;

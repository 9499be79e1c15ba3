-- Contact attempts: a check-in stays open after a `not_reached` attempt and is tried again
-- after `reminders.retry_after`, up to `reminders.max_attempts`; then it is missed (recorded
-- as not_reached, with `missed_at`) and escalated. Every attempt is kept: when, how, and who
-- tried (sealed with the family's key, like every other free text).
CREATE TABLE checkin_attempts (
    id              INTEGER PRIMARY KEY,
    checkin_id      INTEGER NOT NULL REFERENCES checkins(id) ON DELETE CASCADE,
    number          INTEGER NOT NULL,                  -- 1-based per check-in
    at              INTEGER NOT NULL,                  -- when the attempt happened
    recorded_at     INTEGER NOT NULL,
    outcome         TEXT    NOT NULL CHECK (outcome IN ('reached', 'not_reached', 'declined')),
    mode            TEXT    NOT NULL CHECK (mode IN ('home_visit', 'phone', 'video', 'office', 'walk')),
    sealed_details  BLOB,                              -- who tried, notes; NULL once erased
    UNIQUE (checkin_id, number)
);

ALTER TABLE checkins ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- After a failed attempt: when the next one is due (reminders run from here, not due_at).
ALTER TABLE checkins ADD COLUMN retry_due_at INTEGER;
-- Set when the last allowed attempt failed: the check-in is `missed`.
ALTER TABLE checkins ADD COLUMN missed_at INTEGER;

-- `out_of_sight` is a time rule: counted from the last reached contact, or enrolment.
ALTER TABLE families ADD COLUMN last_reached_at INTEGER;
UPDATE families SET last_reached_at =
    (SELECT MAX(c.contact_at) FROM checkins c
     WHERE c.family_id = families.id AND c.status = 'recorded' AND c.outcome = 'reached');
CREATE INDEX families_in_sight ON families (COALESCE(last_reached_at, enrolled_at))
    WHERE status = 'running';

-- Red signals followed through: an unacknowledged red flag is alerted again every working
-- day and escalated to the coordinator after `flags.red_escalate_after` working days.
ALTER TABLE flags ADD COLUMN alerted_at INTEGER;
ALTER TABLE flags ADD COLUMN escalated_at INTEGER;

-- A move's acknowledgement names the new case director; until then the family has none.
-- Existing handovers count as named (their families keep the case director they had).
ALTER TABLE handovers ADD COLUMN director_named INTEGER NOT NULL DEFAULT 1;

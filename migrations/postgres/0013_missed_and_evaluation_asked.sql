-- A check-in whose every allowed contact attempt failed is stored as `missed` (issue 11
-- item 1), so `checkin list`, the API and exports read it from the status itself.
ALTER TABLE checkins DROP CONSTRAINT checkins_status_check;
ALTER TABLE checkins ADD CONSTRAINT checkins_status_check
    CHECK (status IN ('open', 'recorded', 'missed', 'cancelled', 'lapsed'));
UPDATE checkins SET status = 'missed' WHERE missed_at IS NOT NULL;

-- A plan that ended at its term asks the team for its evaluation once, and reminds once
-- (issue 11 item 6): when each went out.
ALTER TABLE families ADD COLUMN evaluation_asked_at BIGINT;
ALTER TABLE families ADD COLUMN evaluation_reminded_at BIGINT;

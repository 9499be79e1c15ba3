-- The family record keeps up: members join and leave, the ex-partner is a party of its own,
-- and a safety plan has a review date the sweep reminds.

-- A member who left the household (a child placed elsewhere, an adult moved out) is kept for
-- history but no longer followed: no observations after `left_at`. `left_reason` is a code.
ALTER TABLE members ADD COLUMN left_at INTEGER;
ALTER TABLE members ADD COLUMN left_reason TEXT;

-- The ex-partner or perpetrator: never contacted, never in a mail, never counted as an adult
-- or child in rules or exports, so kept out of `members` altogether. Name, measure kind and
-- dates are sealed; only the instant a court measure ends is plain, because the sweep must
-- signal it `flags.measure_notice` ahead without the family's key. `measure_noticed_at` makes
-- that signal happen once.
CREATE TABLE ex_partners (
    id                  INTEGER PRIMARY KEY,
    family_id           INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    ref                 TEXT    NOT NULL UNIQUE,
    sealed_details      BLOB,
    measure_ends_at     INTEGER,
    measure_noticed_at  INTEGER,
    added_at            INTEGER NOT NULL,
    left_at             INTEGER
);
CREATE INDEX ex_partners_family ON ex_partners (family_id);
CREATE INDEX ex_partners_measure ON ex_partners (measure_ends_at)
    WHERE measure_noticed_at IS NULL AND measure_ends_at IS NOT NULL;

-- The safety plan (veiligheidsplan): its text is sealed, its review date plain (the sweep
-- reminds the team then, once per review date).
ALTER TABLE families ADD COLUMN sealed_safety_plan BLOB;
ALTER TABLE families ADD COLUMN safety_plan_review_at INTEGER;
ALTER TABLE families ADD COLUMN safety_plan_reminded_at INTEGER;
CREATE INDEX families_safety_review ON families (safety_plan_review_at)
    WHERE safety_plan_reminded_at IS NULL AND safety_plan_review_at IS NOT NULL;

-- Referrals for stressors (schuldhulp, ggz …) and whether they started. Nothing is needed
-- plain for signals, so kind, status and detail are all sealed; a later row for the same
-- kind is its current state (the history is kept).
CREATE TABLE referrals (
    id              INTEGER PRIMARY KEY,
    family_id       INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    recorded_at     INTEGER NOT NULL,
    sealed_details  BLOB    NOT NULL
);
CREATE INDEX referrals_family ON referrals (family_id, id);

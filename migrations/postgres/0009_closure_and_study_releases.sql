-- Closing on purpose (issue 11 item 6): the short evaluation recorded when a plan ends
-- (early, or at its term), and who approved an early closure while a red flag was open.
-- The family's own view and the approver are personal data: sealed with the family's key.
CREATE TABLE evaluations (
    family_id        BIGINT PRIMARY KEY REFERENCES families(id) ON DELETE CASCADE DEFERRABLE,
    recorded_at      BIGINT NOT NULL,
    safety_improved  TEXT    NOT NULL CHECK (safety_improved IN ('yes', 'partly', 'no')),
    professionals    BIGINT NOT NULL CHECK (professionals BETWEEN 0 AND 50),
    sealed_view      BYTEA                               -- the family's own view (free text)
);
ALTER TABLE families ADD COLUMN sealed_close_approval BYTEA;

-- What a study has been given so far (issue 10 item 6), so that later exports of the
-- study can be checked for k over the union of everything released to it: the frozen
-- generalisation and, per child pseudonym, its released signature. Sealed with the
-- study's own key (the associated data names the study); no reference, no personal data.
CREATE TABLE export_study_releases (
    study         TEXT    PRIMARY KEY REFERENCES export_studies(code) DEFERRABLE,
    sealed_state  BYTEA    NOT NULL,
    updated_at    BIGINT NOT NULL
);

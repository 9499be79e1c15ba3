-- Research exports (issue 6): every export is recorded (who, when, parameters, file hashes;
-- never the pseudonym key), and each study's pseudonym key is kept sealed: wrapped under a
-- key-encryption key like a family's data key, with `study:CODE` as associated data.

CREATE TABLE export_studies (
    code         TEXT    PRIMARY KEY,                 -- a lowercase code such as cohort2027
    kek_id       BIGINT NOT NULL REFERENCES keks(id) DEFERRABLE,
    wrapped_key  BYTEA    NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE exports (
    id             TEXT    PRIMARY KEY,               -- X-… reference, safe to log
    created_at     BIGINT NOT NULL,
    actor          TEXT    NOT NULL,                  -- operator | T-… token id
    study          TEXT,                              -- NULL: a one-off key, never stored
    parameters     TEXT    NOT NULL,                  -- JSON: k, window, generalisation
    k_requested    BIGINT NOT NULL,
    k_achieved     BIGINT NOT NULL,
    children_out   BIGINT NOT NULL,
    rows_out       BIGINT NOT NULL,
    files          TEXT    NOT NULL                   -- JSON: file name -> SHA-256 (hex)
);
CREATE INDEX exports_study ON exports (study);

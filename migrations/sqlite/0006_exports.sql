-- Research exports (issue 6): every export is recorded (who, when, parameters, file hashes;
-- never the pseudonym key), and each study's pseudonym key is kept sealed: wrapped under a
-- key-encryption key like a family's data key, with `study:CODE` as associated data.

CREATE TABLE export_studies (
    code         TEXT    PRIMARY KEY,                 -- a lowercase code such as cohort2027
    kek_id       INTEGER NOT NULL REFERENCES keks(id),
    wrapped_key  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE exports (
    id             TEXT    PRIMARY KEY,               -- X-… reference, safe to log
    created_at     INTEGER NOT NULL,
    actor          TEXT    NOT NULL,                  -- operator | T-… token id
    study          TEXT,                              -- NULL: a one-off key, never stored
    parameters     TEXT    NOT NULL,                  -- JSON: k, window, generalisation
    k_requested    INTEGER NOT NULL,
    k_achieved     INTEGER NOT NULL,
    children_out   INTEGER NOT NULL,
    rows_out       INTEGER NOT NULL,
    files          TEXT    NOT NULL                   -- JSON: file name -> SHA-256 (hex)
);
CREATE INDEX exports_study ON exports (study);

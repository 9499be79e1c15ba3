-- API tokens (stored only as SHA-256 of the secret) and the append-only, hash-chained
-- audit trail (references and codes only, never personal data).

CREATE TABLE api_tokens (
    id            TEXT    PRIMARY KEY,                 -- T-… reference, safe to log
    secret_hash   BLOB    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('municipality', 'researcher', 'admin')),
    municipality  TEXT,
    study         TEXT,
    label         TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER,
    CHECK ((role = 'municipality') = (municipality IS NOT NULL)),
    CHECK ((role = 'researcher') = (study IS NOT NULL))
);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,                      -- operator | system | T-… token id | anonymous
    action      TEXT    NOT NULL,                      -- e.g. family.read, checkin.record, api.denied
    family_ref  TEXT,
    subject     TEXT,                                  -- check-in id, token id, route …
    detail      TEXT,                                  -- a code or status, never free text
    prev_hash   BLOB    NOT NULL,
    hash        BLOB    NOT NULL
);
CREATE INDEX audit_family ON audit (family_ref);

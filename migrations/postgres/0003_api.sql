-- API tokens (stored only as SHA-256 of the secret) and the append-only, hash-chained
-- audit trail (references and codes only, never personal data).

CREATE TABLE api_tokens (
    id            TEXT    PRIMARY KEY,                 -- T-… reference, safe to log
    secret_hash   BYTEA    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('municipality', 'researcher', 'admin')),
    municipality  TEXT,
    study         TEXT,
    label         TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT,
    CHECK ((role = 'municipality') = (municipality IS NOT NULL)),
    CHECK ((role = 'researcher') = (study IS NOT NULL))
);

CREATE TABLE audit (
    seq         BIGINT PRIMARY KEY,                    -- assigned by the hash chain (audit.rs)
    at          BIGINT NOT NULL,
    actor       TEXT    NOT NULL,                      -- operator | system | T-… token id | anonymous
    action      TEXT    NOT NULL,                      -- e.g. family.read, checkin.record, api.denied
    family_ref  TEXT,
    subject     TEXT,                                  -- check-in id, token id, route …
    detail      TEXT,                                  -- a code or status, never free text
    prev_hash   BYTEA    NOT NULL,
    hash        BYTEA    NOT NULL
);
CREATE INDEX audit_family ON audit (family_ref);

-- The aftercare spine: families, members, responsibility over time, check-ins, observations,
-- the outbox, and the wrapped keys. Times are unix seconds (UTC); personal data only as
-- sealed BLOBs (see src/crypto.rs). Kept to SQL that maps 1:1 onto PostgreSQL
-- (INTEGER -> BIGINT, BLOB -> BYTEA, partial indexes, ON CONFLICT DO NOTHING).

-- Key-encryption keys, each stored only as an age file encrypted to the configured recipients.
CREATE TABLE keks (
    id          INTEGER PRIMARY KEY,
    wrapped     BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

CREATE TABLE families (
    id                  INTEGER PRIMARY KEY,
    ref                 TEXT    NOT NULL UNIQUE,
    episode_kind        TEXT    NOT NULL CHECK (episode_kind IN ('shelter_exit', 'case_closed')),
    episode_date        TEXT    NOT NULL,            -- YYYY-MM-DD, the plan start
    plan                TEXT    NOT NULL,
    plan_end            INTEGER NOT NULL,
    status              TEXT    NOT NULL DEFAULT 'running'
                        CHECK (status IN ('running', 'completed', 'closed_early', 'erased')),
    close_reason        TEXT,
    closed_at           INTEGER,
    language            TEXT    NOT NULL,
    interpreter_needed  INTEGER NOT NULL DEFAULT 0,
    enrolled_at         INTEGER NOT NULL,
    kek_id              INTEGER REFERENCES keks(id),
    wrapped_dek         BLOB,                          -- NULL once erased
    sealed_details      BLOB                           -- case director, address, notes, stressors
);

-- Who is responsible, from when. Exactly one open-ended row per family; a move closes the
-- current row and opens the next in one transaction.
CREATE TABLE responsibilities (
    id            INTEGER PRIMARY KEY,
    family_id     INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    municipality  TEXT    NOT NULL,
    valid_from    INTEGER NOT NULL,
    valid_to      INTEGER,
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX responsibilities_family ON responsibilities (family_id, valid_from);
CREATE UNIQUE INDEX responsibilities_one_current ON responsibilities (family_id) WHERE valid_to IS NULL;
CREATE INDEX responsibilities_municipality ON responsibilities (municipality) WHERE valid_to IS NULL;

CREATE TABLE members (
    id              INTEGER PRIMARY KEY,
    family_id       INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    ref             TEXT    NOT NULL UNIQUE,
    role            TEXT    NOT NULL CHECK (role IN ('adult', 'child')),
    position        INTEGER NOT NULL,
    sealed_details  BLOB                               -- name, birth date, phone, email, sex
);
CREATE INDEX members_family ON members (family_id);

CREATE TABLE checkins (
    id              INTEGER PRIMARY KEY,
    ref             TEXT    NOT NULL UNIQUE,
    family_id       INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    wave            INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'recorded', 'cancelled', 'lapsed')),
    notice_stage    INTEGER NOT NULL DEFAULT 0,        -- see domain::reminder::Stage
    overdue_count   INTEGER NOT NULL DEFAULT 0,
    last_notice_at  INTEGER,
    next_notice_at  INTEGER,                           -- NULL: nothing more will be sent
    contact_at      INTEGER,                           -- when the contact (attempt) happened
    recorded_at     INTEGER,
    outcome         TEXT CHECK (outcome IN ('reached', 'not_reached', 'declined')),
    mode            TEXT CHECK (mode IN ('home_visit', 'phone', 'video', 'office', 'walk')),
    sealed_record   BLOB,                              -- family observations and notes
    UNIQUE (family_id, wave)
);
CREATE INDEX checkins_next_notice ON checkins (next_notice_at) WHERE status = 'open';
CREATE INDEX checkins_open_due ON checkins (due_at) WHERE status = 'open';

-- Per-child observations at a check-in; the values are sealed.
CREATE TABLE observations (
    checkin_id     INTEGER NOT NULL REFERENCES checkins(id) ON DELETE CASCADE,
    member_id      INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    sealed_values  BLOB    NOT NULL,
    PRIMARY KEY (checkin_id, member_id)
);

-- Every email, written in the same transaction as its cause. `key` is unique per
-- (kind, subject, due instant), so a cause can never enqueue the same message twice.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    key              TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    family_ref       TEXT,
    recipients       TEXT    NOT NULL,                 -- JSON array of addresses (teams, not families)
    cc               TEXT    NOT NULL DEFAULT '[]',
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    claimed_until    INTEGER,
    last_error       TEXT,
    sent_at          INTEGER
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE outbox_attachments (
    outbox_id     INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    filename      TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    bytes         BLOB    NOT NULL,                    -- only ever age-encrypted content
    PRIMARY KEY (outbox_id, position)
);

-- The sweep's own record: when it ran and what it did (counts only).
CREATE TABLE sweeps (
    id            INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    notices       INTEGER NOT NULL
);

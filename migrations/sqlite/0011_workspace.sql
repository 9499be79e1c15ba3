-- The team workspace: team members who sign in with a mailed one-time link, the links
-- themselves and the browser sessions. Secrets (link tokens, session ids) are stored only
-- as their SHA-256; a member's name and email are never logged and never leave the mail
-- to the member themself.
CREATE TABLE team_members (
    id INTEGER PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    municipality TEXT NOT NULL,
    -- lowercase address, for the sign-in lookup and the sign-in mail
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    removed_at INTEGER
);
CREATE UNIQUE INDEX team_members_active_email ON team_members (email) WHERE removed_at IS NULL;

CREATE TABLE signin_links (
    token_hash BLOB PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES team_members (id),
    -- SHA-256 of the random cookie of the browser that asked for the link
    browser_hash BLOB NOT NULL,
    -- where to go after sign-in (a /team/ path, no personal data)
    next_path TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

CREATE TABLE web_sessions (
    id_hash BLOB PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES team_members (id),
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ended_at INTEGER
);

-- The caseload looks up each family's next open check-in.
CREATE INDEX checkins_family_open ON checkins (family_id, due_at) WHERE status = 'open';

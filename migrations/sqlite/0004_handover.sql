-- Handovers: a family's move to another municipality (kind `move`), or a change of case
-- director within one municipality (kind `reassign`), tracked until the receiving team
-- acknowledges it. The responsibility rows themselves live in `responsibilities`; a move
-- closes the current row at the move instant and opens the next one in the same
-- transaction as the handover row and its outbox messages.
--
-- Status: pending → acknowledged, pending → escalated → acknowledged, and pending/escalated
-- → superseded when a further move is registered before acknowledgement. Times are unix
-- seconds (UTC); who acknowledged is personal data and only stored sealed.
CREATE TABLE handovers (
    id                 INTEGER PRIMARY KEY,
    ref                TEXT    NOT NULL UNIQUE,
    family_id          INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    kind               TEXT    NOT NULL CHECK (kind IN ('move', 'reassign')),
    from_municipality  TEXT    NOT NULL,
    to_municipality    TEXT    NOT NULL,
    effective_at       INTEGER NOT NULL,                -- when responsibility passes
    created_at         INTEGER NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'escalated', 'acknowledged', 'superseded')),
    dossier            TEXT    NOT NULL CHECK (dossier IN ('attached', 'withheld')),
    reminded_at        INTEGER,
    escalated_at       INTEGER,
    acknowledged_at    INTEGER,
    sealed_ack_by      BLOB,                            -- who acknowledged (sealed), optional
    superseded_by      INTEGER REFERENCES handovers(id),
    CHECK (kind = 'reassign' OR from_municipality != to_municipality)
);
CREATE INDEX handovers_family ON handovers (family_id, id);
CREATE INDEX handovers_open ON handovers (status) WHERE status IN ('pending', 'escalated');
-- At most one unacknowledged move per family: a further move supersedes it.
CREATE UNIQUE INDEX handovers_one_open_move ON handovers (family_id)
    WHERE kind = 'move' AND status IN ('pending', 'escalated');

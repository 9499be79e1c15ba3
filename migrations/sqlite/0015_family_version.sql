-- A change mark per family: every change to what a check-in's record reads about its family
-- (the family row, its responsibilities, members, ex-partners, check-ins and observations)
-- moves `version` on. A record reads the family on a read transaction, outside the one
-- writer, and claims the version it read in its write transaction with one conditional
-- UPDATE; a claim that finds another version reads again inside the write transaction.
-- Triggers keep the mark, so no write path (the CLI, another process, a later feature) can
-- forget it.
ALTER TABLE families ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- An UPDATE that sets the version itself (the record's claim) is not counted twice; the
-- trigger's own UPDATE changes the version, so it does not fire again.
CREATE TRIGGER families_version AFTER UPDATE ON families
WHEN NEW.version = OLD.version
BEGIN
    UPDATE families SET version = version + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER responsibilities_version_insert AFTER INSERT ON responsibilities
BEGIN
    UPDATE families SET version = version + 1 WHERE id = NEW.family_id;
END;
CREATE TRIGGER responsibilities_version_update AFTER UPDATE ON responsibilities
BEGIN
    UPDATE families SET version = version + 1 WHERE id IN (OLD.family_id, NEW.family_id);
END;
CREATE TRIGGER responsibilities_version_delete AFTER DELETE ON responsibilities
BEGIN
    UPDATE families SET version = version + 1 WHERE id = OLD.family_id;
END;

CREATE TRIGGER members_version_insert AFTER INSERT ON members
BEGIN
    UPDATE families SET version = version + 1 WHERE id = NEW.family_id;
END;
CREATE TRIGGER members_version_update AFTER UPDATE ON members
BEGIN
    UPDATE families SET version = version + 1 WHERE id IN (OLD.family_id, NEW.family_id);
END;
CREATE TRIGGER members_version_delete AFTER DELETE ON members
BEGIN
    UPDATE families SET version = version + 1 WHERE id = OLD.family_id;
END;

CREATE TRIGGER ex_partners_version_insert AFTER INSERT ON ex_partners
BEGIN
    UPDATE families SET version = version + 1 WHERE id = NEW.family_id;
END;
CREATE TRIGGER ex_partners_version_update AFTER UPDATE ON ex_partners
BEGIN
    UPDATE families SET version = version + 1 WHERE id IN (OLD.family_id, NEW.family_id);
END;
CREATE TRIGGER ex_partners_version_delete AFTER DELETE ON ex_partners
BEGIN
    UPDATE families SET version = version + 1 WHERE id = OLD.family_id;
END;

CREATE TRIGGER checkins_version_insert AFTER INSERT ON checkins
BEGIN
    UPDATE families SET version = version + 1 WHERE id = NEW.family_id;
END;
CREATE TRIGGER checkins_version_update AFTER UPDATE ON checkins
BEGIN
    UPDATE families SET version = version + 1 WHERE id IN (OLD.family_id, NEW.family_id);
END;
CREATE TRIGGER checkins_version_delete AFTER DELETE ON checkins
BEGIN
    UPDATE families SET version = version + 1 WHERE id = OLD.family_id;
END;

CREATE TRIGGER observations_version_insert AFTER INSERT ON observations
BEGIN
    UPDATE families SET version = version + 1
    WHERE id = (SELECT family_id FROM checkins WHERE id = NEW.checkin_id);
END;
CREATE TRIGGER observations_version_update AFTER UPDATE ON observations
BEGIN
    UPDATE families SET version = version + 1
    WHERE id IN (SELECT family_id FROM checkins WHERE id IN (OLD.checkin_id, NEW.checkin_id));
END;
CREATE TRIGGER observations_version_delete AFTER DELETE ON observations
BEGIN
    UPDATE families SET version = version + 1
    WHERE id = (SELECT family_id FROM checkins WHERE id = OLD.checkin_id);
END;

-- The PostgreSQL twin of migrations/sqlite/0015: a change mark per family, moved on by
-- every change to what a check-in's record reads about its family (the family row, its
-- responsibilities, members, ex-partners, check-ins and observations), kept by triggers.
ALTER TABLE families ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- An UPDATE that sets the version itself (the record's claim) is not counted twice.
CREATE FUNCTION families_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version = OLD.version THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER families_version BEFORE UPDATE ON families
    FOR EACH ROW EXECUTE FUNCTION families_version();

-- For the tables with a family_id column.
CREATE FUNCTION family_row_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE families SET version = version + 1 WHERE id = NEW.family_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE families SET version = version + 1 WHERE id = OLD.family_id;
    ELSE
        UPDATE families SET version = version + 1 WHERE id IN (OLD.family_id, NEW.family_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER responsibilities_version AFTER INSERT OR UPDATE OR DELETE ON responsibilities
    FOR EACH ROW EXECUTE FUNCTION family_row_version();
CREATE TRIGGER members_version AFTER INSERT OR UPDATE OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION family_row_version();
CREATE TRIGGER ex_partners_version AFTER INSERT OR UPDATE OR DELETE ON ex_partners
    FOR EACH ROW EXECUTE FUNCTION family_row_version();
CREATE TRIGGER checkins_version AFTER INSERT OR UPDATE OR DELETE ON checkins
    FOR EACH ROW EXECUTE FUNCTION family_row_version();

-- Observations belong to their family through their check-in.
CREATE FUNCTION observation_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE families SET version = version + 1
        WHERE id = (SELECT family_id FROM checkins WHERE id = NEW.checkin_id);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE families SET version = version + 1
        WHERE id = (SELECT family_id FROM checkins WHERE id = OLD.checkin_id);
    ELSE
        UPDATE families SET version = version + 1
        WHERE id IN (SELECT family_id FROM checkins WHERE id IN (OLD.checkin_id, NEW.checkin_id));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER observations_version AFTER INSERT OR UPDATE OR DELETE ON observations
    FOR EACH ROW EXECUTE FUNCTION observation_version();

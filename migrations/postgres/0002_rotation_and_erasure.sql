-- Which public age recipients each key-encryption key is wrapped to, so rotation can add
-- and remove recipients without guessing; a retired KEK keeps its row (for the record) but
-- its wrapped bytes are emptied (crypto-shredding of old backups' access path).
ALTER TABLE keks ADD COLUMN recipients TEXT NOT NULL DEFAULT '[]';
CREATE INDEX families_kek ON families (kek_id);

-- Erasure keeps only that it happened: when and why.
ALTER TABLE families ADD COLUMN erased_at BIGINT;
ALTER TABLE families ADD COLUMN erase_reason TEXT;

-- The retention step of every sweep looks for plans that ended long ago; without this
-- index it would scan every family.
CREATE INDEX families_retention ON families ((COALESCE(closed_at, plan_end))) WHERE status != 'erased';

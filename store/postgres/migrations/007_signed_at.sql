-- When the newest checkpoint was signed, by the database's clock: the DPO's console
-- shows its age. NULL for a checkpoint signed before consentd kept it.
ALTER TABLE log_head ADD COLUMN signed_at timestamptz;

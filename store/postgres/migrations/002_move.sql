-- A store copied to another (consentd copy) is marked as moved: where to, since when,
-- and whether the copy completed. It then takes no more records, so that two stores
-- never grow one log.
ALTER TABLE log_head
	ADD COLUMN moved_to   text,
	ADD COLUMN moved_at   timestamptz,
	ADD COLUMN moved_done boolean NOT NULL DEFAULT false;

-- consentd_expect_head now also fails the writer's transaction once the store is
-- marked as moved: a consentd still running on it stops taking records.
CREATE OR REPLACE FUNCTION consentd_expect_head(extended bytea) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM log_head WHERE id = 1 AND checkpoint IS NOT DISTINCT FROM extended FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the log head is not the one this writer extends' USING ERRCODE = 'CD001';
	END IF;
	PERFORM 1 FROM log_head WHERE id = 1 AND moved_to IS NOT NULL;
	IF FOUND THEN
		RAISE EXCEPTION 'the store was moved to another (consentd copy)' USING ERRCODE = 'CD002';
	END IF;
END
$$;

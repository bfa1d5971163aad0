-- consentd copy moves a store to another. The source is marked as moved: where to,
-- since when, and whether the copy completed; the copy, until it is complete, names
-- its source in copied_from. Either mark keeps a store from taking writes, so that
-- two stores never grow one log, and nothing written to the source after the copy
-- read it is lost.
ALTER TABLE log_head
	ADD COLUMN moved_to    text,
	ADD COLUMN moved_at    timestamptz,
	ADD COLUMN moved_done  boolean NOT NULL DEFAULT false,
	ADD COLUMN copied_from text;

-- consentd_refuse_moved fails the writer's transaction if the store is marked as
-- moved or as a copy in progress. It share-locks the head's row: the mark's update
-- waits for the writers that passed, so that the copy, which reads the store after
-- the mark, sees what they wrote.
CREATE FUNCTION consentd_refuse_moved() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM log_head WHERE id = 1 AND (moved_to IS NOT NULL OR copied_from IS NOT NULL) FOR SHARE;
	IF FOUND THEN
		RAISE EXCEPTION 'the store was moved to another, or is a copy in progress (consentd copy)' USING ERRCODE = 'CD002';
	END IF;
END
$$;

-- consentd_expect_head now also refuses a commit of records to a moved store.
CREATE OR REPLACE FUNCTION consentd_expect_head(extended bytea) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM log_head WHERE id = 1 AND checkpoint IS NOT DISTINCT FROM extended FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the log head is not the one this writer extends' USING ERRCODE = 'CD001';
	END IF;
	PERFORM consentd_refuse_moved();
END
$$;

-- Every other write (an erasure, a purge, a snapshot, an audit entry, a link) is
-- refused the same way, by a trigger.
CREATE FUNCTION consentd_refuse_moved_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM consentd_refuse_moved();
	RETURN NULL;
END
$$;

CREATE TRIGGER refuse_moved BEFORE UPDATE OR DELETE ON records
	FOR EACH STATEMENT EXECUTE FUNCTION consentd_refuse_moved_trigger();
CREATE TRIGGER refuse_moved BEFORE INSERT OR UPDATE OR DELETE ON snapshots
	FOR EACH STATEMENT EXECUTE FUNCTION consentd_refuse_moved_trigger();
CREATE TRIGGER refuse_moved BEFORE INSERT OR UPDATE OR DELETE ON audit
	FOR EACH STATEMENT EXECUTE FUNCTION consentd_refuse_moved_trigger();
CREATE TRIGGER refuse_moved BEFORE INSERT OR UPDATE OR DELETE ON purges
	FOR EACH STATEMENT EXECUTE FUNCTION consentd_refuse_moved_trigger();
CREATE TRIGGER refuse_moved BEFORE INSERT OR UPDATE OR DELETE ON links
	FOR EACH STATEMENT EXECUTE FUNCTION consentd_refuse_moved_trigger();

-- Several consentd instances on one database. Each writes its records durably as
-- pending; one instance at a time, the sequencer, holds the lease and integrates
-- pending records into the log in batches. The lease only says who should
-- integrate: correctness rests on the integration's own checks (see
-- consentd_integrate), so that a stale sequencer (paused, cut off) never forks the
-- log.

-- Records written by an instance and not yet in the log, in the order they came
-- (seq). The columns are those of records, with the leaf that the sequencer hashes
-- into the tree. Reads never see them: a record is in records once integrated.
CREATE TABLE pending (
	seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	record_id   uuid        NOT NULL UNIQUE,
	consent_id  uuid        NOT NULL,
	site        text        NOT NULL,
	recorded_at timestamptz NOT NULL,
	action      text        NOT NULL,
	fingerprint text        NOT NULL,
	language    text        NOT NULL,
	decision    bytea       NOT NULL,
	identifying bytea       NOT NULL,
	leaf        bytea       NOT NULL,
	written_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER refuse_moved BEFORE INSERT OR UPDATE OR DELETE ON pending
	FOR EACH STATEMENT EXECUTE FUNCTION consentd_refuse_moved_trigger();

-- The sequencer's lease: who holds it, its fencing epoch (one more at each change of
-- holder), and until when, by the database's clock, which all instances share.
CREATE TABLE sequencer_lease (
	id         int         PRIMARY KEY CHECK (id = 1),
	holder     text        NOT NULL,
	epoch      bigint      NOT NULL,
	expires_at timestamptz NOT NULL
);

-- The epoch of the last integration: an integration of an older epoch is refused.
ALTER TABLE log_head ADD COLUMN epoch bigint NOT NULL DEFAULT 0;

-- The single-writer check is replaced: a consentd of an older version, which would
-- write records without the pending table or the fencing, fails closed.
DROP FUNCTION consentd_expect_head(bytea);

-- consentd_integrate is the first statement of every integration, in its
-- transaction. It locks the log's head row and fails the transaction (CD001) unless
-- the head is the checkpoint the sequencer extends, (CD003) unless the sequencer's
-- epoch still holds the lease and is not older than the last integration's, and
-- (CD004) unless every pending record it integrates or drops (ids) is still pending,
-- which it locks; then it records the epoch. The statements that follow in the same
-- transaction write their leaves, records, hashes and the new checkpoint, and
-- consentd_integrated ends it.
CREATE FUNCTION consentd_integrate(extended bytea, sequencer_epoch bigint, ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	locked bigint;
BEGIN
	PERFORM 1 FROM log_head WHERE id = 1 AND checkpoint IS NOT DISTINCT FROM extended FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the log head is not the one this sequencer extends' USING ERRCODE = 'CD001';
	END IF;
	PERFORM consentd_refuse_moved();
	PERFORM 1 FROM log_head WHERE id = 1 AND epoch <= sequencer_epoch;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'a sequencer of a later epoch integrated records' USING ERRCODE = 'CD003';
	END IF;
	PERFORM 1 FROM sequencer_lease WHERE id = 1 AND epoch = sequencer_epoch;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the sequencer lost its lease' USING ERRCODE = 'CD003';
	END IF;
	PERFORM 1 FROM pending WHERE record_id = ANY(ids) FOR UPDATE;
	GET DIAGNOSTICS locked = ROW_COUNT;
	IF locked <> cardinality(ids) THEN
		RAISE EXCEPTION '% of % records to integrate are no longer pending', cardinality(ids) - locked, cardinality(ids) USING ERRCODE = 'CD004';
	END IF;
	UPDATE log_head SET epoch = sequencer_epoch WHERE id = 1 AND epoch <> sequencer_epoch;
END
$$;

-- consentd_integrated ends an integration, once its records are written: a pending
-- record erased since the sequencer read it (Erase empties its identifying part
-- while holding the head's row, so never during an integration) is erased in
-- records too, and the pending records go.
CREATE FUNCTION consentd_integrated(ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE records r SET identifying = '' FROM pending p
		WHERE p.record_id = ANY(ids) AND r.record_id = p.record_id AND p.identifying = '' AND r.identifying <> '';
	DELETE FROM pending WHERE record_id = ANY(ids);
END
$$;

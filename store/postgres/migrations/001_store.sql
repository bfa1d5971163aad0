-- The consent store. Bytes that were hashed or signed are kept as bytea, exactly as
-- hashed: jsonb would reorder keys and rewrite numbers and break the digests.

-- What each banner showed, once per site and fingerprint: the snapshot as JSON, byte
-- for byte as the leaves' digests cover it.
CREATE TABLE snapshots (
	site        text        NOT NULL,
	fingerprint text        NOT NULL,
	created_at  timestamptz NOT NULL,
	snapshot    bytea       NOT NULL,
	PRIMARY KEY (site, fingerprint)
);

-- The audit log of the DPO API. Ids are UUIDv7: their order is the order of the calls.
CREATE TABLE audit (
	id    uuid        PRIMARY KEY,
	at    timestamptz NOT NULL,
	entry bytea       NOT NULL
);

-- The store's log: its name, which never changes, and the latest checkpoint signed
-- over its tree. One row, which every commit of records locks.
CREATE TABLE log_head (
	id         int   PRIMARY KEY CHECK (id = 1),
	origin     text  NOT NULL,
	checkpoint bytea
);

-- The tree's hashes, by storage index (golang.org/x/mod/sumdb/tlog's StoredHashIndex).
CREATE TABLE log_hashes (
	storage_index bigint PRIMARY KEY,
	hash          bytea  NOT NULL CHECK (length(hash) = 32)
);

-- Every record's leaf, as hashed into the tree. A leaf stays, the record's tombstone,
-- once a purge removed the record; its record id finds it even then.
CREATE TABLE leaves (
	leaf_index bigint PRIMARY KEY,
	record_id  uuid   NOT NULL UNIQUE,
	leaf       bytea  NOT NULL
);

-- The records: their decision and identifying parts, as their leaves' digests cover
-- them (the identifying part empty once erased), and columns derived from them to
-- query by.
CREATE TABLE records (
	record_id   uuid        PRIMARY KEY,
	leaf_index  bigint      NOT NULL UNIQUE REFERENCES leaves,
	consent_id  uuid        NOT NULL,
	site        text        NOT NULL,
	recorded_at timestamptz NOT NULL,
	action      text        NOT NULL,
	fingerprint text        NOT NULL,
	language    text        NOT NULL,
	decision    bytea       NOT NULL,
	identifying bytea       NOT NULL
);
CREATE INDEX records_by_consent ON records (consent_id);
CREATE INDEX records_by_site_time ON records (site, recorded_at);

-- The signed statements that a purge removed a site's records recorded before a time
-- (translog.Purge): verification tells the purged records from deleted ones by them.
CREATE TABLE purges (
	id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at        timestamptz NOT NULL,
	site      text        NOT NULL,
	statement bytea       NOT NULL
);

-- The signed statements that link the log to the names it had before a restore,
-- newest last (translog.Link).
CREATE TABLE links (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	statement bytea  NOT NULL
);

-- consentd_expect_head locks the log's head row and fails the writer's whole
-- transaction unless the head is the checkpoint the writer extends: the first
-- statement of every commit of records, so that two writers never both extend one
-- tree.
CREATE FUNCTION consentd_expect_head(extended bytea) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM log_head WHERE id = 1 AND checkpoint IS NOT DISTINCT FROM extended FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the log head is not the one this writer extends' USING ERRCODE = 'CD001';
	END IF;
END
$$;

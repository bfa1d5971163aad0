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

-- The DPO API's tokens, in the database that every instance shares, so that a token
-- added or revoked with consentd token --db counts on all of them within seconds.
-- Only each token's SHA-256 is stored; the token is shown once when it is made. A
-- name is unique among the tokens not revoked.
CREATE TABLE tokens (
	sha256  text        PRIMARY KEY,
	name    text        NOT NULL,
	sites   text[]      NOT NULL,
	created timestamptz NOT NULL,
	revoked timestamptz
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked IS NULL;

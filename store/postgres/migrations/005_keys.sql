-- The public keys of the instances sharing this database, each endorsed (signed) by
-- another key, so that every instance verifies and publishes the keys the others
-- sign with. statement is what was signed, byte for byte (it names the key, its
-- public half and its time of creation); kid repeats its id for the primary key. An
-- instance learns a key only through the endorsement of a key it trusts already:
-- rows written without a private key are never trusted.
CREATE TABLE key_endorsements (
	kid         text  NOT NULL,
	endorsed_by text  NOT NULL,
	statement   bytea NOT NULL,
	signature   bytea NOT NULL,
	PRIMARY KEY (kid, endorsed_by)
);

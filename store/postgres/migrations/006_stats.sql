-- The counters of the decisions per site, day (UTC), language and banner fingerprint
-- (consent.StatsStore): the sequencer adds those of each batch in the transaction
-- that integrates it. counters is flat, name to count (consent.Counters), and
-- consentd_add_counters adds two of them up name by name.
CREATE TABLE stats (
	site        text  NOT NULL,
	day         date  NOT NULL,
	language    text  NOT NULL,
	fingerprint text  NOT NULL,
	counters    jsonb NOT NULL,
	PRIMARY KEY (site, day, language, fingerprint)
);

CREATE FUNCTION consentd_add_counters(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(jsonb_object_agg(name, total), '{}'::jsonb)
	FROM (SELECT name, sum(n::bigint) AS total
		FROM (SELECT * FROM jsonb_each_text(a) UNION ALL SELECT * FROM jsonb_each_text(b)) AS e (name, n)
		GROUP BY name) AS s
$$;

-- A store with records from before the counters counts them when a consentd opens
-- it (RebuildStats), which sets stats_counted; a new store has nothing to count.
ALTER TABLE log_head ADD COLUMN stats_counted boolean NOT NULL DEFAULT true;
UPDATE log_head SET stats_counted = false;

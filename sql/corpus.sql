-- State is a pure function of the log: a generated corpus of every provider
-- and event type, delivered in a shuffled order with duplicates, derives the
-- same state and history as a rebuild that replays it.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
-- the generator the reliability tests use too: every provider and event
-- type, about 5% duplicates, in a shuffled order (public.corpus.n)
\set scale 400
\set seed 0.20261123
\i test/reliability/corpus.sql
SELECT count(*) >= 10000 AS at_least_10000,
       count(DISTINCT body->>'webhook_type') + count(DISTINCT body->>'Method')
       + count(DISTINCT body->>'entity') AS event_types
  FROM corpus;

SELECT max(id) AS before_corpus FROM onboarding.inbox \gset
-- two thirds as jsonb, one third as the text a provider sends (ingest_text's door)
INSERT INTO onboarding.inbox (payload, raw)
SELECT CASE WHEN n % 3 <> 0 THEN body END, CASE WHEN n % 3 = 0 THEN raw END
  FROM corpus ORDER BY n;

-- every delivery stored, every outcome accounted for
SELECT count(*) = (SELECT count(*) FROM corpus) AS all_stored,
       count(*) FILTER (WHERE outcome = 'duplicate') > 0 AS has_duplicates,
       count(*) FILTER (WHERE outcome = 'stale') > 0 AS has_stale,
       count(*) FILTER (WHERE outcome = 'applied') > 0 AS has_applied,
       count(*) FILTER (WHERE detail LIKE 'raw body repaired%') > 0 AS has_repaired
  FROM onboarding.inbox WHERE id > :before_corpus;

-- verify(): live state equals a (rolled back) rebuild
SELECT count(*) AS differences FROM onboarding.verify();

-- rebuild() reproduces state, history and the inbox's derived columns exactly
CREATE TEMP TABLE live AS SELECT * FROM onboarding.derived_rows();
-- (its progress NOTICE comes every 5 s: how many depends on the machine)
SET client_min_messages = warning;
SELECT onboarding.rebuild() = (SELECT count(*) FROM onboarding.inbox) AS replayed_all;
RESET client_min_messages;
CREATE TEMP TABLE rebuilt AS SELECT * FROM onboarding.derived_rows();
SELECT count(*) AS rows_compared FROM live;
SELECT 'only live' AS side, * FROM (SELECT * FROM live EXCEPT SELECT * FROM rebuilt) a
UNION ALL
SELECT 'only rebuilt', * FROM (SELECT * FROM rebuilt EXCEPT SELECT * FROM live) b;

-- where the Celcoin accounts ended (the seed makes the shuffle, and so this, repeatable)
SELECT status, count(*) FROM onboarding.account WHERE provider = 'celcoin' GROUP BY 1 ORDER BY 1;

DROP TABLE public.corpus;

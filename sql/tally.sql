-- onboarding.daily is kept by the pipeline (onboarding.daily_tally) and must
-- equal its full recomputation from the inbox after anything: three seeds
-- of a generated corpus delivered in shuffled order (late deliveries
-- rewrite earlier outcomes), in statements of random size, through INSERT,
-- ingest() and ingest_text(), some in savepoints rolled back, some in
-- transactions rolled back, on random days of arrival (before and after
-- 2000-01-01, where the day's arithmetic turns); then a rule taught and
-- scoped rebuilds, a whole rebuild_concurrently(), force_status(), erase(),
-- compactions between any of them.  After each step the view is compared
-- with the recomputation, and verify() (which checks the counts too) must
-- be empty.  In a database of its own.
--
-- onboarding.funnel is kept the same way (onboarding.status_tally: the
-- pipeline counts the state rows it writes, the state tables' statement
-- triggers count a user's own statements) and is compared, at each of
-- those steps and after a user's direct INSERT, UPDATE, DELETE and
-- TRUNCATE of the state tables (some rolled back), with its recomputation
-- from the state tables.
--
-- onboarding.open_entity, the entities on their way, is kept from the same
-- row versions: at each step in_progress_entities and pending_documents
-- (which read it) are compared with their definitions over every state
-- row, and verify() compares the set with its computation; and after a
-- settled status is taught (the set computed again) and proposals are
-- deleted (their documents become orphans, which pending_documents lists).
-- onboarding.refused_entity, what rejection_reasons reads, is compared the
-- same way at each step; and onboarding.stage_span, what stage_durations
-- reads (and its counts), against their computation from history, at each
-- step and over random histories a user writes by hand.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS onboarding_tally;
CREATE DATABASE onboarding_tally;
\c onboarding_tally
SET client_min_messages = warning;
CREATE EXTENSION onboarding CASCADE;
SET timezone = 'America/Sao_Paulo';     -- the view's days are UTC whatever the session's zone

-- onboarding.funnel as 0.2.0 computed it: from every state row
CREATE VIEW funnel_recomputed AS
SELECT provider, entity, status, count(*) AS how_many,
       round(count(*) * 100.0 / sum(count(*)) OVER (PARTITION BY provider, entity), 1) AS share
  FROM onboarding.entity_status
 GROUP BY provider, entity, status;

-- onboarding.daily as 0.2.0 computed it: from every stored delivery
CREATE VIEW recomputed AS
SELECT (received_at AT TIME ZONE 'UTC')::date AS day, provider,
       count(*) AS deliveries,
       count(*) FILTER (WHERE outcome = 'applied') AS applied,
       count(*) FILTER (WHERE outcome = 'duplicate') AS duplicate,
       count(*) FILTER (WHERE outcome = 'stale') AS stale,
       count(*) FILTER (WHERE outcome = 'illegal_transition') AS illegal_transition,
       count(*) FILTER (WHERE outcome = 'unrecognized') AS unrecognized,
       count(*) FILTER (WHERE outcome = 'invalid') AS invalid,
       count(*) FILTER (WHERE outcome = 'refused') AS refused
  FROM onboarding.inbox
 GROUP BY 1, 2;

CREATE TABLE result (seed numeric, step text, ok boolean, detail text);
-- (derived false: state changed by hand, which a rebuild would derive
-- again; verify() is then asked about the counts only)
CREATE PROCEDURE check_step(seed numeric, step text, derived boolean DEFAULT true)
LANGUAGE plpgsql AS $$
DECLARE
    differing bigint;
    unverified bigint;
BEGIN
    SELECT count(*) INTO differing FROM
        ((SELECT * FROM onboarding.daily EXCEPT ALL SELECT * FROM recomputed)
         UNION ALL (SELECT * FROM recomputed EXCEPT ALL SELECT * FROM onboarding.daily)) d;
    SELECT differing + count(*) INTO differing FROM
        ((SELECT * FROM onboarding.funnel EXCEPT ALL SELECT * FROM funnel_recomputed)
         UNION ALL (SELECT * FROM funnel_recomputed EXCEPT ALL SELECT * FROM onboarding.funnel)) d;
    SELECT differing + r.differences INTO differing FROM pg_temp.report_differences() r;
    SELECT count(*) INTO unverified FROM onboarding.verify() v
     WHERE derived OR v.kind IN ('daily_tally', 'status_tally', 'open_entity', 'refused_entity',
                                 'stage_span', 'stage_tally');
    INSERT INTO result VALUES (seed, step, differing = 0 AND unverified = 0,
                               differing || ' rows differing, verify() ' || unverified);
END
$$;

-- Deliver the corpus: statements of 1 to 7 deliveries, each by one of the
-- ways in; one statement in 6 inside a savepoint rolled back, one in 9 in
-- a transaction rolled back (both delivered again afterwards, so that
-- every delivery ends up stored once); received on one of six days.
CREATE PROCEDURE deliver(seed numeric) LANGUAGE plpgsql AS $$
DECLARE
    first int := 1;
    size int;
    total int := (SELECT max(n) FROM corpus);
    way int;
    day timestamptz;
BEGIN
    PERFORM setseed(seed);
    WHILE first <= total LOOP
        size := 1 + floor(random() * 7)::int;
        way := floor(random() * 3)::int;
        day := (ARRAY['1999-12-31 23:59:59.5+00', '2000-01-01 00:00:00+00', '1999-12-30 12:00+00',
                      '2025-03-10 02:59:59-03', '2025-03-10 03:00:00-03', '2025-03-11 12:00+00']::timestamptz[])
               [1 + floor(random() * 6)::int];
        IF random() < 1.0 / 6 THEN
            BEGIN
                INSERT INTO onboarding.inbox (payload, received_at)
                SELECT body, day FROM corpus WHERE n BETWEEN first AND first + size - 1 ORDER BY n;
                RAISE EXCEPTION USING ERRCODE = 'OB000', MESSAGE = 'roll back';
            EXCEPTION WHEN SQLSTATE 'OB000' THEN
                NULL;
            END;
        END IF;
        IF way = 0 THEN
            INSERT INTO onboarding.inbox (payload, received_at)
            SELECT body, day FROM corpus WHERE n BETWEEN first AND first + size - 1 ORDER BY n;
        ELSIF way = 1 THEN
            PERFORM onboarding.ingest(body) FROM corpus WHERE n BETWEEN first AND first + size - 1 ORDER BY n;
        ELSE
            PERFORM onboarding.ingest_text(coalesce(raw, body::text)) FROM corpus
              WHERE n BETWEEN first AND first + size - 1 ORDER BY n;
        END IF;
        IF random() < 1.0 / 9 THEN
            COMMIT;
            INSERT INTO onboarding.inbox (payload, received_at)
            SELECT body, day FROM corpus WHERE n BETWEEN first + size AND first + 2 * size - 1 ORDER BY n;
            ROLLBACK;
        ELSE
            COMMIT;
        END IF;
        first := first + size;
    END LOOP;
    -- a body that is not JSON, one that is not recognised, one with no body
    INSERT INTO onboarding.inbox (raw) VALUES ('{"webhook_type": oops');
    INSERT INTO onboarding.inbox (payload) VALUES ('{"hello": "world"}');
    COMMIT;
END
$$;

\set ECHO none
\i test/reliability/reports_recompute.sql
\set scale 2
\set seed 0.17
\i test/reliability/corpus.sql
CALL deliver(:seed);
CALL check_step(:seed, '1 delivered');
-- a status taught: the deliveries that carried it change outcome
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status)
VALUES ('qitech', 'account_request.status_change', 'pending_mystery', 'account', 'pending_data');
SELECT onboarding.rebuild(provider => 'qitech') IS NOT NULL AS rebuilt \gset
CALL check_step(:seed, '2 a status taught, rebuild(provider)');
SELECT onboarding.compact_daily_tally() >= 0 AS compacted \gset
CALL check_step(:seed, '3 compacted');
DELETE FROM onboarding.status_map WHERE provider = 'qitech' AND status_raw = 'pending_mystery';
CALL onboarding.rebuild_concurrently();
CALL check_step(:seed, '4 untaught, rebuild_concurrently()');
SELECT count(*) > 0 AS forced FROM (SELECT onboarding.force_status('account', 'qitech', a.account_key, 'blocked', 'tally test')
                                       FROM onboarding.account a WHERE a.provider = 'qitech' AND a.status = 'active'
                                      ORDER BY a.account_key LIMIT 2) f \gset
CALL check_step(:seed, '5 force_status()');
-- and counted at once, not at commit (the override's INSERT runs to its end,
-- so the inbox's statement trigger writes the counts)
BEGIN;
SELECT count(*) > 0 AS forced FROM (SELECT onboarding.force_status('account', 'qitech', a.account_key, 'active', 'tally test')
                                       FROM onboarding.account a WHERE a.provider = 'qitech' AND a.status = 'blocked'
                                      ORDER BY a.account_key LIMIT 1) f \gset
CALL check_step(:seed, '5b force_status(), before commit');
COMMIT;
SELECT onboarding.erase('615.120.612-63', 'tally test') > 0 AS erased \gset
CALL check_step(:seed, '6 erase()');
-- the whole corpus again: every delivery a duplicate now
BEGIN;
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus ORDER BY n DESC;
SELECT onboarding.rebuild(since => now()) IS NOT NULL AS rebuilt \gset
COMMIT;
CALL check_step(:seed, '7 delivered again, rebuild(since)');
-- a user's own statements on the state tables: a legal UPDATE (recorded
-- as an operator's delivery), a DELETE, an INSERT, a TRUNCATE, some
-- rolled back
UPDATE onboarding.account SET status = 'blocked'
 WHERE (provider, account_key) IN (SELECT provider, account_key FROM onboarding.account
                                    WHERE status = 'active' ORDER BY 1, 2 LIMIT 3);
CALL check_step(:seed, '7a a user''s UPDATE');
BEGIN;
SAVEPOINT s;
DELETE FROM onboarding.document;
ROLLBACK TO s;
DELETE FROM onboarding.document
 WHERE (provider, document_key) IN (SELECT provider, document_key FROM onboarding.document
                                     ORDER BY 1, 2 LIMIT 5);
COMMIT;
CALL check_step(:seed, '7b a user''s DELETE, one rolled back', false);
CREATE TEMP TABLE closure_copy AS SELECT * FROM onboarding.closure;
TRUNCATE onboarding.closure;
CALL check_step(:seed, '7c a user''s TRUNCATE', false);
BEGIN;
INSERT INTO onboarding.closure SELECT * FROM closure_copy;
TRUNCATE onboarding.proposal;
ROLLBACK;
INSERT INTO onboarding.closure SELECT * FROM closure_copy;
CALL check_step(:seed, '7d a user''s INSERT, a TRUNCATE rolled back', false);
SELECT onboarding.compact_status_tally() > 0 AS compacted \gset
CALL check_step(:seed, '7e funnel''s counts compacted', false);
SELECT onboarding.rebuild() > 0 AS rebuilt \gset
CALL check_step(:seed, '7f rebuild() (the rows the user changed derived again)');
-- what is open changes with the rules: the set is computed again
INSERT INTO onboarding.settled_status (entity, provider, status) VALUES ('closure', 'qitech', 'processing');
CALL check_step(:seed, '7g a settled status taught');
DELETE FROM onboarding.settled_status WHERE NOT shipped;
UPDATE onboarding.settled_by_proposal SET proposal_waiting = proposal_waiting || '{approved}'
 WHERE provider = 'celcoin';
CALL check_step(:seed, '7h a status in which Celcoin files wait');
UPDATE onboarding.settled_by_proposal SET proposal_waiting = array_remove(proposal_waiting, 'approved')
 WHERE provider = 'celcoin';
CALL check_step(:seed, '7i untaught');
-- a proposal deleted: its files are orphans, pending until it comes back
DELETE FROM onboarding.proposal
 WHERE (provider, proposal_key) IN (SELECT p.provider, p.proposal_key FROM onboarding.proposal p
                                     WHERE p.provider = 'celcoin'
                                       AND EXISTS (SELECT FROM onboarding.open_entity o
                                                    WHERE o.provider = p.provider
                                                      AND o.parent_key = p.proposal_key)
                                     ORDER BY 2 LIMIT 4);
CALL check_step(:seed, '7j Celcoin proposals deleted', false);
SELECT count(*) > 0 AS orphans FROM onboarding.open_entity WHERE orphan;
SELECT onboarding.rebuild(provider => 'celcoin') > 0 AS rebuilt \gset
CALL check_step(:seed, '7k rebuild(provider) (the proposals derived again)');
-- a user's index on open_entity: its rows are written by statements then
CREATE INDEX open_entity_by_key ON onboarding.open_entity (entity_key);
DELETE FROM onboarding.proposal
 WHERE (provider, proposal_key) IN (SELECT p.provider, p.proposal_key FROM onboarding.proposal p
                                     WHERE p.provider = 'celcoin' ORDER BY 2 DESC LIMIT 4);
SELECT onboarding.rebuild() > 0 AS rebuilt \gset
CALL check_step(:seed, '7l a user''s index on open_entity, rebuild()');
DROP INDEX onboarding.open_entity_by_key;

-- stage_durations' spans over random histories written by hand (a user's
-- statements on history: its statement triggers recompute the spans):
-- 25 rounds, each writing the rows of a few entities with random times
-- (ties, and some rows without a time) in statements of random size and
-- order, then updating times and deleting rows, one statement in four in a
-- savepoint rolled back, one round in five rolled back whole.  After each
-- round the report equals its definition over all of history, and the
-- kept spans and counts their computation.
CREATE PROCEDURE history_rounds(seed numeric) LANGUAGE plpgsql AS $$
DECLARE
    differing bigint;
BEGIN
    PERFORM setseed(seed);
    FOR round IN 1 .. 25 LOOP
        FOR stmt IN 1 .. 8 LOOP
            BEGIN
                INSERT INTO onboarding.history (provider, entity, entity_key, to_status, event_at, inbox_id)
                SELECT (ARRAY['qitech', 'celcoin', 'fitbank']::onboarding.provider[])[1 + floor(random() * 3)::int],
                       (ARRAY['account', 'proposal', 'document'])[1 + floor(random() * 3)::int],
                       'rnd-' || round || '-' || floor(random() * 4)::int,
                       (ARRAY['pending', 'active', 'blocked', 'approved'])[1 + floor(random() * 4)::int],
                       CASE WHEN random() < 0.08 THEN NULL
                            ELSE '2025-01-01'::timestamptz + floor(random() * 40)::int * interval '37 minutes' END,
                       0
                  FROM generate_series(1, 1 + floor(random() * 9)::int);
                IF random() < 0.25 THEN
                    RAISE EXCEPTION USING ERRCODE = 'OB000', MESSAGE = 'roll back';
                END IF;
            EXCEPTION WHEN SQLSTATE 'OB000' THEN
                NULL;
            END;
        END LOOP;
        UPDATE onboarding.history SET event_at = event_at + floor(random() * 5)::int * interval '13 minutes'
         WHERE entity_key LIKE 'rnd-' || round || '-%' AND random() < 0.3;
        UPDATE onboarding.history SET event_at = NULL
         WHERE entity_key LIKE 'rnd-' || round || '-%' AND random() < 0.03;
        DELETE FROM onboarding.history
         WHERE entity_key LIKE 'rnd-' || round || '-%' AND random() < 0.2;
        IF round % 5 = 0 THEN
            ROLLBACK;
        ELSE
            COMMIT;
        END IF;
        SELECT r.differences INTO differing FROM pg_temp.report_differences() r;
        SELECT differing + count(*) INTO differing FROM onboarding.stage_span k
          FULL JOIN onboarding.stage_spans() x ON k.owner_id = x.owner_id
         WHERE k.owner_id IS NULL OR x.owner_id IS NULL OR k.spent::text <> x.spent::text
            OR k.status <> x.status OR k.bucket <> onboarding.span_bucket(x.spent);
        SELECT differing + count(*) INTO differing
          FROM (SELECT provider, entity, status, bucket, sum(n) AS n FROM onboarding.stage_tally
                 GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0) t
          FULL JOIN (SELECT provider::text AS provider, entity, status, bucket, count(*) AS n
                       FROM onboarding.stage_span GROUP BY 1, 2, 3, 4) c USING (provider, entity, status, bucket)
         WHERE t.n IS DISTINCT FROM c.n;
        INSERT INTO result VALUES (seed, '7m history written by hand', differing = 0,
                                   'round ' || round || ': ' || differing || ' rows differing');
        COMMIT;
    END LOOP;
END
$$;
CALL history_rounds(:seed);
SELECT count(*) > 100 AS random_spans FROM onboarding.stage_span s
  JOIN onboarding.history h ON h.id = s.owner_id WHERE h.entity_key LIKE 'rnd-%';
-- and a TRUNCATE of history empties them; a recount writes them again
BEGIN;
TRUNCATE onboarding.history;
SELECT count(*) AS spans_left FROM onboarding.stage_span;
ROLLBACK;
SELECT onboarding.recount_stage_span() > 0 AS recounted \gset
CALL check_step(:seed, '7n history written by hand, recounted', false);
DELETE FROM onboarding.history WHERE entity_key LIKE 'rnd-%';
CALL check_step(:seed, '7o history written by hand, deleted');
DROP TABLE corpus;

\set seed 0.58
\i test/reliability/corpus.sql
CALL deliver(:seed);
CALL check_step(:seed, '1 delivered');
SELECT onboarding.compact_daily_tally() >= 0 AS compacted \gset
CALL check_step(:seed, '3 compacted');
SELECT onboarding.rebuild() IS NOT NULL AS rebuilt \gset
CALL check_step(:seed, '8 rebuild()');
DROP TABLE corpus;

\set seed 0.91
\i test/reliability/corpus.sql
CALL deliver(:seed);
CALL check_step(:seed, '1 delivered');
SELECT onboarding.erase('615.120.612-63', 'tally test') > 0 AS erased \gset
CALL check_step(:seed, '6 erase()');

-- a delivery never waits on a count: a row of its session's counts that
-- another transaction holds (here this session's own prepared transactions,
-- which only COMMIT or ROLLBACK PREPARED ends) is passed over for one of
-- the session's spare slots (before, the next delivery waited for ever)
SET lock_timeout = '5s';
BEGIN;
INSERT INTO onboarding.inbox (payload) VALUES ('{"tally": "prepared 1"}');
PREPARE TRANSACTION 'onboarding_tally_1';
INSERT INTO onboarding.inbox (payload) VALUES ('{"tally": "after prepare"}');
BEGIN;
INSERT INTO onboarding.inbox (payload) VALUES ('{"tally": "prepared 2"}'), ('{"tally": "prepared 2"}');
PREPARE TRANSACTION 'onboarding_tally_2';
INSERT INTO onboarding.inbox (payload) VALUES ('{"tally": "after prepare"}');
SELECT count(*) > 0 AS spare_slots FROM onboarding.daily_tally WHERE slot >= 1048576 \gset
COMMIT PREPARED 'onboarding_tally_1';
ROLLBACK PREPARED 'onboarding_tally_2';
RESET lock_timeout;
CALL check_step(0, '9a prepared transactions, spare slots ' || :'spare_slots');
SELECT onboarding.compact_daily_tally() >= 0 AS compacted \gset
CALL check_step(0, '9b prepared transactions, compacted');

-- what a user adds to the counts' table takes part: with a trigger of
-- theirs, the counts are written by a statement, and the trigger fires
CREATE TABLE tally_seen (n bigint);
CREATE FUNCTION tally_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.tally_seen VALUES (NEW.n);
    RETURN NEW;
END
$$;
CREATE TRIGGER tally_seen BEFORE INSERT OR UPDATE ON onboarding.daily_tally
    FOR EACH ROW EXECUTE FUNCTION tally_seen();
INSERT INTO onboarding.inbox (payload) VALUES ('{"tally": "trigger"}'), ('{"tally": "trigger"}');
INSERT INTO onboarding.inbox (payload) VALUES ('{"tally": "trigger 2"}');
SELECT count(*) >= 2 AS fired FROM tally_seen \gset
CALL check_step(0, '9c a user''s trigger on the counts, fired ' || :'fired');
DROP TRIGGER tally_seen ON onboarding.daily_tally;
INSERT INTO onboarding.inbox (payload) VALUES ('{"tally": "trigger"}'), ('{"tally": "no trigger"}');
CALL check_step(0, '9d the trigger dropped');
-- the same for the spans: with a trigger of a user's on stage_span, the
-- new spans are written by a statement, and it fires
CREATE TABLE span_seen (owner_id bigint);
CREATE FUNCTION span_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.span_seen VALUES (NEW.owner_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER span_seen BEFORE INSERT ON onboarding.stage_span
    FOR EACH ROW EXECUTE FUNCTION span_seen();
INSERT INTO onboarding.history (provider, entity, entity_key, to_status, event_at, inbox_id)
VALUES ('qitech', 'account', 'span-trigger', 'pending', '2025-02-01 10:00+00', 0),
       ('qitech', 'account', 'span-trigger', 'active', '2025-02-01 11:30+00', 0);
SELECT count(*) AS fired FROM span_seen \gset
CALL check_step(0, '9e a user''s trigger on the spans, fired ' || :'fired', false);
DROP TRIGGER span_seen ON onboarding.stage_span;
DELETE FROM onboarding.history WHERE entity_key = 'span-trigger';
CALL check_step(0, '9f the trigger dropped');
\set ECHO all

SELECT step, count(*) AS seeds, bool_and(ok) AS ok FROM result GROUP BY step ORDER BY step;
SELECT seed, step, detail FROM result WHERE NOT ok;
-- the counts are few: rows per day, provider, outcome and backend
SELECT count(*) < 200 AS few_rows, count(DISTINCT day) AS days FROM onboarding.daily_tally;
-- (and today's: the deliveries whose arrival the test did not choose)
SELECT day, provider, deliveries > 0 AS some FROM onboarding.daily
 WHERE day <> (now() AT TIME ZONE 'UTC')::date ORDER BY day, provider;
SELECT count(*) AS providers_today FROM onboarding.daily WHERE day = (now() AT TIME ZONE 'UTC')::date;

-- a reader of reports needs nothing more than SELECT
CREATE ROLE onboarding_tally_report;
GRANT USAGE ON SCHEMA onboarding TO onboarding_tally_report;
GRANT SELECT ON ALL TABLES IN SCHEMA onboarding TO onboarding_tally_report;
SET ROLE onboarding_tally_report;
SELECT count(*) > 0 AS reads FROM onboarding.daily;
SELECT onboarding.compact_daily_tally();
RESET ROLE;
DROP OWNED BY onboarding_tally_report;
DROP ROLE onboarding_tally_report;

-- funnel reads its kept counts, not the state tables (their branch, for
-- row-level security, is never executed); with row-level security on a
-- state table it counts the rows the caller may see instead
-- (funnel_counted())
CREATE FUNCTION funnel_reads() RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    line text;
    seen text[] := '{}';
BEGIN
    FOR line IN EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM onboarding.funnel LOOP
        IF line ~ 'Scan on (account|proposal|document|closure|status_tally|funnel_counted)\M' AND line !~ 'never executed' THEN
            seen := seen || substring(line from 'Scan on (\w+)');
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT unnest(seen) ORDER BY 1);
END
$$;
SELECT funnel_reads() AS without_row_security;
ALTER TABLE onboarding.document ENABLE ROW LEVEL SECURITY;
SELECT funnel_reads() AS with_row_security;
SELECT count(*) AS funnel_rows_owner_sees FROM onboarding.funnel WHERE entity = 'document';
ALTER TABLE onboarding.document DISABLE ROW LEVEL SECURITY;

\c contrib_regression
SET client_min_messages = warning;
DROP DATABASE onboarding_tally;

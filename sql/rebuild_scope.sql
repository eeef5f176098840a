-- rebuild() with a scope, and rebuild_concurrently(): after a rule is
-- taught, re-deriving only the groups the change reaches gives what a whole
-- rebuild gives, in one transaction or one group per transaction.
--
-- Property: for generated corpora (three seeds, every provider and event
-- type, duplicates, shuffled), and for four kinds of rule change (a status
-- taught, a status mapped otherwise, a consequence removed, an effect
-- removed so that rows are derived by nothing any more), every scope that
-- covers the change derives exactly the rows a whole rebuild derives; both
-- forms; and undoing the change with a whole rebuild gives back the state
-- the deliveries derived live.  In a database of its own.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS onboarding_rebuild;
CREATE DATABASE onboarding_rebuild;
\c onboarding_rebuild
SET client_min_messages = warning;
CREATE EXTENSION onboarding CASCADE;
SET timezone = 'UTC';

-- every derived row, as one value
CREATE FUNCTION derived() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_agg(jsonb_build_array(kind, key, row_data) ORDER BY kind, key)
      FROM onboarding.derived_rows()
$$;
-- the derived rows after a rebuild() of a scope ({} for the whole), rolled back
CREATE FUNCTION derived_after(scope jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    result jsonb;
BEGIN
    BEGIN
        PERFORM onboarding.rebuild(provider => (scope->>'provider')::onboarding.provider,
                                   entity => scope->>'entity', subject => scope->>'subject',
                                   since => (scope->>'since')::timestamptz);
        result := derived();
        RAISE EXCEPTION USING ERRCODE = 'OB999';
    EXCEPTION WHEN SQLSTATE 'OB999' THEN
        RETURN result;
    END;
END
$$;
-- what differs between two sets of derived rows, for a failure's eyes
CREATE FUNCTION differences(a jsonb, b jsonb) RETURNS TABLE (side text, kind text, key text) LANGUAGE sql AS $$
    (SELECT 'only first', x->>0, x->>1 FROM jsonb_array_elements(a) x
     EXCEPT SELECT 'only first', y->>0, y->>1 FROM jsonb_array_elements(b) y)
    UNION ALL
    (SELECT 'only second', y->>0, y->>1 FROM jsonb_array_elements(b) y
     EXCEPT SELECT 'only second', x->>0, x->>1 FROM jsonb_array_elements(a) x)
    UNION ALL
    SELECT 'changed', x->>0, x->>1 FROM jsonb_array_elements(a) x JOIN jsonb_array_elements(b) y
        ON x->>0 = y->>0 AND x->>1 = y->>1 WHERE x->2 <> y->2
    ORDER BY 1, 2, 3 LIMIT 5
$$;

-- the rule changes, each with its undoing and the scopes that cover it
CREATE TABLE change (name text PRIMARY KEY, apply text, undo text, scopes jsonb);
INSERT INTO change VALUES
 ('teach a status',
  $$INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status)
    VALUES ('qitech', 'account_request.status_change', 'pending_mystery', 'account', 'pending_data')$$,
  $$DELETE FROM onboarding.status_map WHERE provider = 'qitech' AND status_raw = 'pending_mystery'$$,
  '[{"provider": "qitech"}, {"entity": "account"}, {"since": "-infinity"}]'),
 ('map a status otherwise',
  $$UPDATE onboarding.status_map SET status = 'limited'
     WHERE provider = 'celcoin' AND event_type = 'account-status' AND status_raw = 'BLOQUEADO'$$,
  $$UPDATE onboarding.status_map SET status = 'blocked'
     WHERE provider = 'celcoin' AND event_type = 'account-status' AND status_raw = 'BLOQUEADO'$$,
  '[{"provider": "celcoin"}, {"entity": "account"}]'),
 ('remove a consequence',
  $$DELETE FROM onboarding.effect_rule
     WHERE provider = 'fitbank' AND event_type = 'UpdateCloseAccount' AND entity = 'account'$$,
  $$INSERT INTO onboarding.effect_rule (provider, event_type, entity, position, consequence, shipped)
    VALUES ('fitbank', 'UpdateCloseAccount', 'account', 2, true, true)$$,
  '[{"provider": "fitbank"}, {"entity": "account"}, {"entity": "closure"}, {"since": "-infinity"}]'),
 ('derive a document no more',
  $$DELETE FROM onboarding.effect_rule
     WHERE provider = 'celcoin' AND event_type = 'onboarding-file' AND entity = 'document'$$,
  $$INSERT INTO onboarding.effect_rule (provider, event_type, entity, position, for_each, for_each_else, shipped)
    VALUES ('celcoin', 'onboarding-file', 'document', 1, 'body.files', 'body.url', true)$$,
  '[{"provider": "celcoin"}, {"since": "-infinity"}]');

CREATE TABLE outcome_of (seed numeric, change text, scope jsonb, form text, equal boolean,
                         differences text);

-- one seed: its corpus, then every change, scope and form
CREATE PROCEDURE run_seed(seed numeric) LANGUAGE plpgsql AS $$
DECLARE
    c record;
    s jsonb;
    live jsonb;
    whole jsonb;
    got jsonb;
BEGIN
    FOR c IN SELECT * FROM change ORDER BY name LOOP
        live := derived();
        EXECUTE c.apply;
        whole := derived_after('{}');
        -- the change changes something (else the test would prove nothing)
        INSERT INTO outcome_of VALUES (seed, c.name, NULL, 'changes state', live <> whole, NULL);
        FOR s IN SELECT jsonb_array_elements(c.scopes) LOOP
            got := derived_after(s);
            INSERT INTO outcome_of
            SELECT seed, c.name, s, 'rebuild()', got = whole,
                   (SELECT string_agg(concat_ws(' ', side, kind, key), '; ') FROM differences(got, whole));
        END LOOP;
        -- the procedure commits: run it for real (first scope), then undo
        s := c.scopes->0;
        COMMIT;
        CALL onboarding.rebuild_concurrently(provider => (s->>'provider')::onboarding.provider,
                                             entity => s->>'entity', subject => s->>'subject',
                                             since => (s->>'since')::timestamptz);
        got := derived();
        INSERT INTO outcome_of
        SELECT seed, c.name, s, 'rebuild_concurrently()', got = whole,
               (SELECT string_agg(concat_ws(' ', side, kind, key), '; ') FROM differences(got, whole));
        EXECUTE c.undo;
        COMMIT;
        CALL onboarding.rebuild_concurrently();
        got := derived();
        INSERT INTO outcome_of
        SELECT seed, c.name, '"undone"', 'rebuild_concurrently()', got = live,
               (SELECT string_agg(concat_ws(' ', side, kind, key), '; ') FROM differences(got, live));
        COMMIT;
    END LOOP;
END
$$;

-- (the generator's statements are not echoed: three corpora, one run each)
\set ECHO none
\set scale 6
\set seed 0.11
\i test/reliability/corpus.sql
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus ORDER BY n;
CALL run_seed(:seed);
DROP TABLE corpus;
\set seed 0.22
\i test/reliability/corpus.sql
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus ORDER BY n;
CALL run_seed(:seed);
DROP TABLE corpus;
\set seed 0.33
\i test/reliability/corpus.sql
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus ORDER BY n;
CALL run_seed(:seed);
\set ECHO all

SELECT count(*) AS deliveries, count(DISTINCT provider) AS providers FROM onboarding.inbox;
-- every change changed the state, every scope and form gave the whole rebuild's rows
SELECT change, scope, form, count(*) AS seeds, bool_and(equal) AS equal
  FROM outcome_of GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- (what differed, when something did)
SELECT seed, change, scope, form, differences FROM outcome_of WHERE NOT equal;
SELECT count(*) AS verify_differences FROM onboarding.verify();

-- a rebuild with nothing to change rewrites no row
CREATE TABLE versions AS
SELECT 'account' AS t, ctid::text AS at FROM onboarding.account UNION ALL
SELECT 'proposal', ctid::text FROM onboarding.proposal UNION ALL
SELECT 'document', ctid::text FROM onboarding.document UNION ALL
SELECT 'closure', ctid::text FROM onboarding.closure UNION ALL
SELECT 'history', ctid::text FROM onboarding.history UNION ALL
SELECT 'inbox', ctid::text FROM onboarding.inbox;
CALL onboarding.rebuild_concurrently(provider => 'fitbank');
SELECT onboarding.rebuild(entity => 'proposal') > 0 AS read_some;
SELECT (SELECT count(*) FROM versions) AS rows,
       (SELECT count(*) FROM versions v WHERE NOT EXISTS (
            SELECT FROM (SELECT 'account' AS t, ctid::text AS at FROM onboarding.account UNION ALL
                         SELECT 'proposal', ctid::text FROM onboarding.proposal UNION ALL
                         SELECT 'document', ctid::text FROM onboarding.document UNION ALL
                         SELECT 'closure', ctid::text FROM onboarding.closure UNION ALL
                         SELECT 'history', ctid::text FROM onboarding.history UNION ALL
                         SELECT 'inbox', ctid::text FROM onboarding.inbox) n
             WHERE n.t = v.t AND n.at = v.at)) AS rewritten;

-- a subject's rebuild: that subject's rows become the whole rebuild's
SELECT subject AS one_key FROM onboarding.inbox
 WHERE provider = 'qitech' AND status_raw = 'pending_mystery' ORDER BY id LIMIT 1 \gset
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status)
VALUES ('qitech', 'account_request.status_change', 'pending_mystery', 'account', 'pending_data');
SELECT derived_after('{}') AS whole \gset
SELECT onboarding.rebuild(subject => :'one_key') AS read_again;
SELECT count(*) FILTER (WHERE x->>1 LIKE '%' || :'one_key' || '%') AS key_rows,
       count(*) FILTER (WHERE x->>1 LIKE '%' || :'one_key' || '%'
                          AND x NOT IN (SELECT y FROM jsonb_array_elements(:'whole'::jsonb) y)) AS key_rows_differing
  FROM jsonb_array_elements(derived()) x;
DELETE FROM onboarding.status_map WHERE provider = 'qitech' AND status_raw = 'pending_mystery';
SELECT onboarding.rebuild(provider => 'qitech') > 0 AS restored;

-- and the rows of a subject whose keys are not the subject (a Celcoin
-- proposal's documents, keyed by proposal and file): derived by nothing
-- once the rule goes, deleted by the subject's rebuild (before, they stayed)
SELECT subject AS doc_subject FROM onboarding.inbox
 WHERE provider = 'celcoin' AND event_type = 'onboarding-file' AND outcome = 'applied'
 ORDER BY id LIMIT 1 \gset
SELECT count(*) > 0 AS has_documents FROM onboarding.document
 WHERE provider = 'celcoin' AND split_part(document_key, ':', 1) = :'doc_subject';
DELETE FROM onboarding.effect_rule
 WHERE provider = 'celcoin' AND event_type = 'onboarding-file' AND entity = 'document';
SELECT derived_after('{}') AS whole \gset
SELECT onboarding.rebuild(subject => :'doc_subject') > 0 AS read_again;
SELECT count(*) AS documents_left FROM onboarding.document
 WHERE provider = 'celcoin' AND split_part(document_key, ':', 1) = :'doc_subject';
SELECT count(*) FILTER (WHERE x->>1 LIKE '%' || :'doc_subject' || '%') > 0 AS key_rows,
       count(*) FILTER (WHERE x->>1 LIKE '%' || :'doc_subject' || '%'
                          AND x NOT IN (SELECT y FROM jsonb_array_elements(:'whole'::jsonb) y)) AS key_rows_differing
  FROM jsonb_array_elements(derived()) x;
INSERT INTO onboarding.effect_rule (provider, event_type, entity, position, for_each, for_each_else, shipped)
VALUES ('celcoin', 'onboarding-file', 'document', 1, 'body.files', 'body.url', true);
SELECT onboarding.rebuild(provider => 'celcoin') > 0 AS restored;
SELECT count(*) > 0 AS documents_back FROM onboarding.document
 WHERE provider = 'celcoin' AND split_part(document_key, ':', 1) = :'doc_subject';

-- progress: a row per run; the last of each form done, every group counted
SELECT count(*) AS runs FROM onboarding.rebuild_progress;
SELECT DISTINCT ON (concurrent) concurrent, scope, phase, groups_done = groups_total AS all_groups,
       deliveries > 0 AS read_deliveries, finished_at IS NOT NULL AS finished,
       groups_per_second > 0 AS has_rate, estimated_end IS NOT NULL AS has_estimate
  FROM onboarding.rebuild_progress ORDER BY concurrent, id DESC;

-- errors
SELECT onboarding.rebuild(entity => 'loan');
BEGIN;
CALL onboarding.rebuild_concurrently();
ROLLBACK;
CREATE FUNCTION rebuild_in_a_function() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CALL onboarding.rebuild_concurrently();
END
$$;
SELECT rebuild_in_a_function();
SET default_transaction_isolation = 'repeatable read';
CALL onboarding.rebuild_concurrently();
SELECT onboarding.rebuild(provider => 'qitech');
RESET default_transaction_isolation;
-- a role that may deliver may not rebuild
CREATE ROLE onboarding_rebuild_ingest;
GRANT USAGE ON SCHEMA onboarding TO onboarding_rebuild_ingest;
GRANT INSERT ON onboarding.inbox TO onboarding_rebuild_ingest;
SET ROLE onboarding_rebuild_ingest;
CALL onboarding.rebuild_concurrently();
SELECT onboarding.rebuild();
SELECT * FROM onboarding.rebuild_progress;
RESET ROLE;
DROP OWNED BY onboarding_rebuild_ingest;
DROP ROLE onboarding_rebuild_ingest;

\c contrib_regression
SET client_min_messages = warning;
DROP DATABASE onboarding_rebuild;

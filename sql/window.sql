--
-- The window: a statement's state rows are kept in memory while it runs
-- and reach their tables when it ends (store.c); its history rows are
-- written in batches. Multi-row statements, subtransactions that roll back
-- in the middle of one, savepoints, and a rebuild in the same transaction
-- all leave state and history exactly as a rebuild derives them.
--
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.qi(k text, status text, at text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('webhook_type', 'account_request.status_change', 'key', k,
                              'status', status, 'event_datetime', at)
$$;
CREATE VIEW pg_temp.accounts AS
    SELECT account_key, status, last_event_at, last_inbox_id = last_seen_id AS ids_agree
      FROM onboarding.account WHERE account_key LIKE 'win-%' ORDER BY account_key;

-- One statement, three deliveries for the same account and one for another.
INSERT INTO onboarding.inbox (payload) VALUES
    (pg_temp.qi('win-1', 'pending_bacen_validation', '2024-03-01 10:00:00')),
    (pg_temp.qi('win-1', 'pending_kyc_analysis', '2024-03-01 10:01:00')),
    (pg_temp.qi('win-2', 'pending_bacen_validation', '2024-03-01 10:02:00')),
    (pg_temp.qi('win-1', 'pending_additional_data', '2024-03-01 10:03:00'));
SELECT * FROM pg_temp.accounts;
SELECT entity_key, from_status, to_status FROM onboarding.history
 WHERE entity_key LIKE 'win-%' ORDER BY id;

-- A subtransaction that starts and rolls back in the middle of a statement
-- (a function with an exception block, called for each row; with inner_key, the
-- block first delivers an account of that key, which the rollback takes).
CREATE FUNCTION pg_temp.checked(p jsonb, inner_key text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        IF inner_key IS NOT NULL THEN
            INSERT INTO onboarding.inbox (payload)
            VALUES (pg_temp.qi(inner_key, 'pending_bacen_validation', '2024-03-02 09:00:00'));
        END IF;
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
        NULL;
    END;
    RETURN p;
END
$$;
INSERT INTO onboarding.inbox (payload)
SELECT pg_temp.checked(p) FROM (VALUES
    (pg_temp.qi('win-3', 'pending_bacen_validation', '2024-03-02 10:00:00')),
    (pg_temp.qi('win-3', 'pending_kyc_analysis', '2024-03-02 10:01:00')),
    (pg_temp.qi('win-3', 'pending_additional_data', '2024-03-02 10:02:00')),
    (pg_temp.qi('win-2', 'pending_kyc_analysis', '2024-03-02 10:03:00'))) v(p);
SELECT * FROM pg_temp.accounts;
SELECT entity_key, from_status, to_status FROM onboarding.history
 WHERE entity_key IN ('win-2', 'win-3') ORDER BY id;

-- The same subtransaction delivering, and rolling back, deliveries of its
-- own: theirs go, the statement's history stays.
INSERT INTO onboarding.inbox (payload)
SELECT pg_temp.checked(p, 'win-inner-' || (p->>'status')) FROM (VALUES
    (pg_temp.qi('win-7', 'pending_bacen_validation', '2024-03-02 11:00:00')),
    (pg_temp.qi('win-7', 'pending_kyc_analysis', '2024-03-02 11:01:00')),
    (pg_temp.qi('win-8', 'pending_bacen_validation', '2024-03-02 11:02:00')),
    (pg_temp.qi('win-7', 'pending_additional_data', '2024-03-02 11:03:00'))) v(p);
SELECT entity_key, from_status, to_status FROM onboarding.history
 WHERE entity_key IN ('win-7', 'win-8') OR entity_key LIKE 'win-inner-%' ORDER BY id;
SELECT count(*) AS inner_deliveries FROM onboarding.inbox WHERE subject LIKE 'win-inner-%';

-- A statement that fails after some rows, inside an exception block: none
-- of its rows, and none of its state, remain.
DO $$
BEGIN
    INSERT INTO onboarding.inbox (payload) VALUES
        (pg_temp.qi('win-4', 'pending_bacen_validation', '2024-03-03 10:00:00')),
        (pg_temp.qi('win-2', 'rejected', '2024-03-03 10:01:00')),
        ((1 / 0)::text::jsonb);
EXCEPTION WHEN division_by_zero THEN
    RAISE NOTICE 'rolled back';
END
$$;
SELECT * FROM pg_temp.accounts;
SELECT count(*) AS win_4_history FROM onboarding.history WHERE entity_key = 'win-4';

-- Savepoints between statements.
BEGIN;
INSERT INTO onboarding.inbox (payload) VALUES (pg_temp.qi('win-5', 'pending_bacen_validation', '2024-03-04 10:00:00'));
SAVEPOINT s;
INSERT INTO onboarding.inbox (payload) VALUES (pg_temp.qi('win-5', 'rejected', '2024-03-04 10:01:00'));
ROLLBACK TO s;
INSERT INTO onboarding.inbox (payload) VALUES (pg_temp.qi('win-5', 'pending_kyc_analysis', '2024-03-04 10:02:00'));
COMMIT;
SELECT * FROM pg_temp.accounts;

-- More rows in one statement than the window holds (it is written every
-- 4096 rows): 3000 accounts, each created then moved on.
INSERT INTO onboarding.inbox (payload)
SELECT pg_temp.qi('win-bulk-' || (g % 3000), CASE WHEN g < 3000 THEN 'pending_bacen_validation'
                  ELSE 'pending_kyc_analysis' END,
                  ('2024-03-05 10:00:00'::timestamp + g * interval '1 second')::text)
  FROM generate_series(0, 5999) g;
SELECT status, count(*) FROM onboarding.account WHERE account_key LIKE 'win-bulk-%'
 GROUP BY status ORDER BY status;
SELECT to_status, count(*), count(DISTINCT entity_key) AS accounts FROM onboarding.history
 WHERE entity_key LIKE 'win-bulk-%' GROUP BY to_status ORDER BY to_status;

-- Deliveries and a rebuild in one transaction.
BEGIN;
INSERT INTO onboarding.inbox (payload) VALUES (pg_temp.qi('win-6', 'pending_bacen_validation', '2024-03-06 10:00:00'));
SELECT onboarding.rebuild() > 0 AS rebuilt;
INSERT INTO onboarding.inbox (payload) VALUES (pg_temp.qi('win-6', 'pending_kyc_analysis', '2024-03-06 10:01:00'));
COMMIT;
SELECT * FROM pg_temp.accounts WHERE account_key NOT LIKE 'win-bulk-%';

-- Live state is what a rebuild derives.
SELECT count(*) AS differences FROM onboarding.verify();

-- The bounded refold (SPEC §10, issue 24): a late delivery into an entity
-- with a long history reads the deliveries after its place only until what
-- its arrival changes has settled, prepares those again and no others, and
-- rewrites only the history rows and outcomes that change.  Counts, not
-- times: the history rows and inbox rows the late delivery's transaction
-- wrote (their xmin), and what the pipeline says at DEBUG1.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- One Celcoin account, 5,000 account-status deliveries a minute apart,
-- blocks (odd minutes) and unblocks (even ones), in order.
CREATE TEMP TABLE bounded_body AS
SELECT g, jsonb_build_object(
         'entity', 'account-status',
         'createTimestamp', to_char(timestamp '2026-01-01' + g * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS'),
         'status', CASE WHEN g % 2 = 1 THEN 'BLOQUEIO-JUDICIAL' ELSE 'DESBLOQUEIO-JUDICIAL' END,
         'body', jsonb_build_object('account', '300541273', 'clientCode', 'CLI-bounded',
                                    'documentNumber', '381.083.807-15', 'onboardingId', 'bounded-acct',
                                    'reason', 'r' || g),
         'webhookId', 'bounded-' || g) AS body
  FROM generate_series(1, 5000) g;
INSERT INTO onboarding.inbox (payload, headers)
SELECT body, jsonb_build_object('bounded', g) FROM bounded_body ORDER BY g;
SELECT count(*) AS deliveries, count(*) FILTER (WHERE outcome = 'applied') AS applied
  FROM onboarding.inbox WHERE headers ? 'bounded';
SELECT count(*) AS history_rows FROM onboarding.history WHERE entity_key = 'bounded-acct';
SELECT status, last_event_at FROM onboarding.account WHERE account_key = 'bounded-acct';

-- A block at 2,500.5 minutes arrives last: between the unblock of minute
-- 2,500 and the block of 2,501.  Its place: active -> blocked; the block
-- of 2,501 then meets blocked (a refresh) instead of active, and from
-- there on every delivery meets what it met before.  One stored delivery
-- is prepared again (2,501's), one history row goes (2,501's change), one
-- comes (the late one's); no other delivery's outcome changes.
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers)
SELECT jsonb_set(jsonb_set(body, '{createTimestamp}', '"2026-01-02T17:40:30"'),
                 '{webhookId}', '"bounded-late"'),
       '{"bounded": "late"}'
  FROM bounded_body WHERE g = 2501;
RESET client_min_messages;
SELECT count(*) AS history_rows_written
  FROM onboarding.history WHERE xmin = pg_current_xact_id()::xid;
SELECT count(*) AS inbox_rows_written
  FROM onboarding.inbox WHERE xmin = pg_current_xact_id()::xid;
COMMIT;

SELECT outcome, detail FROM onboarding.inbox WHERE headers->>'bounded' = 'late';
-- (Celcoin's times are Brasília's: 20:40 UTC is minute 2,500)
SELECT i.headers->>'bounded' AS delivery, h.from_status, h.to_status, h.event_at
  FROM onboarding.history h JOIN onboarding.inbox i ON i.id = h.inbox_id
 WHERE h.entity_key = 'bounded-acct' AND i.headers->>'bounded' IN ('2499', '2500', '2501', '2502', 'late')
 ORDER BY h.event_at, h.id;
SELECT count(*) AS history_rows FROM onboarding.history WHERE entity_key = 'bounded-acct';

-- A late delivery that lands at the same time as a stored one: where two
-- events share a second, their order is the transition graph's, not the
-- index's, and the whole group is folded, as before.
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers)
SELECT jsonb_set(jsonb_set(body, '{status}', '"DESBLOQUEIO-JUDICIAL"'),
                 '{webhookId}', '"bounded-tie"'),
       '{"bounded": "tie"}'
  FROM bounded_body WHERE g = 1001;
RESET client_min_messages;
COMMIT;
SELECT outcome FROM onboarding.inbox WHERE headers->>'bounded' = 'tie';

-- Both paths give what a replay from nothing gives.
SELECT count(*) AS verify_differences FROM onboarding.verify();

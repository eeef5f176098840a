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
-- is read (2,501's), from what its reading gave when it arrived, kept in
-- inbox.extraction: no body is read again.  One history row goes (2,501's
-- change), one comes (the late one's); no other delivery's outcome changes.
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

-- Every delivery of the entity keeps what its reading gave.
SELECT count(*) FILTER (WHERE extraction IS NULL) AS without_extraction,
       count(DISTINCT substr(extraction, 1, 12)) AS formats_and_fingerprints
  FROM onboarding.inbox WHERE headers ? 'bounded';

-- A kept extraction holds for the rules that read it.  A status_map row
-- (classification, which a fold does again anyway) and an UPDATE that
-- changes no rule leave them current; a taught extraction rule of Celcoin
-- (here one that finds nothing in these bodies) makes them stale: a late
-- delivery then reads the bodies it needs again, and derives the same.
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status, label)
VALUES ('celcoin', 'account-status', 'BLOQUEIO-TESTE', 'account', 'blocked', NULL);
UPDATE onboarding.provider_rule SET title = title WHERE provider = 'celcoin';
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers)
SELECT jsonb_set(jsonb_set(body, '{createTimestamp}', '"2026-01-03T02:00:30"'),
                 '{webhookId}', '"bounded-late-2"'),
       '{"bounded": "late-2"}'
  FROM bounded_body WHERE g = 3001;
RESET client_min_messages;
COMMIT;
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform)
VALUES ('celcoin', 'account-status', 'account', 'message', 9, '{body.neverSent}', 'text');
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers)
SELECT jsonb_set(jsonb_set(body, '{createTimestamp}', '"2026-01-03T10:20:30"'),
                 '{webhookId}', '"bounded-late-3"'),
       '{"bounded": "late-3"}'
  FROM bounded_body WHERE g = 3501;
RESET client_min_messages;
COMMIT;
SELECT headers->>'bounded' AS delivery, outcome FROM onboarding.inbox
 WHERE headers->>'bounded' IN ('late-2', 'late-3') ORDER BY id;

-- rebuild() reads every body and writes the extraction back where it
-- changed: current again, so the next late delivery reads no body.
SELECT count(*) AS rebuilt FROM onboarding.rebuild();
SELECT count(DISTINCT substr(extraction, 1, 12)) AS formats_and_fingerprints
  FROM onboarding.inbox WHERE headers ? 'bounded';
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers)
SELECT jsonb_set(jsonb_set(body, '{createTimestamp}', '"2026-01-03T18:40:30"'),
                 '{webhookId}', '"bounded-late-4"'),
       '{"bounded": "late-4"}'
  FROM bounded_body WHERE g = 4001;
RESET client_min_messages;
COMMIT;

-- An extraction that cannot be used (damaged by hand here: the owner with
-- the inbox's guard disabled; in real life, say, another build's format)
-- is never an error: the body is read instead.
ALTER TABLE onboarding.inbox DISABLE TRIGGER inbox_immutable;
UPDATE onboarding.inbox SET extraction = CASE headers->>'bounded'
           WHEN '4501' THEN substr(extraction, 1, length(extraction) - 3)
           WHEN '4503' THEN overlay(extraction PLACING '\xffffffff7f'::bytea FROM 23)
           ELSE '\x00'::bytea END
 WHERE headers->>'bounded' IN ('4501', '4503', '4505');
ALTER TABLE onboarding.inbox ENABLE TRIGGER inbox_immutable;
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers)
SELECT jsonb_set(jsonb_set(body, '{createTimestamp}', '"2026-01-04T03:00:30"'),
                 '{webhookId}', '"bounded-late-5"'),
       '{"bounded": "late-5"}'
  FROM bounded_body WHERE g = 4501;
INSERT INTO onboarding.inbox (payload, headers)
SELECT jsonb_set(jsonb_set(body, '{createTimestamp}', '"2026-01-04T03:02:30"'),
                 '{webhookId}', '"bounded-late-6"'),
       '{"bounded": "late-6"}'
  FROM bounded_body WHERE g = 4503;
INSERT INTO onboarding.inbox (payload, headers)
SELECT jsonb_set(jsonb_set(body, '{createTimestamp}', '"2026-01-04T03:04:30"'),
                 '{webhookId}', '"bounded-late-7"'),
       '{"bounded": "late-7"}'
  FROM bounded_body WHERE g = 4505;
RESET client_min_messages;
COMMIT;
SELECT headers->>'bounded' AS delivery, outcome FROM onboarding.inbox
 WHERE headers->>'bounded' LIKE 'late-%' ORDER BY id;
DELETE FROM onboarding.value_rule WHERE provider = 'celcoin' AND position = 9;
DELETE FROM onboarding.status_map WHERE status_raw = 'BLOQUEIO-TESTE';

-- A late delivery that creates a row: Celcoin's onboarding-create (it
-- creates the account and moves the proposal to account_created) arriving
-- after the RESOURCE_CREATED placed after it.  The account, which no
-- stored delivery created, starts empty at its place in both folds and is
-- the new fold's; the late delivery is stale by the proposal, the first of
-- its stored rows that a delivery after it and arrived before it touches.
-- Refolded from its place, not with its whole group.
CREATE FUNCTION pg_temp.cc(entity text, status text, at text, proposal text) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object(
             'entity', entity, 'createTimestamp', at, 'status', status,
             'webhookId', 'bounded-' || proposal || '-' || entity || '-' || status,
             'body', CASE WHEN entity = 'onboarding-create'
                          THEN jsonb_build_object('account', jsonb_build_object(
                                   'branch', '0001', 'account', '300541273', 'name', 'Ana Beatriz Souza',
                                   'documentNumber', '38108380715', 'ispb', '13935893'),
                               'onboardingId', proposal, 'proposalId', proposal,
                               'clientCode', 'CLI-bounded')
                          WHEN entity = 'account-status'
                          THEN jsonb_build_object('account', '300541273', 'clientCode', 'CLI-bounded',
                               'documentNumber', '38108380715', 'onboardingId', proposal)
                          ELSE jsonb_build_object('proposalId', proposal, 'clientCode', 'CLI-bounded',
                               'documentNumber', '38108380715', 'proposalType', 'PF',
                               'onboardingType', 'BAAS') END)
$$;
INSERT INTO onboarding.inbox (payload, headers) VALUES
    (pg_temp.cc('onboarding-proposal', 'CREATED', '2026-03-01T10:00:00Z', 'bounded-new'), '{"bounded": "new"}'),
    (pg_temp.cc('onboarding-proposal', 'APPROVED', '2026-03-01T10:10:00Z', 'bounded-new'), '{"bounded": "new"}'),
    (pg_temp.cc('onboarding-proposal', 'RESOURCE_CREATED', '2026-03-01T10:12:00Z', 'bounded-new'), '{"bounded": "new"}');
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers) VALUES
    (pg_temp.cc('onboarding-create', 'CONFIRMED', '2026-03-01T10:11:00Z', 'bounded-new'), '{"bounded": "new-late"}');
RESET client_min_messages;
COMMIT;
SELECT event_type, status_raw, outcome, detail FROM onboarding.inbox
 WHERE headers->>'bounded' IN ('new', 'new-late') ORDER BY event_at;
SELECT entity, from_status, to_status, event_at FROM onboarding.history
 WHERE entity_key = 'bounded-new' ORDER BY event_at, id;
SELECT status, branch, number, first_event_at, last_event_at FROM onboarding.account
 WHERE account_key = 'bounded-new';

-- Stale by the second of its rows: the account, which a delivery after it
-- touched and which arrived before it, while none such touched the
-- proposal.  The first row does not settle it: every delivery after it is
-- read before the account is named.
INSERT INTO onboarding.inbox (payload, headers) VALUES
    (pg_temp.cc('onboarding-proposal', 'CREATED', '2026-03-02T10:00:00Z', 'bounded-two'), '{"bounded": "two"}'),
    (pg_temp.cc('onboarding-proposal', 'APPROVED', '2026-03-02T10:10:00Z', 'bounded-two'), '{"bounded": "two"}'),
    (pg_temp.cc('account-status', 'ATIVO', '2026-03-02T10:13:00Z', 'bounded-two'), '{"bounded": "two"}');
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers) VALUES
    (pg_temp.cc('onboarding-create', 'CONFIRMED', '2026-03-02T10:11:00Z', 'bounded-two'), '{"bounded": "two-late"}');
RESET client_min_messages;
COMMIT;
SELECT event_type, status_raw, outcome, detail FROM onboarding.inbox
 WHERE headers->>'bounded' IN ('two', 'two-late') ORDER BY event_at;
SELECT entity, from_status, to_status, event_at FROM onboarding.history
 WHERE entity_key = 'bounded-two' ORDER BY event_at, id;

-- An illegal delivery after it that the late one makes legal: Celcoin's
-- RESOURCE_CREATED cannot follow created, and is stored illegal; the
-- APPROVED placed before it arrives last, and RESOURCE_CREATED, legal
-- now, is rewritten: applied (no delivery after it came before it), while
-- the late APPROVED is stale by it.  Refolded from its place.
INSERT INTO onboarding.inbox (payload, headers) VALUES
    (pg_temp.cc('onboarding-proposal', 'CREATED', '2026-03-03T10:00:00Z', 'bounded-legal'), '{"bounded": "legal"}'),
    (pg_temp.cc('onboarding-proposal', 'RESOURCE_CREATED', '2026-03-03T10:20:00Z', 'bounded-legal'), '{"bounded": "legal"}');
SELECT status_raw, outcome FROM onboarding.inbox WHERE headers->>'bounded' = 'legal' ORDER BY event_at;
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers) VALUES
    (pg_temp.cc('onboarding-proposal', 'APPROVED', '2026-03-03T10:10:00Z', 'bounded-legal'), '{"bounded": "legal-late"}');
RESET client_min_messages;
COMMIT;
SELECT status_raw, outcome, detail FROM onboarding.inbox
 WHERE headers->>'bounded' IN ('legal', 'legal-late') ORDER BY event_at;
SELECT from_status, to_status, event_at FROM onboarding.history
 WHERE entity_key = 'bounded-legal' ORDER BY event_at, id;

-- A delivery after the late one that touches a row the late one does not:
-- Celcoin's onboarding-create, placed after a late APPROVED, creates the
-- account besides moving the proposal.  The account joins both folds as
-- stored (locked without waiting), at its status before the late one's
-- place; the late one's share (first event, subjects) is not added to it.
-- Here the late APPROVED also makes the RESOURCE_CREATED after it legal.
INSERT INTO onboarding.inbox (payload, headers) VALUES
    (pg_temp.cc('onboarding-proposal', 'CREATED', '2026-03-04T10:00:00Z', 'bounded-extra'), '{"bounded": "extra"}'),
    (pg_temp.cc('onboarding-create', 'CONFIRMED', '2026-03-04T10:11:00Z', 'bounded-extra'), '{"bounded": "extra"}'),
    (pg_temp.cc('onboarding-proposal', 'RESOURCE_CREATED', '2026-03-04T10:12:00Z', 'bounded-extra'), '{"bounded": "extra"}');
BEGIN;
SET LOCAL client_min_messages = debug1;
INSERT INTO onboarding.inbox (payload, headers) VALUES
    (pg_temp.cc('onboarding-proposal', 'APPROVED', '2026-03-04T10:10:00Z', 'bounded-extra'), '{"bounded": "extra-late"}');
RESET client_min_messages;
COMMIT;
SELECT status_raw, outcome, detail FROM onboarding.inbox
 WHERE headers->>'bounded' IN ('extra', 'extra-late') ORDER BY event_at;
SELECT entity, from_status, to_status, event_at FROM onboarding.history
 WHERE entity_key = 'bounded-extra' ORDER BY event_at, id;
SELECT status, first_event_at, subjects FROM onboarding.account WHERE account_key = 'bounded-extra';

-- Both paths give what a replay from nothing gives.
SELECT count(*) AS verify_differences FROM onboarding.verify();

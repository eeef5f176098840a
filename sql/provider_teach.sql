-- Teaching a provider the extension has never seen, with SQL alone (SPEC
-- §1.4): a label of onboarding.provider, the rows of the rule tables of
-- extraction, a status code table (status_map) and a consequence.  It
-- delivers a flow, and state, history, the reports and timeline() follow;
-- then one row renames a field and rebuild() makes the earlier deliveries
-- follow too.  (This suite runs last: the label it adds stays.)
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default

ALTER TYPE onboarding.provider ADD VALUE IF NOT EXISTS 'acme';

CREATE FUNCTION pg_temp.acme(event text, at text, data jsonb) RETURNS text
    LANGUAGE sql AS $$
    SELECT i.provider || ' ' || coalesce(i.event_type, '-') || ' ' || coalesce(i.subject, '-') || ' '
           || i.outcome || coalesce(': ' || i.detail, '')
      FROM onboarding.ingest(jsonb_build_object('event', event, 'occurred_at', at, 'data', data)) i
    $$;

-- Before any rule, a body of this shape is nobody's: stored, unrecognized,
-- and an anomaly.
SELECT outcome, detail
  FROM onboarding.ingest('{"event": "application.started", "data": {"customer": {"document": "529.982.247-25"}}}');
SELECT outcome, detail
  FROM onboarding.ingest('{"event": "application.received", "occurred_at": "2025-05-30T09:00:00Z",
                           "data": {"customer": {"document": "147.258.369-82"}}}');
SELECT provider, event_type, outcome, detail FROM onboarding.anomalies
 WHERE id >= (SELECT min(id) FROM onboarding.inbox WHERE payload->>'event' = 'application.started') ORDER BY id;
-- Given by the caller, the provider is kept (it is evidence), and the
-- delivery waits for the rules.
SELECT provider, outcome, detail
  FROM onboarding.ingest('{"event": "application.received", "occurred_at": "2025-06-01T10:00:00Z",
                           "data": {"customer": {"document": "529.982.247-25"}}}', 'acme');

-- How an Acme body is recognised (a string "event"), where its event type
-- and its time are.
INSERT INTO onboarding.provider_rule (provider, title, position, marker, event_path, time_paths)
VALUES ('acme', 'Acme', 10, 'event', 'event', '{occurred_at}');

-- Its events: two families, told apart by a part of the name; rule_event
-- is the event_type their statuses are listed under in status_map.
INSERT INTO onboarding.event_rule (provider, event_type, match, rule_event) VALUES
    ('acme', 'application.', 'contains', 'application'),
    ('acme', 'account.',     'contains', 'account');

-- What each touches: an application its proposal; an account event its
-- account and, as a consequence, the proposal of the same person.
INSERT INTO onboarding.effect_rule (provider, event_type, entity, position, consequence) VALUES
    ('acme', 'application.', 'proposal', 1, false),
    ('acme', 'account.',     'account',  1, false),
    ('acme', 'account.',     'proposal', 2, true);

-- Where everything is: the status is the event name itself; a proposal is
-- keyed by the person's taxpayer number, an account by its id.  (The
-- account number is read from data.number: a guess, corrected below.)
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform) VALUES
    ('acme', '*', '*', 'status', 1, '{event}', 'status'),
    ('acme', 'application.', '*', 'subject', 1, '{data.customer.document}', 'taxid_key'),
    ('acme', 'application.', 'proposal', 'tax_id',      10, '{data.customer.document}', 'taxid'),
    ('acme', 'application.', 'proposal', 'person_type', 20, '{data.customer.document}', 'taxid_kind'),
    ('acme', 'account.', '*', 'subject', 1, '{data.account_id}', 'text'),
    ('acme', 'account.', 'account', 'tax_id', 10, '{data.customer.document}', 'taxid'),
    ('acme', 'account.', 'account', 'number', 20, '{data.number}', 'text'),
    ('acme', 'account.', 'proposal', 'key',         1, '{data.customer.document}', 'taxid_key'),
    ('acme', 'account.', 'proposal', 'account_key', 10, '{data.account_id}', 'text');

-- The status code table, and the consequence: an opened account settles
-- its application (a blocked one has no proposal row: it touches none).
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status, label) VALUES
    ('acme', 'application', 'application.received',  'proposal', 'created',     'Received'),
    ('acme', 'application', 'application.reviewing', 'proposal', 'in_analysis', 'Reviewing'),
    ('acme', 'application', 'application.approved',  'proposal', 'approved',    'Approved'),
    ('acme', 'application', 'application.rejected',  'proposal', 'rejected',    'Rejected'),
    ('acme', 'account', 'account.opened',  'account', 'active',  'Opened'),
    ('acme', 'account', 'account.blocked', 'account', 'blocked', 'Blocked'),
    ('acme', 'account', 'account.closed',  'account', 'closed',  'Closed'),
    ('acme', 'account', 'account.opened',  'proposal', 'account_created', NULL);

-- What the rules make of a body, before anything is stored.
SELECT onboarding.explain('{"event": "application.reviewing", "occurred_at": "2025-06-01T10:05:00Z",
                            "data": {"customer": {"document": "529.982.247-25"}}}') - 'effects' - 'rules' AS explained;
-- ... which rule gave each value, and from which path
SELECT r->>'value' AS value, r->>'rule' AS rule, r->>'path' AS path, r->>'read' AS read
  FROM jsonb_array_elements(onboarding.explain('{"event": "application.reviewing", "occurred_at": "2025-06-01T10:05:00Z",
                            "data": {"customer": {"document": "529.982.247-25"}}}')->'rules') AS r;

-- The deliveries that came before the rules are read again by rebuild():
-- the one given its provider, and those of no provider, which the rules
-- now recognise (their provider is filled in, as if they arrived now).
-- Each is derived as it would be today: state, history, no anomaly but
-- for an event the rules do not know.
SELECT onboarding.rebuild() > 0 AS rebuilt;
SELECT provider, event_type, subject, status_raw, event_at, outcome, detail
  FROM onboarding.inbox WHERE payload->>'event' LIKE 'application.%' ORDER BY id;
SELECT provider, proposal_key, status FROM onboarding.proposal WHERE proposal_key = '14725836982';
SELECT provider, entity, entity_key, from_status, to_status FROM onboarding.history
 WHERE entity_key = '14725836982';
SELECT provider, event_type, outcome, detail FROM onboarding.anomalies
 WHERE id >= (SELECT min(id) FROM onboarding.inbox WHERE payload->>'event' = 'application.started') ORDER BY id;
SELECT count(*) AS differences FROM onboarding.verify();

-- A flow: the application is reviewed and approved, the account opened
-- (which settles the application) and blocked; an event the rules do not
-- know, and one the graph forbids.
SELECT pg_temp.acme('application.reviewing', '2025-06-01T10:05:00Z',
                    '{"customer": {"document": "529.982.247-25"}}');
SELECT pg_temp.acme('application.approved', '2025-06-01T11:00:00Z',
                    '{"customer": {"document": "529.982.247-25"}}');
SELECT pg_temp.acme('account.opened', '2025-06-01T12:00:00Z',
                    '{"customer": {"document": "529.982.247-25"}, "account_id": "acme-1", "account_number": "12345-6"}');
SELECT pg_temp.acme('account.blocked', '2025-06-02T09:00:00Z',
                    '{"customer": {"document": "529.982.247-25"}, "account_id": "acme-1", "account_number": "12345-6"}');
SELECT pg_temp.acme('customer.updated', '2025-06-02T10:00:00Z',
                    '{"customer": {"document": "529.982.247-25"}}');
SELECT pg_temp.acme('application.reviewing', '2025-06-02T11:00:00Z',
                    '{"customer": {"document": "529.982.247-25"}}');
-- a taxpayer number that is not one: kept raw, keyed without its mask
SELECT pg_temp.acme('application.received', '2025-06-03T08:00:00Z',
                    '{"customer": {"document": "111.222.333-44"}}');

-- State
SELECT provider, proposal_key, status, provider_status, tax_id, tax_id_raw, person_type, account_key
  FROM onboarding.proposal WHERE provider = 'acme' ORDER BY proposal_key;
SELECT provider, account_key, status, provider_status, tax_id, number
  FROM onboarding.account WHERE provider = 'acme';

-- History
SELECT entity, entity_key, from_status, to_status, event_at
  FROM onboarding.history WHERE provider = 'acme' ORDER BY event_at, entity;

-- Reports
SELECT provider, entity, status, how_many, share FROM onboarding.funnel WHERE provider = 'acme' ORDER BY entity, status;
SELECT event_type, subject, outcome, detail FROM onboarding.anomalies WHERE provider = 'acme' ORDER BY id;
SELECT provider, entity, entity_key, status FROM onboarding.stuck('1 day')
 WHERE provider = 'acme' ORDER BY entity_key;
-- (the time-less delivery of before the rules is placed at its arrival)
SELECT CASE WHEN at < '2026-01-01' THEN at::text ELSE 'on arrival' END AS at,
       provider, entity, entity_key, from_status, to_status, outcome, detail
  FROM onboarding.timeline('529.982.247-25');

-- Acme's account number was never data.number: it is data.account_number.
-- One row says so, and rebuild() makes the earlier deliveries follow.
UPDATE onboarding.value_rule SET paths = '{data.account_number}'
 WHERE provider = 'acme' AND event_type = 'account.' AND entity = 'account' AND field = 'number';
SELECT provider, account_key, status, number FROM onboarding.account WHERE provider = 'acme';
SELECT onboarding.rebuild() > 0 AS rebuilt;
SELECT provider, account_key, status, number FROM onboarding.account WHERE provider = 'acme';
SELECT count(*) AS differences FROM onboarding.verify();

-- The rule tables refuse what the interpreter could not read: a path that
-- is not keys joined by dots, a template with an open placeholder, a tax
-- id read as text, a key read through a code table, an effect of an event
-- that has no rule.
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, paths, transform)
VALUES ('acme', 'account.', 'account', 'bank', '{data..bank}', 'text');
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, transform, arg)
VALUES ('acme', 'account.', 'account', 'digit', 'template', '{data.account_id');
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, paths, transform)
VALUES ('acme', 'account.', 'account', 'tax_id', '{data.customer.document}', 'text');
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, paths, transform, arg)
VALUES ('acme', 'account.', 'account', 'key', '{data.kind}', 'code', 'acme_kinds');
INSERT INTO onboarding.effect_rule (provider, event_type, entity) VALUES ('acme', 'loan.', 'account');

-- The file of the shipped providers, which the library reads while a 0.1.0
-- schema waits for its update, says what the shipped rows say.
SELECT pg_catalog.pg_read_file((SELECT setting FROM pg_catalog.pg_config WHERE name = 'SHAREDIR')
                               || '/extension/onboarding_providers.json')::jsonb
       = (SELECT jsonb_agg(to_jsonb(t) - 'shipped' ORDER BY position)
            FROM onboarding.provider_rule t WHERE shipped) AS shipped_file_agrees;

-- stuck() follows Acme's graph, whatever its statuses: a rejected
-- application is final in the shipped graph, so it is not stuck; a move
-- Acme makes from it (a person may apply again) makes it one still on its
-- way.
SELECT pg_temp.acme('application.rejected', '2025-06-03T09:00:00Z',
                    '{"customer": {"document": "111.222.333-44"}}');
SELECT provider, entity, entity_key, status FROM onboarding.stuck('1 day')
 WHERE provider = 'acme' ORDER BY entity_key;
INSERT INTO onboarding.transition (entity, provider, from_status, to_status)
VALUES ('proposal', 'acme', 'rejected', 'created');
SELECT provider, entity, entity_key, status FROM onboarding.stuck('1 day')
 WHERE provider = 'acme' ORDER BY entity_key;

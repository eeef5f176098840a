-- check_rules() (0.3.0): a provider taught with a mistake says which rule
-- and why, one mistake at a time; the correct rules say nothing.  Runs
-- after `binding`, which created the extension afresh.
SET timezone = 'UTC';
\set VERBOSITY default
ALTER TYPE onboarding.provider ADD VALUE IF NOT EXISTS 'acme';

-- Acme, taught correctly (README, "Teaching a new provider", in short)
INSERT INTO onboarding.provider_rule (provider, title, position, marker, event_path, time_paths)
VALUES ('acme', 'Acme', 10, 'event', 'event', '{occurred_at}');
INSERT INTO onboarding.event_rule (provider, event_type, match, rule_event) VALUES
    ('acme', 'application.', 'contains', 'application');
INSERT INTO onboarding.effect_rule (provider, event_type, entity) VALUES
    ('acme', 'application.', 'proposal');
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform, arg) VALUES
    ('acme', '*', '*', 'status', 1, '{event}', 'status', NULL),
    ('acme', 'application.', '*', 'subject', 1, '{data.customer.document}', 'taxid_key', NULL),
    ('acme', 'application.', 'proposal', 'person_type', 20, '{data.customer.kind}', 'code', 'acme_kind');
INSERT INTO onboarding.code_map (code_table, code, value) VALUES ('acme_kind', 'P', 'PF'), ('acme_kind', 'C', 'PJ');
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status) VALUES
    ('acme', 'application', 'application.received', 'proposal', 'created'),
    ('acme', 'application', 'application.approved', 'proposal', 'approved');
SELECT outcome, event_type, subject, event_at
  FROM onboarding.ingest('{"event": "application.received", "occurred_at": "2025-06-01T10:00:00Z",
                           "data": {"customer": {"document": "529.982.247-25", "kind": "P"}}}');
SELECT * FROM onboarding.check_rules('acme');

-- 1. a subject path that does not exist: named, with the deliveries it was tried on
UPDATE onboarding.value_rule SET paths = '{data.customer.doc}' WHERE provider = 'acme' AND field = 'subject';
SELECT * FROM onboarding.check_rules('acme');
UPDATE onboarding.value_rule SET paths = '{data.customer.document}' WHERE provider = 'acme' AND field = 'subject';

-- 2. a time path that does not exist
UPDATE onboarding.provider_rule SET time_paths = '{occurredAt}' WHERE provider = 'acme';
SELECT * FROM onboarding.check_rules('acme');
UPDATE onboarding.provider_rule SET time_paths = '{occurred_at}' WHERE provider = 'acme';

-- 3. a value_rule for an event no event_rule names
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform)
VALUES ('acme', 'applicaton.', 'proposal', 'client_code', 30, '{data.client}', 'text');
SELECT * FROM onboarding.check_rules('acme');
DELETE FROM onboarding.value_rule WHERE provider = 'acme' AND event_type = 'applicaton.';

-- 4. a status_map row under an event name nobody sends
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status)
VALUES ('acme', 'applications', 'application.rejected', 'proposal', 'rejected');
SELECT * FROM onboarding.check_rules('acme');
DELETE FROM onboarding.status_map WHERE provider = 'acme' AND event_type = 'applications';

-- 5. a code transform naming a code table that does not exist
UPDATE onboarding.value_rule SET arg = 'acme_kinds' WHERE provider = 'acme' AND field = 'person_type';
SELECT * FROM onboarding.check_rules('acme');
UPDATE onboarding.value_rule SET arg = 'acme_kind' WHERE provider = 'acme' AND field = 'person_type';

-- 6. a status the provider sends that no row maps: the deliveries are
-- stored unrecognized, and check_rules() says which status of which event
SELECT outcome, detail
  FROM onboarding.ingest('{"event": "application.frozen", "occurred_at": "2025-06-01T11:00:00Z",
                           "data": {"customer": {"document": "529.982.247-25", "kind": "P"}}}');
SELECT * FROM onboarding.check_rules('acme');
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status)
VALUES ('acme', 'application', 'application.frozen', 'proposal', 'pending');
SELECT onboarding.rebuild() > 0 AS rebuilt;

-- Correct again: nothing to say, for Acme and for the shipped providers
SELECT * FROM onboarding.check_rules('acme');
SELECT count(*) AS problems FROM onboarding.check_rules();
SELECT count(*) AS verify_rows FROM onboarding.verify();

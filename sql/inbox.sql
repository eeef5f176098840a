-- The inbox: every delivery stored, with an outcome; evidence never changes.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default

-- A plain INSERT with a jsonb payload: detected, derived, applied.
INSERT INTO onboarding.inbox (payload) VALUES
  ('{"webhook_type": "account_request.status_change", "key": "acc-1",
     "status": "pending_kyc_analysis", "event_datetime": "2024-05-01 10:00:00"}')
RETURNING id, provider, event_type, subject, status_raw, event_at, outcome, detail;

-- ingest() returns the stored row, outcome included.
SELECT id, provider, event_type, subject, status_raw, event_at, outcome, detail
  FROM onboarding.ingest('{"webhook_type": "account_request.status_change", "key": "acc-1",
                           "status": "pending_additional_data",
                           "event_datetime": "2024-05-01T10:05:00"}');

-- The same body again is a duplicate, whatever its key order or spacing.
SELECT id, outcome, detail, duplicate_of
  FROM onboarding.ingest('{"key": "acc-1", "event_datetime": "2024-05-01T10:05:00",
                           "status": "pending_additional_data",
                           "webhook_type": "account_request.status_change"}');
-- ... and through ingest_text too, since duplicates compare canonical jsonb.
SELECT id, outcome, detail
  FROM onboarding.ingest_text('{"webhook_type":"account_request.status_change","key":"acc-1","status":"pending_additional_data","event_datetime":"2024-05-01T10:05:00"}');
-- The same body under another provider is not a duplicate (it is unrecognized there).
SELECT id, provider, outcome, detail
  FROM onboarding.ingest('{"webhook_type": "account_request.status_change", "key": "acc-1",
                           "status": "pending_additional_data",
                           "event_datetime": "2024-05-01T10:05:00"}', 'fitbank');

-- The known provider defect: an unquoted bare word, repaired and classified;
-- raw keeps the body byte for byte.
SELECT id, provider, event_type, subject, status_raw, event_at, outcome, detail,
       payload ->> 'Method' AS method,
       raw = E'{\n"TaxNumber": "05333581916",\n"SendDate": "0001-01-01T00:00:00",\n"AccountConditionType": 0,\n"AccountStatus": 1,\n"AccountKey": "",\n"Method": UpdateAccount\n}' AS raw_kept
  FROM onboarding.ingest_text(E'{\n"TaxNumber": "05333581916",\n"SendDate": "0001-01-01T00:00:00",\n"AccountConditionType": 0,\n"AccountStatus": 1,\n"AccountKey": "",\n"Method": UpdateAccount\n}');

-- Not JSON at all: stored as invalid, the text intact, payload NULL.
SELECT id, provider, outcome, detail, payload IS NULL AS no_payload, raw
  FROM onboarding.ingest_text('<html><body>502 Bad Gateway</body></html>');
SELECT outcome, detail FROM onboarding.ingest_text('');
SELECT outcome, detail FROM onboarding.ingest_text('{"Method": "UpdateAccount", "AccountKey": ');
SELECT outcome, detail FROM onboarding.ingest_text('{"a": "\u0000"}');
SELECT outcome, detail FROM onboarding.ingest_text('{"a": 1e200000}');
SELECT outcome, detail FROM onboarding.ingest_text('{"a": 1e-16384}');
-- ... but what numeric can hold is fine, as it is through ingest()
SELECT outcome FROM onboarding.ingest_text('{"a": 1e131071, "b": 1e-16383}');
SELECT outcome, detail FROM onboarding.ingest_text(repeat('[', 5000) || repeat(']', 5000));
-- Deep but reasonable nesting is fine (and unrecognized: it is no provider's).
SELECT outcome, detail FROM onboarding.ingest_text(repeat('{"a":', 500) || '1' || repeat('}', 500));
-- A scalar or an array body is stored too.
SELECT outcome, detail FROM onboarding.ingest('"just a string"');
SELECT outcome, detail FROM onboarding.ingest('[{"Method": "UpdateAccount"}]');
-- When raw and payload are both given, payload is what is read; raw is kept.
INSERT INTO onboarding.inbox (payload, raw)
VALUES ('{"Method": "UpdateCloseAccount", "AccountKey": "k-1", "CloseAccountInformationStatus": 0}',
        '{ "Method" : "UpdateCloseAccount", "AccountKey":"k-1", "CloseAccountInformationStatus":0 }')
RETURNING provider, event_type, outcome, raw IS NOT NULL AS raw_kept;

-- Only a row with neither payload nor raw is refused.
INSERT INTO onboarding.inbox (provider, headers) VALUES ('celcoin', '{"x-id": "1"}');
SELECT onboarding.ingest(NULL);
SELECT onboarding.ingest_text(NULL);

-- Headers are kept for audit.
SELECT headers FROM onboarding.ingest('{"entity": "onboarding-proposal", "status": "CREATED",
                                        "body": {"proposalId": "p-h"}}', NULL,
                                      '{"X-Webhook-Id": "abc", "Content-Type": "application/json"}');

-- Evidence is immutable, for every role, the owner included.
UPDATE onboarding.inbox SET payload = '{}' WHERE id = 1;
UPDATE onboarding.inbox SET raw = 'x' WHERE id = 1;
UPDATE onboarding.inbox SET headers = '{}' WHERE id = 1;
UPDATE onboarding.inbox SET provider = 'celcoin' WHERE id = 1;
UPDATE onboarding.inbox SET received_at = now() WHERE id = 1;
UPDATE onboarding.inbox SET id = 1000 WHERE id = 1;
-- Derived columns are rewritten by rebuild() alone.
UPDATE onboarding.inbox SET outcome = 'invalid' WHERE id = 1;
DELETE FROM onboarding.inbox WHERE id = 1;
TRUNCATE onboarding.inbox;
SELECT count(*) AS still_there FROM onboarding.inbox;
-- A caller cannot pretend to be force_status() (only the inbox's owner may,
-- so that pg_restore can reload overrides).
CREATE ROLE onboarding_inbox_app;
GRANT USAGE ON SCHEMA onboarding TO onboarding_inbox_app;
GRANT INSERT ON onboarding.inbox TO onboarding_inbox_app;
SET ROLE onboarding_inbox_app;
INSERT INTO onboarding.inbox (provider, payload, forced_by)
VALUES ('qitech', '{"entity": "account", "key": "acc-1", "status": "closed", "reason": "x"}', 'me');
-- ... while a plain INSERT works for the application role, and derives state.
INSERT INTO onboarding.inbox (payload) VALUES
  ('{"webhook_type": "account_request.status_change", "key": "acc-2",
     "status": "pending_bacen_validation", "event_datetime": "2024-05-01 09:00:00"}');
-- ... cannot choose a delivery's id (only the owner restores rows) ...
INSERT INTO onboarding.inbox (id, payload) OVERRIDING SYSTEM VALUE VALUES (1000000, '{}');
-- ... and cannot change the time zone naive times are read in.
SELECT onboarding.set_timezone('UTC');
RESET ROLE;
SELECT account_key, status FROM onboarding.account WHERE account_key = 'acc-2';
-- The owner may: a row with a chosen id beyond the sequence is a restore,
-- stored exactly as dumped (derived columns included, no derivation).
BEGIN;
INSERT INTO onboarding.inbox (id, payload, event_type, subject, outcome, detail)
OVERRIDING SYSTEM VALUE
VALUES (1000000, '{"webhook_type": "account", "key": "restored-1", "status": "account_opened"}',
        'account', 'restored-1', 'stale', 'as dumped')
RETURNING id, provider, event_type, subject, outcome, detail;
SELECT count(*) AS no_state_derived FROM onboarding.account WHERE account_key = 'restored-1';
ROLLBACK;
DROP OWNED BY onboarding_inbox_app;
DROP ROLE onboarding_inbox_app;

-- Times: naive times are read in the zone of onboarding.settings
-- (America/Sao_Paulo when it has no row: UTC-03 since 2019, UTC-02 in the
-- summer before); offsets and Z are honoured; 7-digit fractions are rounded
-- half up to microseconds; the .NET sentinel means "no time"; a time that is
-- no time is noted and ignored.
SELECT count(*) AS settings_rows FROM onboarding.settings;
CREATE TEMP TABLE times (sent text);
INSERT INTO times VALUES
  ('2022-09-02 22:39:39'), ('2022-09-02T22:39:39'), ('2022-09-02T22:39:39Z'),
  ('2022-09-02T22:39:39-03:00'), ('2022-09-02T22:39:39+0000'), ('2022-09-02T22:39:39.5'),
  ('2022-02-18T15:02:00.6350911-03:00'), ('2026-04-20T16:17:49.7648038'),
  ('2026-04-20T16:17:49.9999995'), ('2026-04-20T16:17:49.12345649'), ('2018-01-15 10:00:00'),
  ('2024-02-29 12:00'), ('0001-01-01T00:00:00'), ('0001-01-01T00:00:00.0000000'),
  ('2024-02-30 12:00:00'), ('2024-13-01 00:00:00'), ('yesterday'), ('2024-05-01 25:00:00'),
  ('2024-05-01'), ('');
SELECT t.sent, i.event_at, i.detail
  FROM times t,
       LATERAL onboarding.ingest(jsonb_build_object('Method', 'UpdateCloseAccount',
                                                    'AccountKey', 'time-' || t.sent,
                                                    'CloseAccountInformationStatus', 0,
                                                    'SendDate', t.sent)) i;
SELECT event_at, detail
  FROM onboarding.ingest('{"Method": "UpdateCloseAccount", "AccountKey": "time-number",
                           "CloseAccountInformationStatus": 0, "SendDate": 20240501}');
-- The zone is one value for the whole database, changed only by
-- set_timezone(), which checks it as PostgreSQL checks TimeZone and
-- re-derives every delivery with it.
SELECT onboarding.set_timezone('Mars/Olympus_Mons');
SELECT onboarding.set_timezone('UTC') > 0 AS rederived;
SELECT event_at FROM onboarding.ingest('{"Method": "UpdateCloseAccount", "AccountKey": "time-utc",
                                         "CloseAccountInformationStatus": 0,
                                         "SendDate": "2022-09-02 22:39:39"}');
SELECT onboarding.set_timezone('America/Sao_Paulo') > 0 AS rederived;
SELECT event_at FROM onboarding.inbox WHERE subject = 'time-utc';

-- explain(): a dry run that writes nothing.
SELECT count(*) AS deliveries_before FROM onboarding.inbox \gset
SELECT jsonb_pretty(onboarding.explain('{"webhook_type": "account_request.status_change",
    "key": "acc-1", "status": "rejected", "rejection_reason": "UNSC",
    "event_datetime": "2024-05-01 11:00:00"}') - 'rules');
-- ... and where each value came from: the rule row, the path, what was read
-- (0.3.0); a value no rule could give has no rule, and lists the paths
-- tried in vain (here the account fields this body does not carry; below,
-- a body without its key and time).
SELECT r->>'value' AS value, r->>'rule' AS rule, r->>'path' AS path, r->>'read' AS read,
       r->'unresolved' AS unresolved
  FROM jsonb_array_elements(onboarding.explain('{"webhook_type": "account_request.status_change",
    "key": "acc-1", "status": "rejected", "rejection_reason": "UNSC",
    "event_datetime": "2024-05-01 11:00:00"}')->'rules') AS r;
SELECT r->>'value' AS value, r->>'rule' AS rule, r->>'path' AS path, r->'unresolved' AS unresolved
  FROM jsonb_array_elements(onboarding.explain('{"webhook_type": "account_request.status_change",
    "status": "rejected"}')->'rules') AS r
 WHERE r->>'rule' IS NULL;
SELECT onboarding.explain('{"webhook_type": "account_request.status_change", "key": "acc-1",
    "status": "pending_bacen_validation", "event_datetime": "2024-05-01 09:00:00"}') ->> 'outcome' AS older;
SELECT onboarding.explain('{"webhook_type": "account_request.status_change", "key": "acc-1",
    "status": "account_opened", "event_datetime": "2024-05-01 12:00:00"}') -> 'effects' AS effects;
SELECT onboarding.explain('{"key": "acc-1", "event_datetime": "2024-05-01T10:05:00",
    "status": "pending_additional_data",
    "webhook_type": "account_request.status_change"}') ->> 'detail' AS duplicate;
SELECT onboarding.explain('{"hello": "world"}') ->> 'outcome' AS unknown;
SELECT count(*) = :deliveries_before AS nothing_written FROM onboarding.inbox;

SELECT outcome, count(*) FROM onboarding.inbox GROUP BY outcome ORDER BY outcome;

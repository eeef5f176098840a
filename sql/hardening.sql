-- Hardening (0.2.0): what an audit tried as a hostile user would, each fixed
-- at its root.  Every check here failed on 0.1.0.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default

-- Text the extension writes is valid in the database encoding: the detail
-- that quotes an over-long key cuts it on a character boundary.  (convert_from
-- raises on an invalid byte sequence.)
INSERT INTO onboarding.inbox (payload)
SELECT jsonb_build_object('webhook_type', 'account_request.status_change',
                          'key', 'x' || repeat('çãé€😀', 120), 'status', 'pending_kyc_analysis')
RETURNING outcome, subject, octet_length(detail) AS detail_bytes,
          convert_from(convert_to(detail, 'UTF8'), 'UTF8') = detail AS detail_valid,
          left(detail, 90) AS detail_begins;

-- ... and the same for derived keys (Celcoin <proposalId>:<type>, Fitbank
-- <taxpayer>:<type>), whose duplicates replay alike: verify() stays empty.
INSERT INTO onboarding.inbox (payload)
SELECT jsonb_build_object('entity', 'onboarding-file', 'status', 'CREATED',
                          'createTimestamp', '2026-06-01T13:00:00Z',
                          'body', jsonb_build_object('proposalId', repeat('ü', 600),
                                                     'files', jsonb_build_array(jsonb_build_object('type', 'SELFIE', 'url', 'u'))))
  FROM generate_series(1, 2)
RETURNING outcome, subject IS NULL AS no_subject, convert_from(convert_to(detail, 'UTF8'), 'UTF8') = detail AS detail_valid;
INSERT INTO onboarding.inbox (payload)
SELECT jsonb_build_object('Method', 'UpdatePersonDocument', 'TaxNumber', repeat('9', 1100),
                          'Document', jsonb_build_object('DocumentKey', '', 'DocumentType', 14, 'DocumentStatus', 4))
  FROM generate_series(1, 2)
RETURNING outcome, subject IS NULL AS no_subject;
-- unexpected JSON types in the fields the pipeline reads, delivered twice
INSERT INTO onboarding.inbox (payload)
SELECT b FROM (VALUES
    ('{"webhook_type": "account_request.status_change", "key": {"a": 1}, "status": "rejected"}'::jsonb),
    ('{"webhook_type": "account_request.status_change", "key": "h-types", "status": ["rejected"]}'),
    ('{"Method": "UpdateAccount", "AccountKey": 42, "AccountConditionType": "2", "SendDate": true}'),
    ('{"entity": "onboarding-proposal", "status": "CREATED", "body": {"proposalId": 7}}'),
    ('{"entity": "onboarding-file", "status": "CREATED", "body": {"proposalId": "h-f", "files": {"type": "SELFIE"}}}')
  ) v (b), generate_series(1, 2)
RETURNING outcome, subject, CASE WHEN duplicate_of IS NULL THEN left(detail, 70) END AS detail;
SELECT count(*) AS differences FROM onboarding.verify();

-- explain() runs the same checks as the trigger: it says invalid for a body
-- stored invalid.
SELECT onboarding.explain(jsonb_build_object('webhook_type', 'account_request.status_change',
                          'key', repeat('k', 1100), 'status', 'rejected')) ->> 'outcome' AS explained;

-- A leading UTF-8 byte-order mark is not JSON: it is skipped, raw is kept.
SELECT outcome, octet_length(raw) - octet_length(payload::text) >= 3 AS raw_kept_verbatim,
       left(raw, 1) = U&'\FEFF' AS raw_starts_with_bom
  FROM onboarding.ingest_text(U&'\FEFF' || '{"webhook_type": "account", "key": "h-bom", "status": "account_opened"}');

-- Wording: "is an object", not "is a object".
SELECT detail FROM onboarding.ingest('{"webhook_type": "account_request.status_change", "key": "h-word",
    "status": "pending_kyc_analysis", "event_datetime": {"at": 1}}');

-- A user's AFTER INSERT trigger on the inbox that writes state works: it sees
-- the state the delivery derived, and the pipeline does not lose its write.
CREATE TABLE public.hardening_seen (account_key text, status text);
CREATE FUNCTION public.hardening_after() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.hardening_seen
    SELECT account_key, status FROM onboarding.account WHERE account_key = NEW.subject;
    UPDATE onboarding.account SET holder_name = 'seen by a trigger'
     WHERE provider = NEW.provider AND account_key = NEW.subject;
    RETURN NULL;
END $$;
-- (an UPDATE of a state table is itself recorded as a delivery, forced_by
-- its role: a trigger that writes state skips those, or it would fire again)
CREATE TRIGGER hardening_after AFTER INSERT ON onboarding.inbox
    FOR EACH ROW WHEN (NEW.forced_by IS NULL) EXECUTE FUNCTION public.hardening_after();
INSERT INTO onboarding.inbox (payload) VALUES
  ('{"webhook_type": "account_request.status_change", "key": "h-trig", "status": "pending_kyc_analysis",
     "event_datetime": "2024-05-01 10:00:00"}'),
  ('{"webhook_type": "account_request.status_change", "key": "h-trig", "status": "account_rejected",
     "event_datetime": "2024-05-01 11:00:00"}');
SELECT * FROM public.hardening_seen ORDER BY status;
SELECT account_key, status, holder_name FROM onboarding.account WHERE account_key = 'h-trig';
DROP TRIGGER hardening_after ON onboarding.inbox;

-- A BEFORE INSERT trigger that would fire after the pipeline (it could drop
-- or change a delivery already derived) is refused, clearly.
CREATE FUNCTION public.hardening_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RETURN NULL; END $$;
CREATE TRIGGER zz_drop_everything BEFORE INSERT ON onboarding.inbox
    FOR EACH ROW EXECUTE FUNCTION public.hardening_before();
INSERT INTO onboarding.inbox (payload) VALUES ('{"webhook_type": "account", "key": "h-zz", "status": "account_opened"}');
DROP TRIGGER zz_drop_everything ON onboarding.inbox;

-- One statement that delivers and writes the same state is refused up front,
-- with the supported way in the hint; nothing is half-done.
WITH d AS (INSERT INTO onboarding.inbox (payload) VALUES
    ('{"webhook_type": "account_request.status_change", "key": "h-trig", "status": "pending_kyc_analysis",
       "event_datetime": "2024-05-01 12:00:00"}') RETURNING subject)
UPDATE onboarding.account SET holder_name = 'cte' WHERE account_key IN (SELECT subject FROM d);
SELECT count(*) AS h_trig_deliveries FROM onboarding.inbox WHERE subject = 'h-trig';

-- The owner's INSERT ... OVERRIDING SYSTEM VALUE ... ON CONFLICT DO NOTHING
-- on an id that exists derives nothing from the row it discards.
SELECT min(id) AS taken FROM onboarding.inbox \gset
INSERT INTO onboarding.inbox (id, payload) OVERRIDING SYSTEM VALUE
VALUES (:taken, '{"webhook_type": "account", "key": "h-discarded", "status": "account_opened"}')
ON CONFLICT DO NOTHING;
SELECT count(*) AS discarded_account_rows FROM onboarding.account WHERE account_key = 'h-discarded';

-- The same with the latest id the sequence handed out, from a function (the
-- statement with ON CONFLICT is not the top-level one), and without ON
-- CONFLICT: the taken id fails the statement, and what it derived with it.
SELECT max(id) AS latest FROM onboarding.inbox \gset
CREATE FUNCTION pg_temp.redeliver(bigint) RETURNS void LANGUAGE sql AS $$
    INSERT INTO onboarding.inbox (id, payload) OVERRIDING SYSTEM VALUE
    VALUES ($1, '{"webhook_type": "account", "key": "h-discarded-2", "status": "account_opened"}')
    ON CONFLICT DO NOTHING $$;
SELECT pg_temp.redeliver(:latest);
\set VERBOSITY terse
INSERT INTO onboarding.inbox (id, payload) OVERRIDING SYSTEM VALUE
VALUES (:latest, '{"webhook_type": "account", "key": "h-discarded-3", "status": "account_opened"}');
\set VERBOSITY default
SELECT count(*) AS discarded_account_rows FROM onboarding.account
 WHERE account_key IN ('h-discarded-2', 'h-discarded-3');

-- force_status(): an unknown key is refused (it would create an entity out
-- of nothing), and so is a key no entity can have.
SELECT onboarding.force_status('account', 'qitech', 'h-no-such-account', 'blocked', 'typo');
SELECT onboarding.force_status('account', 'qitech', repeat('é', 600), 'blocked', 'too long');

-- The zone naive times are read in: one value for the database, PostgreSQL's
-- own syntax and sign ('-03' is three hours behind UTC, as SET TIME ZONE -3).
SELECT z, onboarding.is_timezone(z) FROM (VALUES ('America/Sao_Paulo'), ('-03'), ('UTC'),
    ('<-03>+3'), ('Mars/Olympus_Mons'), (''), ('99')) v (z);
BEGIN;
SELECT onboarding.set_timezone('-03') > 0 AS rederived;
SELECT event_at FROM onboarding.ingest('{"Method": "UpdateCloseAccount", "AccountKey": "h-tz",
                                         "CloseAccountInformationStatus": 0,
                                         "SendDate": "2022-09-02 22:39:39"}');
SELECT timezone FROM onboarding.settings;
ROLLBACK;
SET onboarding.timezone = 'UTC';

-- Reports on time-less deliveries: a Fitbank document (no time in the body)
-- is measured by when it was received; a Celcoin file is settled once its
-- proposal leaves analysis.
SELECT outcome, event_at FROM onboarding.ingest('{"Method": "UpdatePersonDocument", "TaxNumber": "61512061263",
    "Document": {"DocumentKey": "h-doc-1", "DocumentType": 14, "DocumentStatus": 4}}');
SELECT document_key, last_event_at, last_received_at IS NOT NULL AS has_received_at
  FROM onboarding.document WHERE document_key = 'h-doc-1';
SELECT entity, entity_key, status FROM onboarding.stuck('-1 hour') WHERE entity_key = 'h-doc-1';
INSERT INTO onboarding.inbox (payload) VALUES
  ('{"entity": "onboarding-proposal", "createTimestamp": "2026-06-01T13:00:00Z", "status": "CREATED",
     "body": {"proposalId": "h-prop"}}'),
  ('{"entity": "onboarding-file", "createTimestamp": "2026-06-01T13:01:00Z", "status": "CREATED",
     "body": {"proposalId": "h-prop", "files": [{"type": "SELFIE", "url": "https://x/1"}]}}');
SELECT document_key, status FROM onboarding.pending_documents WHERE document_key LIKE 'h-prop:%';
INSERT INTO onboarding.inbox (payload) VALUES
  ('{"entity": "onboarding-proposal", "createTimestamp": "2026-06-01T14:00:00Z", "status": "APPROVED",
     "body": {"proposalId": "h-prop"}}');
SELECT document_key, status FROM onboarding.pending_documents WHERE document_key LIKE 'h-prop:%';
SELECT count(*) AS stuck_files FROM onboarding.stuck('-1 hour') WHERE entity_key LIKE 'h-prop:%';

-- The trigger's direct UPDATE is in the log (an operator's delivery), so a
-- replay writes it too.
SELECT count(*) AS differences FROM onboarding.verify();

-- Every legal direct UPDATE is recorded as an operator's delivery (event
-- type direct_update, forced_by the role): the log stays complete and
-- rebuild() writes what the UPDATE wrote, statuses, fields and history.
UPDATE onboarding.account SET status = 'blocked', holder_name = 'Operator Fix', bank = NULL
 WHERE provider = 'qitech' AND account_key = 'h-bom';
SELECT event_type, subject, status_raw, outcome, forced_by IS NOT NULL AS by_role,
       payload -> 'statuses' AS statuses, payload -> 'fields' AS fields
  FROM onboarding.inbox WHERE event_type = 'direct_update' ORDER BY id DESC LIMIT 1;
SELECT status, holder_name, bank FROM onboarding.account WHERE account_key = 'h-bom';
SELECT from_status, to_status, event_at FROM onboarding.history
 WHERE entity_key = 'h-bom' ORDER BY id;
-- only a column of yours changed: nothing to record
ALTER TABLE onboarding.account ADD COLUMN hardening_note text;
UPDATE onboarding.account SET hardening_note = 'mine' WHERE account_key = 'h-bom';
SELECT count(*) AS direct_updates FROM onboarding.inbox WHERE event_type = 'direct_update';
ALTER TABLE onboarding.account DROP COLUMN hardening_note;
-- what only the pipeline writes stays the pipeline's
UPDATE onboarding.account SET last_event_at = now() WHERE account_key = 'h-bom';
SELECT count(*) AS differences FROM onboarding.verify();
SELECT onboarding.rebuild() > 0 AS rebuilt;
SELECT status, holder_name, bank FROM onboarding.account WHERE account_key = 'h-bom';
SELECT count(*) AS differences FROM onboarding.verify();
-- A body of kind direct_update is the record of a change already written:
-- the inbox's owner who inserts one by hand stores it (applied) without
-- deriving it, so state and the log differ until a replay derives it.
INSERT INTO onboarding.inbox (provider, payload, forced_by)
VALUES ('qitech', '{"kind": "direct_update", "entity": "account", "key": "h-bom",
                    "statuses": {"account": "active"}, "fields": {}, "by": "dba",
                    "at": "2025-06-01T00:00:00Z"}', 'dba')
RETURNING event_type, subject, outcome;
SELECT status FROM onboarding.account WHERE account_key = 'h-bom';
SELECT count(*) > 0 AS differs FROM onboarding.verify();
SELECT onboarding.rebuild() > 0 AS rebuilt;
SELECT status FROM onboarding.account WHERE account_key = 'h-bom';
SELECT count(*) AS differences FROM onboarding.verify();
DROP TABLE public.hardening_seen;
DROP FUNCTION public.hardening_after();
DROP FUNCTION public.hardening_before();
-- The inbox's trigger functions read the inbox's columns: fired on any
-- other table they refuse, whatever its columns.
CREATE TABLE public.hardening_not_inbox (note text);
CREATE TRIGGER not_inbox BEFORE INSERT ON public.hardening_not_inbox
    FOR EACH ROW EXECUTE FUNCTION onboarding.inbox_before_insert();
CREATE TRIGGER not_inbox_update BEFORE UPDATE ON public.hardening_not_inbox
    FOR EACH ROW EXECUTE FUNCTION onboarding.inbox_before_update();
INSERT INTO public.hardening_not_inbox VALUES ('x');
DROP TRIGGER not_inbox ON public.hardening_not_inbox;
INSERT INTO public.hardening_not_inbox VALUES ('x');
UPDATE public.hardening_not_inbox SET note = 'y';
DROP TABLE public.hardening_not_inbox;
-- The inbox has no CHECK constraint: its trigger refuses a row without a
-- body on every path, an owner's restore (an id beyond the sequence) too.
INSERT INTO onboarding.inbox (id, provider, payload, raw, outcome)
OVERRIDING SYSTEM VALUE VALUES (1000000000, 'qitech', NULL, NULL, 'applied');
SELECT count(*) AS stored FROM onboarding.inbox WHERE id = 1000000000;

-- 0.3.0: what an audit of 0.2.0 found, each refused clearly or made to work.
-- A user's AFTER INSERT trigger on the inbox that updates the state row,
-- without skipping the records of direct updates: the record fires it
-- again before the first UPDATE is written; refused with the way out in
-- the hint (it recursed until the stack ran out).
CREATE FUNCTION public.hardening_recurse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE onboarding.account SET holder_name = 'seen again'
     WHERE provider = NEW.provider AND account_key = NEW.subject;
    RETURN NULL;
END $$;
CREATE TRIGGER hardening_recurse AFTER INSERT ON onboarding.inbox
    FOR EACH ROW EXECUTE FUNCTION public.hardening_recurse();
\set VERBOSITY terse
INSERT INTO onboarding.inbox (payload) VALUES
  ('{"webhook_type": "account_request.status_change", "key": "h-recurse", "status": "pending_kyc_analysis",
     "event_datetime": "2024-05-01 10:00:00"}');
\set VERBOSITY default
SELECT count(*) AS h_recurse_deliveries FROM onboarding.inbox WHERE subject = 'h-recurse';
-- with WHEN (NEW.forced_by IS NULL), as the hint says, it works
DROP TRIGGER hardening_recurse ON onboarding.inbox;
CREATE TRIGGER hardening_recurse AFTER INSERT ON onboarding.inbox
    FOR EACH ROW WHEN (NEW.forced_by IS NULL) EXECUTE FUNCTION public.hardening_recurse();
INSERT INTO onboarding.inbox (payload) VALUES
  ('{"webhook_type": "account_request.status_change", "key": "h-recurse", "status": "pending_kyc_analysis",
     "event_datetime": "2024-05-01 10:00:00"}');
SELECT account_key, status, holder_name FROM onboarding.account WHERE account_key = 'h-recurse';
DROP TRIGGER hardening_recurse ON onboarding.inbox;
DROP FUNCTION public.hardening_recurse();

-- The library loads when the first statement of a connection fires its
-- trigger, after that statement started: the checks of a statement's start
-- still hold for it.  A fresh connection for each case.
-- A CTE that delivers and updates the same account, either way round:
\c
WITH d AS (INSERT INTO onboarding.inbox (payload) VALUES
    ('{"webhook_type": "account_request.status_change", "key": "h-recurse", "status": "account_rejected",
       "event_datetime": "2024-05-01 12:00:00"}') RETURNING subject)
UPDATE onboarding.account SET holder_name = 'cte' WHERE account_key IN (SELECT subject FROM d);
\c
WITH u AS (UPDATE onboarding.account SET holder_name = 'cte' WHERE account_key = 'h-recurse' RETURNING 1)
INSERT INTO onboarding.inbox (payload) VALUES
    ('{"webhook_type": "account_request.status_change", "key": "h-recurse", "status": "account_rejected",
       "event_datetime": "2024-05-01 12:00:00"}');
-- ... and inside a DO block, whose statement the connection's portal does not show
\c
\set VERBOSITY terse
DO $$ BEGIN
WITH d AS (INSERT INTO onboarding.inbox (payload) VALUES
    ('{"webhook_type": "account_request.status_change", "key": "h-recurse", "status": "account_rejected",
       "event_datetime": "2024-05-01 12:00:00"}') RETURNING subject)
UPDATE onboarding.account SET holder_name = 'cte' WHERE account_key IN (SELECT subject FROM d);
END $$;
\set VERBOSITY default
SELECT count(*) AS h_recurse_deliveries, max(holder_name) AS holder
  FROM onboarding.inbox i JOIN onboarding.account a ON a.account_key = i.subject
 WHERE subject = 'h-recurse';
-- The owner's INSERT ... ON CONFLICT DO NOTHING on the id of the latest
-- delivery of the same account, as a connection's first statement and from
-- a DO block: nothing is derived from the row it discards.
SELECT max(id) AS h_latest FROM onboarding.inbox WHERE subject = 'h-recurse' \gset
\c
INSERT INTO onboarding.inbox (id, payload) OVERRIDING SYSTEM VALUE
VALUES (:h_latest, '{"webhook_type": "account_request.status_change", "key": "h-recurse", "status": "account_rejected",
                     "event_datetime": "2024-05-01 19:00:00"}')
ON CONFLICT DO NOTHING;
\c
DO $$ BEGIN
INSERT INTO onboarding.inbox (id, payload) OVERRIDING SYSTEM VALUE
VALUES ((SELECT max(id) FROM onboarding.inbox WHERE subject = 'h-recurse'),
        '{"webhook_type": "account_request.status_change", "key": "h-recurse", "status": "account_rejected",
          "event_datetime": "2024-05-01 09:00:00"}')
ON CONFLICT DO NOTHING;
END $$;
SELECT account_key, status FROM onboarding.account WHERE account_key = 'h-recurse';

-- The statuses are a fixed vocabulary: a label added to a status enum (or
-- one renamed) would be dropped by the transition graphs; refused at DDL time.
ALTER TYPE onboarding.account_status ADD VALUE 'frozen';
ALTER TYPE onboarding.document_status RENAME VALUE 'expired' TO 'lapsed';
SELECT pg_catalog.array_length(enum_range(NULL::onboarding.account_status), 1) AS account_labels;

-- Every case left the log and the state in agreement.
SELECT count(*) AS verify_rows FROM onboarding.verify();

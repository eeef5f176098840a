-- binding: what a user adds to the state tables and history binds the
-- pipeline's writes as it binds the user's own (SPEC §4.2.1).  On each of
-- account, proposal, document, closure and history: a column with a
-- DEFAULT and NOT NULL, a stored generated column, a CHECK and a unique
-- index the pipeline can break, a row trigger and a statement trigger, a
-- foreign key from a user table, and row-level security read by reports.
-- Then a Fitbank person's whole flow (account, documents, proposal,
-- closure, the account closed by its approved closure) arrives out of
-- order, with a second person whose rows collide with the first's.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
-- (the suites share a database: this one starts from a fresh extension, and
-- runs last)
SET client_min_messages = warning;
DROP EXTENSION onboarding CASCADE;
CREATE EXTENSION onboarding;
RESET client_min_messages;

CREATE TABLE public.changes (n serial, tg text, tab text, op text, key text, status text,
                             tenant text);
-- (qualified names: the pipeline runs with search_path = pg_catalog, pg_temp)
CREATE FUNCTION public.note_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.changes (tg, tab, op, key, status, tenant)
    VALUES (TG_NAME, TG_TABLE_NAME, TG_OP,
            to_jsonb(coalesce(NEW, OLD)) ->> TG_ARGV[0],
            to_jsonb(coalesce(NEW, OLD)) ->> TG_ARGV[1],
            to_jsonb(coalesce(NEW, OLD)) ->> 'tenant');
    RETURN NULL;
END $$;
CREATE FUNCTION public.note_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.changes (tg, tab, op) VALUES (TG_NAME, TG_TABLE_NAME, TG_OP);
    RETURN NULL;
END $$;

-- account
ALTER TABLE onboarding.account ADD COLUMN tenant text NOT NULL DEFAULT 'acme';
ALTER TABLE onboarding.account ADD COLUMN number_digits int
    GENERATED ALWAYS AS (length(number)) STORED;
ALTER TABLE onboarding.account ADD CONSTRAINT never_limited CHECK (status <> 'limited');
CREATE UNIQUE INDEX account_number_once ON onboarding.account (number);
CREATE TRIGGER account_noted AFTER INSERT OR UPDATE OR DELETE ON onboarding.account
    FOR EACH ROW EXECUTE FUNCTION public.note_row('account_key', 'status');
CREATE TRIGGER account_statement AFTER INSERT OR UPDATE ON onboarding.account
    FOR EACH STATEMENT EXECUTE FUNCTION public.note_statement();
CREATE TABLE public.crm (id int PRIMARY KEY, provider onboarding.provider, account_key text,
                         FOREIGN KEY (provider, account_key) REFERENCES onboarding.account);

-- proposal
ALTER TABLE onboarding.proposal ADD COLUMN tenant text NOT NULL DEFAULT 'acme';
ALTER TABLE onboarding.proposal ADD COLUMN key_digits int
    GENERATED ALWAYS AS (length(proposal_key)) STORED;
ALTER TABLE onboarding.proposal ADD CONSTRAINT never_pending_data
    CHECK (status IS DISTINCT FROM 'pending_data');
CREATE UNIQUE INDEX proposal_message_once ON onboarding.proposal (message);
CREATE TRIGGER proposal_noted AFTER INSERT OR UPDATE OR DELETE ON onboarding.proposal
    FOR EACH ROW EXECUTE FUNCTION public.note_row('proposal_key', 'status');
CREATE TRIGGER proposal_statement AFTER INSERT OR UPDATE ON onboarding.proposal
    FOR EACH STATEMENT EXECUTE FUNCTION public.note_statement();
CREATE TABLE public.applications (id int PRIMARY KEY, provider onboarding.provider, proposal_key text,
                                  FOREIGN KEY (provider, proposal_key) REFERENCES onboarding.proposal);

-- document
ALTER TABLE onboarding.document ADD COLUMN tenant text NOT NULL DEFAULT 'acme';
ALTER TABLE onboarding.document ADD COLUMN file_extension text
    GENERATED ALWAYS AS (substring(file_name from '\.([a-z]+)$')) STORED;
ALTER TABLE onboarding.document ADD CONSTRAINT never_disapproved CHECK (status <> 'disapproved');
CREATE UNIQUE INDEX document_one_selfie ON onboarding.document (tenant) WHERE document_type = 'selfie';
CREATE TRIGGER document_noted AFTER INSERT OR UPDATE OR DELETE ON onboarding.document
    FOR EACH ROW EXECUTE FUNCTION public.note_row('document_key', 'status');
CREATE TRIGGER document_statement AFTER INSERT OR UPDATE ON onboarding.document
    FOR EACH STATEMENT EXECUTE FUNCTION public.note_statement();
CREATE TABLE public.files (id int PRIMARY KEY, provider onboarding.provider, document_key text,
                           FOREIGN KEY (provider, document_key) REFERENCES onboarding.document);

-- closure
ALTER TABLE onboarding.closure ADD COLUMN tenant text NOT NULL DEFAULT 'acme';
ALTER TABLE onboarding.closure ADD COLUMN message_length int
    GENERATED ALWAYS AS (length(message)) STORED;
ALTER TABLE onboarding.closure ADD CONSTRAINT never_error CHECK (status <> 'error');
CREATE UNIQUE INDEX closure_message_once ON onboarding.closure (message);
CREATE TRIGGER closure_noted AFTER INSERT OR UPDATE OR DELETE ON onboarding.closure
    FOR EACH ROW EXECUTE FUNCTION public.note_row('account_key', 'status');
CREATE TRIGGER closure_statement AFTER INSERT OR UPDATE ON onboarding.closure
    FOR EACH STATEMENT EXECUTE FUNCTION public.note_statement();
CREATE TABLE public.closings (id int PRIMARY KEY, provider onboarding.provider, account_key text,
                              FOREIGN KEY (provider, account_key) REFERENCES onboarding.closure);

-- history
ALTER TABLE onboarding.history ADD COLUMN tenant text NOT NULL DEFAULT 'acme';
ALTER TABLE onboarding.history ADD COLUMN moved text
    GENERATED ALWAYS AS (coalesce(from_status, '') || '>' || to_status) STORED;
ALTER TABLE onboarding.history ADD CONSTRAINT never_awaiting CHECK (to_status <> 'awaiting_validation');
-- (history is partitioned by inbox_id: a unique index on it must hold
-- inbox_id, as PostgreSQL requires of every partitioned table; one on a
-- partition need not)
CREATE UNIQUE INDEX history_blocked_once ON onboarding.history_default (entity_key)
    WHERE entity = 'account' AND to_status = 'blocked';
CREATE TRIGGER history_noted AFTER INSERT OR UPDATE OR DELETE ON onboarding.history
    FOR EACH ROW EXECUTE FUNCTION public.note_row('entity_key', 'to_status');
CREATE TRIGGER history_statement AFTER INSERT OR DELETE ON onboarding.history
    FOR EACH STATEMENT EXECUTE FUNCTION public.note_statement();
CREATE TABLE public.milestones (id int PRIMARY KEY, history_id bigint, inbox_id bigint,
                                FOREIGN KEY (history_id, inbox_id) REFERENCES onboarding.history);

-- what the pipeline cannot honour is refused when it is created
CREATE TRIGGER status_only AFTER UPDATE OF status ON onboarding.account
    FOR EACH ROW EXECUTE FUNCTION public.note_row('account_key', 'status');
CREATE TRIGGER with_table AFTER INSERT ON onboarding.document
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION public.note_statement();
CREATE RULE no_delete AS ON DELETE TO onboarding.closure DO INSTEAD NOTHING;
ALTER TABLE onboarding.proposal ADD CONSTRAINT late_check UNIQUE (client_code) DEFERRABLE;
CREATE TABLE public.deferred_ref (provider onboarding.provider, account_key text,
    FOREIGN KEY (provider, account_key) REFERENCES onboarding.account DEFERRABLE INITIALLY DEFERRED);

-- row-level security, for a reporting role
ALTER TABLE onboarding.account ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_seen ON onboarding.account USING (tenant <> 'hidden');
SET client_min_messages = warning;
DROP ROLE IF EXISTS binding_reader;
RESET client_min_messages;
CREATE ROLE binding_reader;
GRANT USAGE ON SCHEMA onboarding TO binding_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA onboarding TO binding_reader;

-- the deliveries: Mariana's flow (Fitbank fixtures) out of order, and a
-- second person, Joana, whose rows collide with Mariana's
CREATE TEMP TABLE delivered (name text, body text);
\set f mariana-01-update-account-0-created-disabled
\set body `cat test/fixtures/fitbank/mariana-01-update-account-0-created-disabled.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-02-update-person-document-identity-front-4-sent
\set body `cat test/fixtures/fitbank/mariana-02-update-person-document-identity-front-4-sent.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-04-update-person-document-identity-front-10-typified
\set body `cat test/fixtures/fitbank/mariana-04-update-person-document-identity-front-10-typified.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-03-update-person-document-identity-front-0-awaiting-validation
\set body `cat test/fixtures/fitbank/mariana-03-update-person-document-identity-front-0-awaiting-validation.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-05-update-person-document-selfie-6-disapproved
\set body `cat test/fixtures/fitbank/mariana-05-update-person-document-selfie-6-disapproved.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-06-update-person-document-selfie-5-resubmitted
\set body `cat test/fixtures/fitbank/mariana-06-update-person-document-selfie-5-resubmitted.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-11-update-person-condition-0-divergent
\set body `cat test/fixtures/fitbank/mariana-11-update-person-condition-0-divergent.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-13-update-person-document-selfie-1-validated
\set body `cat test/fixtures/fitbank/mariana-13-update-person-document-selfie-1-validated.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-12-update-person-document-identity-front-1-validated
\set body `cat test/fixtures/fitbank/mariana-12-update-person-document-identity-front-1-validated.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-15-update-person-condition-4-approved
\set body `cat test/fixtures/fitbank/mariana-15-update-person-condition-4-approved.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-17-update-account-1-limited
\set body `cat test/fixtures/fitbank/mariana-17-update-account-1-limited.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-16-update-account-2-verified-enabled-rounds-to-next-second
\set body `cat test/fixtures/fitbank/mariana-16-update-account-2-verified-enabled-rounds-to-next-second.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-18-update-account-3-blocked-bank-from-spb-account
\set body `cat test/fixtures/fitbank/mariana-18-update-account-3-blocked-bank-from-spb-account.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-19-update-close-account-0-created
\set body `cat test/fixtures/fitbank/mariana-19-update-close-account-0-created.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-21-update-close-account-2-error
\set body `cat test/fixtures/fitbank/mariana-21-update-close-account-2-error.json`
INSERT INTO delivered VALUES (:'f', :'body');
\set f mariana-20-update-close-account-1-processing
\set body `cat test/fixtures/fitbank/mariana-20-update-close-account-1-processing.json`
INSERT INTO delivered VALUES (:'f', :'body');
INSERT INTO delivered VALUES
  ('joana-account-same-number', '{"Method": "UpdateAccount", "PartnerId": 860, "BusinessUnitId": 820,
    "TaxNumber": "529.982.247-25", "SendDate": "2025-02-11T10:00:00-03:00", "AccountConditionType": 0,
    "AccountStatus": 0, "Bank": "450", "BankBranch": "0001", "BankAccount": "71004581",
    "BankAccountDigit": "9", "AccountKey": "joana-account"}'),
  ('joana-account-own-number', '{"Method": "UpdateAccount", "PartnerId": 860, "BusinessUnitId": 820,
    "TaxNumber": "529.982.247-25", "SendDate": "2025-02-11T11:00:00-03:00", "AccountConditionType": 2,
    "AccountStatus": 1, "Bank": "450", "BankBranch": "0001", "BankAccount": "71009999",
    "BankAccountDigit": "9", "AccountKey": "joana-account"}'),
  ('joana-selfie', '{"Method": "UpdatePersonDocument", "PartnerId": 860, "BusinessUnitId": 820,
    "SendDate": "2025-02-11T10:05:00-03:00", "Account": null,
    "Document": {"DocumentKey": "joana-selfie", "DocumentType": 14, "DocumentStatus": 4,
                 "TaxNumber": "52998224725", "FileName": "joana.png"}}'),
  ('joana-proposal-same-message', '{"Method": "UpdatePersonCondition", "PartnerId": 860,
    "BusinessUnitId": 820, "TaxNumber": "52998224725", "MessageClassification": 4,
    "Message": "Cliente aprovado com sucesso", "SendDate": "2025-02-12T10:00:00-03:00"}'),
  ('mariana-unblocked', '{"Method": "UpdateAccount", "PartnerId": 860, "BusinessUnitId": 820,
    "TaxNumber": "24952122204", "SendDate": "2025-03-20T12:00:00-03:00", "AccountConditionType": 2,
    "AccountStatus": 1, "Bank": "450", "BankBranch": "0001", "BankAccount": "71004581",
    "BankAccountDigit": "1", "AccountKey": "860590-254444-7100458-1"}'),
  ('mariana-blocked-again', '{"Method": "UpdateAccount", "PartnerId": 860, "BusinessUnitId": 820,
    "TaxNumber": "24952122204", "SendDate": "2025-03-21T10:00:00-03:00", "AccountConditionType": 3,
    "AccountStatus": 0, "Bank": "450", "BankBranch": "0001", "BankAccount": "71004581",
    "BankAccountDigit": "1", "AccountKey": "860590-254444-7100458-1"}');

-- one delivery per statement, in the order above
SELECT d.name, i.outcome, i.detail
  FROM delivered d, LATERAL onboarding.ingest_text(d.body, NULL, jsonb_build_object('name', d.name)) i
 ORDER BY i.id;

-- the user's rows that point at the state (foreign keys), and a user
-- column set by hand: reports must not show a hidden tenant
INSERT INTO public.crm VALUES (1, 'fitbank', '860590-254444-7100458-1');
INSERT INTO public.applications VALUES (1, 'fitbank', '24952122204');
INSERT INTO public.files VALUES (1, 'fitbank', '9c2d7e4b-1a5f-4c38-b7e6-2f0a9d8c1b63');
INSERT INTO public.closings VALUES (1, 'fitbank', '860590-254444-7100458-1');
INSERT INTO public.milestones
SELECT 1, id, inbox_id FROM onboarding.history WHERE entity = 'proposal' ORDER BY id LIMIT 1;
UPDATE onboarding.account SET tenant = 'hidden' WHERE account_key = 'joana-account';
UPDATE onboarding.account SET tenant = 'beta' WHERE account_key = '860590-254444-7100458-1';
UPDATE onboarding.document SET tenant = 'beta' WHERE document_key = 'joana-selfie';

-- the rest of the flow, two in one statement; then late ones: the
-- closure's retry before its approval, an account update before its block
-- (the user's column set above survives the account's refold)
\set f23 `cat test/fixtures/fitbank/mariana-23-update-close-account-5-approved.json`
\set f24 `cat test/fixtures/fitbank/mariana-24-update-account-4-terminated-disabled.json`
\set f22 `cat test/fixtures/fitbank/mariana-22-update-close-account-1-processing-retry.json`
\set f14 `cat test/fixtures/fitbank/mariana-14-update-person-document-cnh-back-16-4-sent.json`
INSERT INTO onboarding.inbox (raw, headers) VALUES
    (:'f23', '{"name": "mariana-23-update-close-account-5-approved"}'),
    (:'f24', '{"name": "mariana-24-update-account-4-terminated-disabled"}');
INSERT INTO onboarding.inbox (raw, headers) VALUES
    (:'f22', '{"name": "mariana-22-update-close-account-1-processing-retry"}');
INSERT INTO onboarding.inbox (raw, headers) VALUES
    (:'f14', '{"name": "mariana-14-update-person-document-cnh-back-16-4-sent"}');
INSERT INTO onboarding.inbox (payload, headers) VALUES
  ('{"Method": "UpdateCloseAccount", "PartnerId": 860, "BusinessUnitId": 820,
     "AccountKey": "joana-account", "CloseAccountInformationStatus": 0,
     "Message": "Conta cancelada com sucesso", "SendDate": "2025-04-03T11:00:00-03:00"}',
   '{"name": "joana-closure-same-message"}'),
  ('{"Method": "UpdateAccount", "PartnerId": 860, "BusinessUnitId": 820,
     "TaxNumber": "24952122204", "SendDate": "2025-03-01T10:00:00-03:00", "AccountConditionType": 2,
     "AccountStatus": 1, "Bank": "450", "BankBranch": "0001", "BankAccount": "71004581",
     "BankAccountDigit": "1", "AccountKey": "860590-254444-7100458-1"}',
   '{"name": "mariana-active-late"}');
SELECT headers ->> 'name' AS name, outcome, detail FROM onboarding.inbox
 WHERE id > 23 ORDER BY id;

-- every delivery, its outcome now (late ones revised outcomes)
SELECT id, coalesce(headers ->> 'name', headers ->> 'fixture') AS name, outcome
  FROM onboarding.inbox ORDER BY id;

-- state: defaults and generated values set, the user's columns kept
SELECT account_key, status, tenant, number, number_digits FROM onboarding.account ORDER BY 1;
SELECT proposal_key, status, tenant, key_digits, message FROM onboarding.proposal ORDER BY 1;
SELECT document_key, document_type, status, tenant, file_extension FROM onboarding.document ORDER BY 1;
SELECT account_key, status, tenant, message_length FROM onboarding.closure ORDER BY 1;
SELECT entity, entity_key, moved, tenant FROM onboarding.history ORDER BY id;

-- the user's triggers: one firing per change, in event order per entity
SELECT tab, op, key, status, count(*) AS firings
  FROM public.changes WHERE tg LIKE '%_noted' GROUP BY 1, 2, 3, 4 ORDER BY 1, 3, min(n);
SELECT tab, op, count(*) AS statement_firings
  FROM public.changes WHERE tg LIKE '%_statement' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT key, string_agg(status, ' > ' ORDER BY n) AS account_changes
  FROM public.changes WHERE tg = 'account_noted' GROUP BY key ORDER BY key;

-- live state is what a replay derives
SELECT * FROM onboarding.verify();

-- rebuild() and verify() with the foreign keys in place: nothing changes,
-- so no trigger fires and no row is rewritten
CREATE TEMP TABLE before_rebuild AS
SELECT (SELECT count(*) FROM public.changes) AS changes,
       (SELECT array_agg(ctid ORDER BY ctid) FROM onboarding.account) AS account_ctids,
       (SELECT array_agg(ctid ORDER BY ctid) FROM onboarding.history) AS history_ctids;
SELECT onboarding.rebuild() AS replayed;
SELECT (SELECT count(*) FROM public.changes) - b.changes AS firings_in_rebuild,
       (SELECT array_agg(ctid ORDER BY ctid) FROM onboarding.account) = b.account_ctids AS accounts_untouched,
       (SELECT array_agg(ctid ORDER BY ctid) FROM onboarding.history) = b.history_ctids AS history_untouched
  FROM before_rebuild b;
SELECT * FROM onboarding.verify();

-- reports honour row-level security: the reader does not see the hidden account
SELECT entity, status, how_many FROM onboarding.funnel
 WHERE provider = 'fitbank' AND entity = 'account' ORDER BY status;
SET ROLE binding_reader;
SELECT entity, status, how_many FROM onboarding.funnel
 WHERE provider = 'fitbank' AND entity = 'account' ORDER BY status;
SELECT count(*) AS accounts_seen FROM onboarding.account;
RESET ROLE;
-- nor in the kept entities on their way (in_progress_entities) and the kept
-- refused ones (rejection_reasons): the hidden account blocked, and a
-- hidden one in analysis written by hand
BEGIN;
UPDATE onboarding.account SET status = 'blocked' WHERE account_key = 'joana-account';
INSERT INTO onboarding.account (provider, account_key, status, tenant, last_inbox_id, last_seen_id)
VALUES ('fitbank', 'hidden-in-analysis', 'in_analysis', 'hidden', 1, 1);
SELECT entity_key, status FROM onboarding.in_progress_entities
 WHERE provider = 'fitbank' AND entity = 'account' ORDER BY 1;
SELECT entity, reason, how_many FROM onboarding.rejection_reasons
 WHERE provider = 'fitbank' ORDER BY 1, 2;
SET ROLE binding_reader;
SELECT entity_key, status FROM onboarding.in_progress_entities
 WHERE provider = 'fitbank' AND entity = 'account' ORDER BY 1;
SELECT entity, reason, how_many FROM onboarding.rejection_reasons
 WHERE provider = 'fitbank' ORDER BY 1, 2;
RESET ROLE;
ROLLBACK;

-- the additions' own errors, when a user writes the state table directly
-- (terse: the failing row holds times of arrival)
\set VERBOSITY terse
UPDATE onboarding.account SET tenant = NULL WHERE account_key = 'joana-account';
UPDATE onboarding.closure SET status = 'error' WHERE account_key = '860590-254444-7100458-1';
\set VERBOSITY default
SELECT * FROM onboarding.verify();

DROP TABLE public.milestones, public.closings, public.files, public.applications, public.crm;
DROP OWNED BY binding_reader;
DROP ROLE binding_reader;

-- Reporting views and functions (SPEC §8) on a fixed multi-provider scenario,
-- then their plans with 100,000 entities loaded.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET client_min_messages = warning;
-- a clean slate: the views aggregate everything
DROP EXTENSION onboarding;
CREATE EXTENSION onboarding;
RESET client_min_messages;

-- Deliveries with fixed arrival days, so that onboarding.daily is exact.
CREATE FUNCTION pg_temp.deliver(day date, body text) RETURNS onboarding.outcome
    LANGUAGE sql AS $$
    INSERT INTO onboarding.inbox (received_at, raw) VALUES (day + time '12:00', body)
    RETURNING outcome
    $$;

-- Ana (CPF 615.120.612-63) opens an account at QI Tech ...
SELECT pg_temp.deliver('2024-01-01', '{"webhook_type": "account_request.status_change", "key": "qi-ana", "status": "pending_bacen_validation", "event_datetime": "2024-01-01 10:00:00", "data": {"account_owner": {"name": "Ana", "document_number": "615.120.612-63"}}}');
SELECT pg_temp.deliver('2024-01-01', '{"webhook_type": "account_request.status_change", "key": "qi-ana", "status": "pending_kyc_analysis", "event_datetime": "2024-01-01 10:30:00", "data": {"account_owner": {"name": "Ana", "document_number": "615.120.612-63"}}}');
SELECT pg_temp.deliver('2024-01-02', '{"webhook_type": "account_request.status_change", "key": "qi-ana", "status": "pending_additional_data", "event_datetime": "2024-01-02 09:00:00"}');
SELECT pg_temp.deliver('2024-01-02', '{"webhook_type": "account_request.status_change", "key": "qi-ana", "status": "pending_additional_data", "event_datetime": "2024-01-02 09:00:00"}');
SELECT pg_temp.deliver('2024-01-03', '{"webhook_type": "account", "key": "qi-ana", "status": "account_opened", "event_datetime": "2024-01-03 12:00:00"}');
SELECT pg_temp.deliver('2024-01-03', '{"webhook_type": "account_request.status_change", "key": "qi-ana", "status": "pending_kyc_analysis", "event_datetime": "2024-01-01 11:00:00"}');
-- ... Bruno is rejected, Carla waits
SELECT pg_temp.deliver('2024-01-01', '{"webhook_type": "account_request.status_change", "key": "qi-bruno", "status": "pending_kyc_analysis", "event_datetime": "2024-01-01 11:00:00"}');
SELECT pg_temp.deliver('2024-01-02', '{"webhook_type": "account_request.status_change", "key": "qi-bruno", "status": "rejected", "rejection_reason": "UNSC", "event_datetime": "2024-01-02 11:00:00"}');
SELECT pg_temp.deliver('2024-01-05', '{"webhook_type": "account_request.status_change", "key": "qi-carla", "status": "pending_kyc_analysis", "event_datetime": "2024-01-05 08:00:00"}');
SELECT pg_temp.deliver('2024-01-06', '{"webhook_type": "account", "key": "qi-carla", "status": "rejected", "event_datetime": "2024-01-06 08:00:00"}');

-- Ana at Fitbank: account, documents, condition, a closure
SELECT pg_temp.deliver('2024-02-01', '{"Method": "UpdateAccount", "AccountKey": "fb-ana", "TaxNumber": "61512061263", "AccountConditionType": 0, "AccountStatus": 1, "SendDate": "2024-02-01T09:00:00"}');
SELECT pg_temp.deliver('2024-02-01', '{"Method": "UpdatePersonDocument", "Account": {"AccountKey": "fb-ana"}, "Document": {"DocumentKey": "fb-doc-rg", "DocumentType": 0, "DocumentStatus": 4, "TaxNumber": "61512061263"}, "SendDate": "2024-02-01T09:10:00"}');
SELECT pg_temp.deliver('2024-02-02', '{"Method": "UpdatePersonDocument", "Account": {"AccountKey": "fb-ana"}, "Document": {"DocumentKey": "fb-doc-rg", "DocumentType": 0, "DocumentStatus": 1, "TaxNumber": "61512061263"}, "SendDate": "2024-02-02T09:10:00"}');
SELECT pg_temp.deliver('2024-02-01', '{"Method": "UpdatePersonDocument", "Account": {"AccountKey": "fb-ana"}, "Document": {"DocumentKey": "fb-doc-selfie", "DocumentType": 14, "DocumentStatus": 6, "Reason": "Illegible Selfie", "TaxNumber": "61512061263"}, "SendDate": "2024-02-01T09:20:00"}');
SELECT pg_temp.deliver('2024-02-01', '{"Method": "UpdatePersonDocument", "Account": null, "Document": {"DocumentKey": "", "DocumentType": 2, "DocumentStatus": 4, "TaxNumber": "615.120.612-63"}, "SendDate": "2024-02-01T09:30:00"}');
SELECT pg_temp.deliver('2024-02-02', '{"Method": "UpdatePersonCondition", "TaxNumber": "615.120.612-63", "MessageClassification": 0, "Message": "dados divergentes", "SendDate": "2024-02-02T10:00:00"}');
SELECT pg_temp.deliver('2024-02-03', '{"Method": "UpdatePersonCondition", "TaxNumber": "615.120.612-63", "MessageClassification": 4, "Message": "aprovado", "SendDate": "2024-02-03T10:00:00"}');
SELECT pg_temp.deliver('2024-02-03', '{"Method": "UpdateAccount", "AccountKey": "fb-ana", "TaxNumber": "61512061263", "AccountConditionType": 2, "AccountStatus": 1, "SendDate": "2024-02-03T11:00:00"}');
SELECT pg_temp.deliver('2024-03-01', '{"Method": "UpdateCloseAccount", "AccountKey": "fb-ana", "CloseAccountInformationStatus": 0, "Message": "em analise", "SendDate": "2024-03-01T09:00:00"}');
SELECT pg_temp.deliver('2024-03-02', '{"Method": "UpdateCloseAccount", "AccountKey": "fb-ana", "CloseAccountInformationStatus": 5, "Message": "encerrada", "SendDate": "2024-03-02T09:00:00"}');
-- Diego's closure request waits
SELECT pg_temp.deliver('2024-03-01', '{"Method": "UpdateCloseAccount", "AccountKey": "fb-diego", "CloseAccountInformationStatus": 3, "Message": "saldo remanescente", "SendDate": "2024-03-01T10:00:00"}');

-- Ana at Celcoin (flow option 1), and a proposal reproved by its documentscopy
SELECT pg_temp.deliver('2024-04-01', '{"entity": "onboarding-proposal", "status": "CREATED", "createTimestamp": "2024-04-01T12:00:00Z", "body": {"proposalId": "cc-ana", "documentNumber": "61512061263", "proposalType": "PF", "clientCode": "c-1"}}');
SELECT pg_temp.deliver('2024-04-01', '{"entity": "onboarding-backgroundcheck", "status": "PENDING", "createTimestamp": "2024-04-01T12:01:00Z", "body": {"proposalId": "cc-ana"}}');
SELECT pg_temp.deliver('2024-04-01', '{"entity": "onboarding-backgroundcheck", "status": "APPROVED", "createTimestamp": "2024-04-01T12:31:00Z", "body": {"proposalId": "cc-ana"}}');
SELECT pg_temp.deliver('2024-04-01', '{"entity": "onboarding-documentscopy", "status": "PROCESSING", "createTimestamp": "2024-04-01T13:00:00Z", "body": {"proposalId": "cc-ana"}}');
SELECT pg_temp.deliver('2024-04-01', '{"entity": "onboarding-file", "status": "PROCESSING", "createTimestamp": "2024-04-01T13:00:01Z", "body": {"proposalId": "cc-ana", "documentNumber": "61512061263", "files": [{"type": "SELFIE", "url": "https://x/s"}, {"type": "CNH_FRONT", "url": "https://x/c"}]}}');
SELECT pg_temp.deliver('2024-04-02', '{"entity": "onboarding-documentscopy", "status": "REPROVED", "createTimestamp": "2024-04-02T09:00:00Z", "body": {"proposalId": "cc-eva", "documentNumber": "23550665407"}}');
SELECT pg_temp.deliver('2024-04-02', '{"entity": "account-status", "status": "BLOQUEIO-RFB", "createTimestamp": "2024-04-02T10:00:00Z", "body": {"onboardingId": "cc-fabio", "reason": "CPF irregular na Receita Federal"}}');

-- anomalies: not JSON, an unknown event, an unknown status, an illegal move
SELECT pg_temp.deliver('2024-04-03', '<html>502</html>');
SELECT pg_temp.deliver('2024-04-03', '{"Method": "UpdateBoleto", "Value": 10}');
SELECT pg_temp.deliver('2024-04-03', '{"entity": "account-status", "status": "CONGELADO", "createTimestamp": "2024-04-03T10:00:00Z", "body": {"onboardingId": "cc-fabio"}}');
SELECT pg_temp.deliver('2024-04-03', '{"webhook_type": "account", "key": "qi-bruno", "status": "account_opened", "event_datetime": "2024-01-04 11:00:00"}');

SELECT * FROM onboarding.funnel ORDER BY provider, entity, status;
SELECT * FROM onboarding.daily ORDER BY day, provider;
SELECT * FROM onboarding.stage_durations ORDER BY provider, entity, status;
SELECT * FROM onboarding.rejection_reasons ORDER BY provider, entity, reason;
SELECT provider, document_key, tax_id, account_key, document_type, status, waiting_on, reason, since
  FROM onboarding.pending_documents ORDER BY provider, document_key;
SELECT id, provider, event_type, subject, status_raw, outcome, detail
  FROM onboarding.anomalies ORDER BY id;
SELECT provider, entity, entity_key, status, last_event_at, idle > interval '30 days' AS idle_long
  FROM onboarding.stuck('30 days') ORDER BY provider, entity, entity_key;
SELECT count(*) AS nothing_is_stuck_for_a_century FROM onboarding.stuck('100 years');
SELECT at, provider, entity, entity_key, from_status, to_status, outcome, detail, inbox_id
  FROM onboarding.timeline('615.120.612-63');
SELECT count(*) AS unknown_person FROM onboarding.timeline('12.ABC.345/01DE-35');
-- the views mean the same whatever the caller's search_path
CREATE SCHEMA evil;
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT 'evil' $$;
SET search_path = evil, public;
SELECT count(*) AS timeline_rows FROM onboarding.timeline('61512061263');
RESET search_path;
DROP SCHEMA evil CASCADE;

-- A document settled by its proposal is a row of settled_by_proposal, not
-- code.  Shipped: a Celcoin file (key <proposalId>:<type>) waits while its
-- proposal is analysed.  Ana's proposal cc-ana is in analysis, so her files
-- wait (above); approved, it settles them; without the row they wait again.
SELECT entity, provider, key_separator, proposal_waiting, shipped FROM onboarding.settled_by_proposal;
BEGIN;
SELECT pg_temp.deliver('2024-04-03', '{"entity": "onboarding-proposal", "status": "APPROVED", "createTimestamp": "2024-04-03T12:00:00Z", "body": {"proposalId": "cc-ana"}}');
SELECT document_key, status FROM onboarding.pending_documents WHERE provider = 'celcoin';
SELECT entity, entity_key, status FROM onboarding.stuck('30 days') WHERE provider = 'celcoin' ORDER BY 1, 2;
DELETE FROM onboarding.settled_by_proposal WHERE provider = 'celcoin';
SELECT document_key, status FROM onboarding.pending_documents WHERE provider = 'celcoin' ORDER BY 1;
ROLLBACK;
-- A row of yours does the same for Fitbank: a document sent without a
-- DocumentKey is keyed <TaxNumber>:<DocumentType>, and a person's
-- condition is a proposal keyed by the TaxNumber.  Bia (CPF 529.982.247-25)
-- sends her proof of address while Fitbank still wants data of her.
BEGIN;
SELECT pg_temp.deliver('2024-05-01', '{"Method": "UpdatePersonCondition", "TaxNumber": "529.982.247-25", "MessageClassification": 0, "Message": "dados divergentes", "SendDate": "2024-05-01T09:00:00"}');
SELECT pg_temp.deliver('2024-05-01', '{"Method": "UpdatePersonDocument", "Account": null, "Document": {"DocumentKey": "", "DocumentType": 2, "DocumentStatus": 4, "TaxNumber": "529.982.247-25"}, "SendDate": "2024-05-01T09:30:00"}');
INSERT INTO onboarding.settled_by_proposal (entity, provider, key_separator, proposal_waiting)
VALUES ('document', 'fitbank', ':', '{created,pending,in_analysis,pending_data}');
-- Bia's still waits (her proposal is pending_data); Ana's (61512061263:2)
-- is settled, her person approved
SELECT p.proposal_key, p.status AS proposal_status, d.document_key, d.status, d.waiting_on
  FROM onboarding.pending_documents d
  LEFT JOIN onboarding.proposal p ON p.provider = d.provider AND p.proposal_key = split_part(d.document_key, ':', 1)
 WHERE d.provider = 'fitbank' ORDER BY d.document_key;
SELECT entity, entity_key, status FROM onboarding.stuck('30 days')
 WHERE provider = 'fitbank' AND entity IN ('document', 'proposal') ORDER BY 1, 2;
-- Fitbank approves Bia: her proposal has left analysis, her document is settled
SELECT pg_temp.deliver('2024-05-02', '{"Method": "UpdatePersonCondition", "TaxNumber": "529.982.247-25", "MessageClassification": 4, "Message": "aprovado", "SendDate": "2024-05-02T09:00:00"}');
SELECT document_key, status FROM onboarding.pending_documents WHERE provider = 'fitbank' ORDER BY 1;
SELECT entity, entity_key, status FROM onboarding.stuck('30 days')
 WHERE provider = 'fitbank' AND entity IN ('document', 'proposal') ORDER BY 1, 2;
ROLLBACK;
-- Statuses in which a document waits are statuses of a proposal
INSERT INTO onboarding.settled_by_proposal (entity, provider, key_separator, proposal_waiting)
VALUES ('document', 'qitech', ':', '{pending,sent}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- With 100,000 entities loaded, the questions asked of one person, one
-- provider's stuck entities, or one person's pending documents use indexes:
-- no sequential scan of the inbox or of a state table.  (State is loaded
-- directly here: this is about plans, not about the pipeline.)
CREATE TEMP TABLE people AS
SELECT i, (b10 || CASE WHEN r2 < 2 THEN 0 ELSE 11 - r2 END)::onboarding.taxid AS tax_id
  FROM (SELECT i, b10, (SELECT sum(substr(b10, k, 1)::int * (12 - k)) FROM generate_series(1, 10) k) % 11 AS r2
          FROM (SELECT i, b || CASE WHEN r1 < 2 THEN 0 ELSE 11 - r1 END AS b10
                  FROM (SELECT i, b, (SELECT sum(substr(b, k, 1)::int * (11 - k)) FROM generate_series(1, 9) k) % 11 AS r1
                          FROM (SELECT i, lpad((i * 7919)::text, 9, '0') AS b FROM generate_series(1, 100000) i) x) y) z) w;
SELECT count(DISTINCT tax_id) AS people FROM people;
SET session_replication_role = replica;
INSERT INTO onboarding.account (provider, account_key, status, tax_id, last_event_at,
                                last_inbox_id, last_seen_id)
SELECT (ARRAY['celcoin', 'qitech', 'fitbank'])[1 + i % 3]::onboarding.provider, 'acc-' || i,
       CASE WHEN i % 50 = 0 THEN 'in_analysis' WHEN i % 20 = 0 THEN 'rejected' ELSE 'active' END::onboarding.account_status,
       g.tax_id,
       timestamptz '2024-01-01' + i * interval '5 minutes', i, i
  FROM people g;
INSERT INTO onboarding.proposal (provider, proposal_key, status, background_check, tax_id,
                                 last_event_at, last_inbox_id, last_seen_id)
SELECT (ARRAY['celcoin', 'qitech', 'fitbank'])[1 + i % 3]::onboarding.provider, 'p-' || i,
       CASE WHEN i % 40 = 0 THEN 'pending' ELSE 'account_created' END::onboarding.proposal_status,
       CASE WHEN i % 40 = 0 THEN 'processing' ELSE 'approved' END::onboarding.check_status,
       g.tax_id,
       timestamptz '2024-01-01' + i * interval '5 minutes', i, i
  FROM people g;
INSERT INTO onboarding.document (provider, document_key, status, tax_id, last_event_at,
                                 last_inbox_id, last_seen_id)
SELECT (ARRAY['celcoin', 'qitech', 'fitbank'])[1 + i % 3]::onboarding.provider, 'd-' || i,
       CASE WHEN i % 25 = 0 THEN 'awaiting_validation' ELSE 'validated' END::onboarding.document_status,
       g.tax_id,
       timestamptz '2024-01-01' + i * interval '5 minutes', i, i
  FROM people g;
INSERT INTO onboarding.closure (provider, account_key, status, last_event_at, last_inbox_id, last_seen_id)
SELECT 'fitbank', 'acc-' || i,
       CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'approved' END::onboarding.closure_status,
       timestamptz '2024-01-01' + i * interval '5 minutes', i, i
  FROM generate_series(1, 100000, 7) i;
INSERT INTO onboarding.history (provider, entity, entity_key, from_status, to_status, event_at, inbox_id)
SELECT (ARRAY['celcoin', 'qitech', 'fitbank'])[1 + i % 3]::onboarding.provider, 'account', 'acc-' || i,
       NULL, 'active', timestamptz '2024-01-01' + i * interval '5 minutes', i
  FROM generate_series(1, 100000) i;
INSERT INTO onboarding.inbox (provider, payload, event_type, subject, status_raw, outcome)
SELECT (ARRAY['celcoin', 'qitech', 'fitbank'])[1 + i % 3]::onboarding.provider,
       jsonb_build_object('n', i), 'account', 'acc-' || i, 'x',
       CASE WHEN i % 30 = 0 THEN 'stale' ELSE 'applied' END::onboarding.outcome
  FROM generate_series(1, 100000) i;
-- and daily's counts of those deliveries, as the pipeline keeps them
INSERT INTO onboarding.daily_tally (day, provider, outcome, slot, n)
SELECT (received_at AT TIME ZONE 'UTC')::date, provider::text, outcome, -1, count(*)
  FROM onboarding.inbox WHERE payload ? 'n' GROUP BY 1, 2, 3
    ON CONFLICT (day, provider, outcome, slot) DO UPDATE SET n = daily_tally.n + excluded.n;
RESET session_replication_role;
-- and funnel's counts, loaded behind the state tables' triggers' back
SELECT onboarding.recount_status_tally() > 0 AS recounted;
ANALYZE onboarding.account, onboarding.proposal, onboarding.document, onboarding.closure,
        onboarding.history, onboarding.inbox;

-- the relations a query's plan reads sequentially (none, but where said),
-- and whether it uses an index at all
CREATE FUNCTION pg_temp.seq_scans(query text) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    line text;
    seq text[] := '{}';
    indexed boolean := false;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        IF line ~ 'Seq Scan on (inbox|account|proposal|document|closure|history)\M' THEN
            seq := seq || substring(line from 'Seq Scan on (\w+)');
        END IF;
        indexed := indexed OR line ~ 'Index (Only )?Scan|Bitmap Index Scan';
    END LOOP;
    RETURN CASE WHEN cardinality(seq) = 0 AND indexed THEN 'index scans only'
                ELSE 'sequential scans of ' || array_to_string(seq, ', ') END;
END
$$;
SELECT tax_id AS someone FROM people WHERE i = 100 \gset
SELECT pg_temp.seq_scans(format($$SELECT * FROM onboarding.timeline(%L)$$, :'someone')) AS timeline;
SELECT pg_temp.seq_scans(format($$SELECT * FROM onboarding.pending_documents
                                  WHERE tax_id = %L$$, :'someone')) AS pending_documents;
-- stuck() of one provider reads the kept set of entities on their way
-- (onboarding.open_entity) and each one's state row, by index: no state
-- table is read whole
SELECT pg_temp.seq_scans($$SELECT * FROM onboarding.stuck('30 days')
                           WHERE provider = 'qitech'$$) AS stuck_one_provider;

-- Property: in_progress_entities and pending_documents decide with joins
-- (in_progress_statuses(), and each document's proposal), over the kept set
-- onboarding.open_entity, which the state tables' triggers keep as the
-- rounds write them;
-- over random state they list exactly the rows their definitions give,
-- in_progress() and document_settled() asked of every row.  Each of 30
-- rounds draws entities in every status label, documents keyed with and
-- without their proposal's key (and with proposals missing), a rule of
-- settled_by_proposal for one to three providers with random separators and
-- waiting sets, and a random settled status; then compares both ways.
-- (the comparison, shared with convergence.sh; first on the state loaded above)
\i test/reliability/reports_recompute.sql
BEGIN;
CREATE TEMP TABLE report_rounds (round int, differences bigint, in_progress bigint, pending bigint);
DO $$
DECLARE
    providers onboarding.provider[] := enum_range(NULL::onboarding.provider);
    seps text[] := '{":", "/", "-"}';
BEGIN
    PERFORM setseed(0.25);
    FOR round IN 1 .. 30 LOOP
        DELETE FROM onboarding.account; DELETE FROM onboarding.proposal;
        DELETE FROM onboarding.document; DELETE FROM onboarding.closure;
        DELETE FROM onboarding.settled_by_proposal;
        DELETE FROM onboarding.settled_status WHERE NOT shipped;
        -- the rules of this round
        INSERT INTO onboarding.settled_by_proposal (entity, provider, key_separator, proposal_waiting)
        SELECT 'document', p, seps[1 + floor(random() * 3)::int],
               ARRAY(SELECT l::text FROM unnest(enum_range(NULL::onboarding.proposal_status)) l
                      WHERE random() < 0.4)
          FROM unnest(providers) p WHERE random() < 0.6;
        INSERT INTO onboarding.settled_status (entity, provider, status)
        SELECT 'proposal', providers[1 + floor(random() * 3)::int],
               (enum_range(NULL::onboarding.proposal_status))[1 + floor(random() * 5)::int]
        ON CONFLICT DO NOTHING;
        -- the state of this round: 60 proposals, 150 documents, 40 accounts and closures
        INSERT INTO onboarding.proposal (provider, proposal_key, status, background_check,
                                         documentscopy, last_event_at, last_received_at,
                                         last_inbox_id, last_seen_id)
        SELECT providers[1 + floor(random() * 3)::int], 'p' || i,
               (SELECT l FROM unnest(enum_range(NULL::onboarding.proposal_status)) l
                 ORDER BY random() + i * 0 LIMIT 1),
               CASE WHEN random() < 0.7 THEN (SELECT l FROM unnest(enum_range(NULL::onboarding.check_status)) l
                                               ORDER BY random() + i * 0 LIMIT 1) END,
               CASE WHEN random() < 0.5 THEN (SELECT l FROM unnest(enum_range(NULL::onboarding.check_status)) l
                                               ORDER BY random() + i * 0 LIMIT 1) END,
               CASE WHEN random() < 0.8 THEN timestamptz '2024-01-01' + random() * interval '300 days' END,
               timestamptz '2024-01-01' + random() * interval '300 days', i, i
          FROM generate_series(1, 60) i;
        INSERT INTO onboarding.document (provider, document_key, status, document_type_raw, signer,
                                         reason, last_event_at, last_received_at,
                                         last_inbox_id, last_seen_id)
        SELECT providers[1 + floor(random() * 3)::int],
               -- the key of a proposal that may exist, of one that does not, or no separator
               CASE floor(random() * 3)::int
                    WHEN 0 THEN 'p' || (1 + floor(random() * 60)::int) || seps[1 + floor(random() * 3)::int] || i
                    WHEN 1 THEN 'p' || (100 + i) || seps[1 + floor(random() * 3)::int] || 'x'
                    ELSE 'p' || (1 + floor(random() * 60)::int) END,
               (SELECT l FROM unnest(enum_range(NULL::onboarding.document_status)) l
                 ORDER BY random() + i * 0 LIMIT 1),
               CASE WHEN random() < 0.5 THEN 'rg' END, random() < 0.5,
               CASE WHEN random() < 0.3 THEN 'ilegível' END,
               CASE WHEN random() < 0.8 THEN timestamptz '2024-01-01' + random() * interval '300 days' END,
               timestamptz '2024-01-01' + random() * interval '300 days', i, i
          FROM generate_series(1, 150) i
        ON CONFLICT DO NOTHING;
        INSERT INTO onboarding.account (provider, account_key, status, last_event_at,
                                        last_received_at, last_inbox_id, last_seen_id)
        SELECT providers[1 + floor(random() * 3)::int], 'a' || i,
               (SELECT l FROM unnest(enum_range(NULL::onboarding.account_status)) l
                 ORDER BY random() + i * 0 LIMIT 1),
               timestamptz '2024-01-01' + random() * interval '300 days', NULL, i, i
          FROM generate_series(1, 40) i;
        INSERT INTO onboarding.closure (provider, account_key, status, last_event_at,
                                        last_received_at, last_inbox_id, last_seen_id)
        SELECT providers[1 + floor(random() * 3)::int], 'a' || i,
               (SELECT l FROM unnest(enum_range(NULL::onboarding.closure_status)) l
                 ORDER BY random() + i * 0 LIMIT 1),
               NULL, timestamptz '2024-01-01' + random() * interval '300 days', i, i
          FROM generate_series(1, 40) i;
        INSERT INTO report_rounds SELECT round, * FROM pg_temp.report_differences();
    END LOOP;
END
$$;
-- every round agrees, and the rounds list rows (some, not all)
SELECT count(*) AS rounds, sum(differences) AS differences,
       min(in_progress) > 0 AS always_some_in_progress, min(pending) > 0 AS always_some_pending,
       bool_and(in_progress < 40 + 60 * 3 + 150 + 40) AS never_all
  FROM report_rounds;
ROLLBACK;

-- Ordering (SPEC §4.1 outcomes, §6): plausible flows delivered in their
-- real order end as the provider meant, with their exact history.
--
-- expected/ordering.out is written by hand for the convergent engine of
-- issue 13 (state = the fold of the deliveries in event order; a body
-- without a time that repeats an earlier one after its entity moved on is
-- a new occurrence; in_analysis -> pending, failed -> created/active and
-- account_error -> account_created are legal), not captured from a run.
--
-- Every delivery is tagged in its headers ({"ordering": "<case> <step>"})
-- so that what is shown never depends on inbox ids (the regression suites
-- share one database); history is listed in event order (provider time,
-- then inbox id).
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TEMP VIEW ord_outcomes AS
SELECT id, headers->>'ordering' AS step, event_type, subject, status_raw, event_at, outcome, detail
  FROM onboarding.inbox WHERE headers ? 'ordering';
CREATE TEMP VIEW ord_history AS
SELECT h.entity, h.entity_key, h.from_status, h.to_status, h.event_at, i.headers->>'ordering' AS step, h.inbox_id
  FROM onboarding.history h JOIN onboarding.inbox i ON i.id = h.inbox_id
 WHERE i.headers ? 'ordering';

-- 1. A Fitbank document without times: validated, suspended, validated
-- again (Fitbank re-sends the very same body when a status recurs: a new
-- occurrence, applied), then that body once more at once (nothing happened
-- in between: a duplicate).
\set doc_validated '{"Account": null, "Document": {"FileName": "41823759637_01072025_RGFrente.jpeg", "Description": "Documento_Frente", "Extension": ".jpeg", "ExpirationDate": null, "DocumentStatus": 1, "DocumentType": 0, "DocumentKey": "ordering-doc-1", "Reason": "", "TaxNumber": "41823759637", "Message": "", "PendingReason": null}, "Method": "UpdatePersonDocument", "BusinessUnitId": 820, "PartnerId": 860}'
\set doc_suspended '{"Account": null, "Document": {"FileName": "41823759637_01072025_RGFrente.jpeg", "Description": "Documento_Frente", "Extension": ".jpeg", "ExpirationDate": null, "DocumentStatus": 9, "DocumentType": 0, "DocumentKey": "ordering-doc-1", "Reason": "Documento em reanálise", "TaxNumber": "41823759637", "Message": "", "PendingReason": null}, "Method": "UpdatePersonDocument", "BusinessUnitId": 820, "PartnerId": 860}'
SELECT 'validated' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'doc_validated', NULL, '{"ordering": "doc 1 validated"}');
SELECT 'suspended' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'doc_suspended', NULL, '{"ordering": "doc 2 suspended"}');
SELECT 'validated again' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'doc_validated', NULL, '{"ordering": "doc 3 validated again"}');
SELECT 'validated re-sent' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'doc_validated', NULL, '{"ordering": "doc 4 validated re-sent"}');
SELECT document_key, status, provider_status, document_type, tax_id, reason, last_event_at
  FROM onboarding.document WHERE provider = 'fitbank' AND document_key = 'ordering-doc-1';
SELECT entity, entity_key, from_status, to_status, event_at, step
  FROM ord_history WHERE entity_key = 'ordering-doc-1' ORDER BY entity, event_at, inbox_id;

-- 2. A Fitbank closure disapproved, requested again (status 0) and
-- approved; the approval closes the account, and Fitbank's own
-- UpdateAccount Terminated a minute later only refreshes it.
SELECT 'account verified' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"PartnerId": 860, "BusinessUnitId": 820, "TaxNumber": "52934860710",
        "SendDate": "2025-03-02T09:00:00-03:00", "AccountConditionType": 2, "AccountStatus": 1,
        "Bank": "450", "BankBranch": "0001", "BankAccount": "71009991", "BankAccountDigit": "4",
        "AccountKey": "ordering-acct-2", "SpbAccount": null, "Method": "UpdateAccount"}',
        NULL, '{"ordering": "closure 1 account verified"}');
SELECT 'closure created' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"CloseAccountInformationStatus": 0, "Message": "Solicitação em análise",
        "AccountKey": "ordering-acct-2", "Method": "UpdateCloseAccount", "BusinessUnitId": 820,
        "PartnerId": 860, "SendDate": "2025-04-01T10:00:00-03:00"}',
        NULL, '{"ordering": "closure 2 created"}');
SELECT 'closure disapproved' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"CloseAccountInformationStatus": 4, "Message": "Solicitação de cancelamento reprovada",
        "AccountKey": "ordering-acct-2", "Method": "UpdateCloseAccount", "BusinessUnitId": 820,
        "PartnerId": 860, "SendDate": "2025-04-02T10:00:00-03:00"}',
        NULL, '{"ordering": "closure 3 disapproved"}');
SELECT 'closure requested again' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"CloseAccountInformationStatus": 0, "Message": "Nova solicitação em análise",
        "AccountKey": "ordering-acct-2", "Method": "UpdateCloseAccount", "BusinessUnitId": 820,
        "PartnerId": 860, "SendDate": "2025-04-10T10:00:00-03:00"}',
        NULL, '{"ordering": "closure 4 requested again"}');
SELECT 'closure approved' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"CloseAccountInformationStatus": 5, "Message": "Conta cancelada com sucesso",
        "AccountKey": "ordering-acct-2", "Method": "UpdateCloseAccount", "BusinessUnitId": 820,
        "PartnerId": 860, "SendDate": "2025-04-11T09:30:00-03:00"}',
        NULL, '{"ordering": "closure 5 approved"}');
SELECT 'account terminated' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"PartnerId": 860, "BusinessUnitId": 820, "TaxNumber": "52934860710",
        "SendDate": "2025-04-11T09:31:00-03:00", "AccountConditionType": 4, "AccountStatus": 0,
        "Bank": "450", "BankBranch": "0001", "BankAccount": "71009991", "BankAccountDigit": "4",
        "AccountKey": "ordering-acct-2", "SpbAccount": null, "Method": "UpdateAccount"}',
        NULL, '{"ordering": "closure 6 account terminated"}');
SELECT account_key, status, provider_status, enabled, tax_id, number, first_event_at, last_event_at
  FROM onboarding.account WHERE provider = 'fitbank' AND account_key = 'ordering-acct-2';
SELECT account_key, status, provider_status, message, first_event_at, last_event_at
  FROM onboarding.closure WHERE provider = 'fitbank' AND account_key = 'ordering-acct-2';
SELECT entity, entity_key, from_status, to_status, event_at, step
  FROM ord_history WHERE entity_key = 'ordering-acct-2' ORDER BY entity, event_at, inbox_id;

-- 3. A person applies again, without times (Fitbank's UpdatePersonCondition
-- often has no SendDate): divergent data, rejected, the same divergent body
-- again and the same rejection again (each a new occurrence: the proposal
-- moved on in between), approved on re-application (rejected -> approved,
-- Fitbank only), and the approval re-sent at once (a duplicate).
\set person_divergent '{"TaxNumber": "418.237.596-37", "PartnerId": 860, "Message": "Prezado(a) Cliente, foi constatada uma divergência nos dados enviados para a abertura de conta.", "MessageClassification": 0, "AccountsKey": ["ordering-acct-3"], "Method": "UpdatePersonCondition", "BusinessUnitId": 820}'
\set person_rejected '{"TaxNumber": "41823759637", "PartnerId": 860, "Message": "Prezado(a) Cliente, após validações internas, não foi possível seguir com a abertura da conta.", "MessageClassification": 1, "AccountsKey": ["ordering-acct-3"], "Method": "UpdatePersonCondition", "BusinessUnitId": 820}'
\set person_approved '{"TaxNumber": "41823759637", "PartnerId": 860, "Message": "Cliente aprovado com sucesso", "MessageClassification": 4, "AccountsKey": ["ordering-acct-3"], "Method": "UpdatePersonCondition", "BusinessUnitId": 820}'
SELECT 'divergent' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'person_divergent', NULL, '{"ordering": "person 1 divergent"}');
SELECT 'rejected' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'person_rejected', NULL, '{"ordering": "person 2 rejected"}');
SELECT 'divergent again' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'person_divergent', NULL, '{"ordering": "person 3 divergent again"}');
SELECT 'rejected again' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'person_rejected', NULL, '{"ordering": "person 4 rejected again"}');
SELECT 'approved' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'person_approved', NULL, '{"ordering": "person 5 approved"}');
SELECT 'approved re-sent' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest_text(:'person_approved', NULL, '{"ordering": "person 6 approved re-sent"}');
SELECT proposal_key, status, provider_status, tax_id, person_type, message, accounts_key, last_event_at
  FROM onboarding.proposal WHERE provider = 'fitbank' AND proposal_key = '41823759637';
SELECT entity, entity_key, from_status, to_status, event_at, step
  FROM ord_history WHERE entity_key = '41823759637' ORDER BY entity, event_at, inbox_id;

-- 4. A Celcoin proposal PENDING after its background check started: the
-- check's creation moved the proposal to in_analysis, PENDING moves it
-- back to pending (in_analysis -> pending), the check's approval to
-- in_analysis again, then the proposal is approved.
SELECT 'proposal CREATED' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-proposal", "createTimestamp": "2026-06-04T12:00:00Z", "status": "CREATED",
        "body": {"proposalId": "ordering-prop-4", "clientCode": "CLI-ORD-4", "documentNumber": "41823759637",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-4-1"}',
        NULL, '{"ordering": "pending 1 proposal CREATED"}');
SELECT 'backgroundcheck CREATED' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-backgroundcheck", "createTimestamp": "2026-06-04T12:00:02Z", "status": "CREATED",
        "body": {"proposalId": "ordering-prop-4", "clientCode": "CLI-ORD-4", "documentNumber": "41823759637",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-4-2"}',
        NULL, '{"ordering": "pending 2 backgroundcheck CREATED"}');
SELECT 'backgroundcheck PROCESSING' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-backgroundcheck", "createTimestamp": "2026-06-04T12:01:00Z", "status": "PROCESSING",
        "body": {"proposalId": "ordering-prop-4", "clientCode": "CLI-ORD-4", "documentNumber": "41823759637",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-4-3"}',
        NULL, '{"ordering": "pending 3 backgroundcheck PROCESSING"}');
SELECT 'proposal PENDING' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-proposal", "createTimestamp": "2026-06-04T12:01:30Z", "status": "PENDING",
        "body": {"proposalId": "ordering-prop-4", "clientCode": "CLI-ORD-4", "documentNumber": "41823759637",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-4-4"}',
        NULL, '{"ordering": "pending 4 proposal PENDING"}');
SELECT 'backgroundcheck APPROVED' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-backgroundcheck", "createTimestamp": "2026-06-04T12:05:30Z", "status": "APPROVED",
        "body": {"proposalId": "ordering-prop-4", "clientCode": "CLI-ORD-4", "documentNumber": "41823759637",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-4-5"}',
        NULL, '{"ordering": "pending 5 backgroundcheck APPROVED"}');
SELECT 'proposal APPROVED' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-proposal", "createTimestamp": "2026-06-04T12:06:00Z", "status": "APPROVED",
        "body": {"proposalId": "ordering-prop-4", "clientCode": "CLI-ORD-4", "documentNumber": "41823759637",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-4-6"}',
        NULL, '{"ordering": "pending 6 proposal APPROVED"}');
SELECT proposal_key, status, provider_status, background_check, documentscopy, flow, tax_id, person_type,
       status_at, first_event_at, last_event_at
  FROM onboarding.proposal WHERE provider = 'celcoin' AND proposal_key = 'ordering-prop-4';
SELECT entity, entity_key, from_status, to_status, event_at, step
  FROM ord_history WHERE entity_key = 'ordering-prop-4' ORDER BY entity, event_at, inbox_id;

-- 5. A Celcoin account creation that fails and is retried: create ERROR
-- (account failed, proposal account_error), RESOURCE_ERROR (nothing new),
-- create CONFIRMED (failed -> active; account_error -> account_created, with
-- the account key), RESOURCE_CREATED (nothing new).
SELECT 'proposal CREATED' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-proposal", "createTimestamp": "2026-06-03T12:00:00Z", "status": "CREATED",
        "body": {"proposalId": "ordering-prop-5", "clientCode": "CLI-ORD-5", "documentNumber": "52934860710",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-5-1"}',
        NULL, '{"ordering": "retry 1 proposal CREATED"}');
SELECT 'proposal APPROVED' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-proposal", "createTimestamp": "2026-06-03T12:30:00Z", "status": "APPROVED",
        "body": {"proposalId": "ordering-prop-5", "clientCode": "CLI-ORD-5", "documentNumber": "52934860710",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-5-2"}',
        NULL, '{"ordering": "retry 2 proposal APPROVED"}');
SELECT 'create ERROR' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-create", "createTimestamp": "2026-06-03T09:31:00.000", "status": "ERROR",
        "body": {"onboardingId": "ordering-prop-5", "proposalId": "ordering-prop-5", "clientCode": "CLI-ORD-5",
                 "errorCode": "CA-0042", "message": "Não foi possível criar a conta.",
                 "createDate": "2026-06-03T09:31:00.000"}, "webhookId": "ord-5-3"}',
        NULL, '{"ordering": "retry 3 create ERROR"}');
SELECT 'proposal RESOURCE_ERROR' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-proposal", "createTimestamp": "2026-06-03T12:31:01Z", "status": "RESOURCE_ERROR",
        "body": {"proposalId": "ordering-prop-5", "clientCode": "CLI-ORD-5", "documentNumber": "52934860710",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-5-4"}',
        NULL, '{"ordering": "retry 4 proposal RESOURCE_ERROR"}');
SELECT 'create CONFIRMED' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-create", "createTimestamp": "2026-06-03T10:40:00.000", "status": "CONFIRMED",
        "body": {"account": {"branch": "0001", "account": "300777005", "name": "Cliente Ordering Cinco",
                             "documentNumber": "52934860710", "ispb": "13935893"},
                 "onboardingId": "ordering-prop-5", "proposalId": "ordering-prop-5", "clientCode": "CLI-ORD-5",
                 "createDate": "2026-06-03T10:40:00.000"}, "webhookId": "ord-5-5"}',
        NULL, '{"ordering": "retry 5 create CONFIRMED"}');
SELECT 'proposal RESOURCE_CREATED' AS step, outcome, regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM onboarding.ingest('{"entity": "onboarding-proposal", "createTimestamp": "2026-06-03T13:40:02Z", "status": "RESOURCE_CREATED",
        "body": {"proposalId": "ordering-prop-5", "clientCode": "CLI-ORD-5", "documentNumber": "52934860710",
                 "proposalType": "PF", "onboardingType": "BAAS"}, "webhookId": "ord-5-6"}',
        NULL, '{"ordering": "retry 6 proposal RESOURCE_CREATED"}');
SELECT account_key, status, provider_status, tax_id, holder_name, bank, branch, number, reason,
       first_event_at, last_event_at
  FROM onboarding.account WHERE provider = 'celcoin' AND account_key = 'ordering-prop-5';
SELECT proposal_key, status, provider_status, account_key, client_code, tax_id, status_at, last_event_at
  FROM onboarding.proposal WHERE provider = 'celcoin' AND proposal_key = 'ordering-prop-5';
SELECT entity, entity_key, from_status, to_status, event_at, step
  FROM ord_history WHERE entity_key = 'ordering-prop-5' ORDER BY entity, event_at, inbox_id;

-- 6. History is found through a hash index on entity_key, which keeps
-- only the key's hash. Two Fitbank accounts whose keys hash alike: one of
-- them re-derived by a late delivery gets its new history, and the other
-- keeps its own, row for row. (The pair is found at run time.)
SELECT min(k) AS hash_a, max(k) AS hash_b
  FROM (SELECT 'ordering-hash-' || i AS k FROM generate_series(1, 300000) i) s
 GROUP BY hashtext(k) HAVING count(*) > 1
 ORDER BY 1 LIMIT 1 \gset
SELECT :'hash_a' <> :'hash_b' AS two_keys, hashtext(:'hash_a') = hashtext(:'hash_b') AS one_hash;
SELECT who, step, (onboarding.ingest(format('{"PartnerId": 860, "BusinessUnitId": 820,
        "TaxNumber": "52934860710", "SendDate": "%s", "AccountConditionType": %s, "AccountStatus": 1,
        "Bank": "450", "BankBranch": "0001", "BankAccount": "71009992", "BankAccountDigit": "4",
        "AccountKey": "%s", "SpbAccount": null, "Method": "UpdateAccount"}', at, cond, key)::jsonb,
        NULL, jsonb_build_object('hashkey', who || ' ' || step))).outcome
  FROM (VALUES ('a', :'hash_a', 'created', 0, '2025-05-01T09:00:00-03:00'),
               ('b', :'hash_b', 'created', 0, '2025-05-01T09:00:00-03:00'),
               ('b', :'hash_b', 'active',  2, '2025-05-02T09:00:00-03:00'),
               ('a', :'hash_a', 'blocked', 3, '2025-05-03T09:00:00-03:00'),
               ('b', :'hash_b', 'blocked', 3, '2025-05-03T09:00:00-03:00'),
               ('a', :'hash_a', 'active (late)', 2, '2025-05-02T09:00:00-03:00')) v (who, key, step, cond, at);
SELECT CASE h.entity_key WHEN :'hash_a' THEN 'a' ELSE 'b' END AS who,
       h.entity, h.from_status, h.to_status, h.event_at, i.headers->>'hashkey' AS delivery
  FROM onboarding.history h JOIN onboarding.inbox i ON i.id = h.inbox_id
 WHERE h.provider = 'fitbank' AND h.entity_key IN (:'hash_a', :'hash_b')
 ORDER BY 1, h.event_at, h.id;
SELECT CASE account_key WHEN :'hash_a' THEN 'a' ELSE 'b' END AS who, status, last_event_at
  FROM onboarding.account WHERE provider = 'fitbank' AND account_key IN (:'hash_a', :'hash_b')
 ORDER BY 1;

-- Every delivery of this suite, in arrival order, with its outcome; and
-- the state is a pure function of the log.
SELECT step, event_type, subject, status_raw, event_at, outcome,
       regexp_replace(detail, 'delivery [0-9]+', 'delivery N') AS detail
  FROM ord_outcomes ORDER BY id;
SELECT count(*) AS differences FROM onboarding.verify();

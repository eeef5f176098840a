-- A corpus of deliveries of every provider and event type, for the load and
-- dump/restore tests.  psql variables: scale (entities per provider and
-- flow; about 30 bodies per unit), seed (makes the corpus repeatable).
-- Creates public.corpus (n, body, raw): n is 1..count in shuffled order;
-- body is the delivery as jsonb; raw is the same delivery as text, as a
-- provider would send it (Fitbank's unquoted Method, the others pretty-
-- printed), for ingest_text and INSERT (raw).  About 5% are duplicates.
SET timezone = 'UTC';
SELECT setseed(:seed) AS seeded \gset

CREATE TABLE public.corpus (n int, body jsonb NOT NULL, raw text);

-- QI Tech: reservation, KYC (with the owner's CPF, some invalid), additional
-- data, then opened or rejected; a few statuses nobody mapped.
INSERT INTO corpus (body)
SELECT jsonb_build_object('webhook_type', CASE WHEN s.status IN ('account_opened', 'account_rejected')
                                               THEN 'account' ELSE 'account_request.status_change' END,
                          'key', 'qi-' || a, 'status', s.status,
                          'event_datetime', to_char(timestamp '2025-01-01' + a * interval '1 hour'
                                                    + s.step * interval '7 minutes', 'YYYY-MM-DD HH24:MI:SS'),
                          'data', jsonb_build_object('account_info', jsonb_build_object(
                                      'account_branch', '0001', 'account_number', (1000000 + a)::text,
                                      'account_digit', (a % 10)::text),
                                  'account_owner', jsonb_build_object('name', 'Titular ' || a,
                                      'document_number', CASE WHEN a % 3 = 0 THEN '615.120.612-63'
                                                              ELSE lpad((a * 7919)::text, 11, '0') END)))
     || CASE WHEN s.status = 'rejected' THEN '{"rejection_reason": "UNSC"}'::jsonb ELSE '{}' END
  FROM generate_series(1, 4 * :scale) a,
       LATERAL (VALUES (1, 'pending_bacen_validation'), (2, 'pending_kyc_analysis'),
                       (3, CASE WHEN a % 17 = 0 THEN 'pending_mystery' ELSE 'pending_additional_data' END),
                       (4, CASE a % 5 WHEN 0 THEN 'rejected' WHEN 1 THEN 'account_rejected'
                                      ELSE 'account_opened' END)) s (step, status);

-- Fitbank: account conditions, documents, the person's condition, closures.
INSERT INTO corpus (body)
SELECT jsonb_build_object('Method', 'UpdateAccount', 'AccountKey', 'fb-acc-' || p,
                          'TaxNumber', lpad((p * 7919)::text, 11, '0'),
                          'AccountConditionType', c.code, 'AccountStatus', 1,
                          'SendDate', to_char(timestamp '2025-02-01' + p * interval '1 hour'
                                              + c.step * interval '5 minutes', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                          'PartnerId', 860, 'BusinessUnitId', 820)
  FROM generate_series(1, 3 * :scale) p,
       LATERAL (VALUES (1, 0), (2, 1), (3, 2), (4, CASE WHEN p % 4 = 0 THEN 3 ELSE 2 END),
                       (5, CASE WHEN p % 8 = 0 THEN 4 ELSE 2 END)) c (step, code);
INSERT INTO corpus (body)
SELECT jsonb_build_object('Method', CASE WHEN d.kind = 2 THEN 'UpdateAccountSignerDocument'
                                         ELSE 'UpdatePersonDocument' END,
                          'BusinessUnitId', 820,
                          'Account', jsonb_build_object('AccountKey', 'fb-acc-' || p),
                          'Document', jsonb_build_object('DocumentKey', 'fb-doc-' || p || '-' || d.kind,
                                                         'DocumentType', d.kind * 3 + 1,
                                                         'TaxNumber', lpad((p * 7919)::text, 11, '0'),
                                                         'DocumentStatus', s.code,
                                                         'FileName', 'f' || p || '.jpg'),
                          'SendDate', to_char(timestamp '2025-02-01' + p * interval '1 hour'
                                              + s.step * interval '3 minutes', 'YYYY-MM-DD"T"HH24:MI:SS'))
  FROM generate_series(1, 3 * :scale) p, generate_series(0, 2) d (kind),
       LATERAL (VALUES (1, 4), (2, 0), (3, CASE WHEN (p + d.kind) % 6 = 0 THEN 2 ELSE 1 END)) s (step, code);
INSERT INTO corpus (body)
SELECT jsonb_build_object('Method', 'UpdatePersonCondition', 'TaxNumber', 'PF-' || p,
                          'MessageClassification', s.code, 'Message', 'm' || s.code,
                          'AccountsKey', jsonb_build_array('fb-acc-' || p),
                          'SendDate', to_char(timestamp '2025-02-01' + p * interval '1 hour'
                                              + s.step * interval '11 minutes', 'YYYY-MM-DD"T"HH24:MI:SS'))
  FROM generate_series(1, 3 * :scale) p,
       LATERAL (VALUES (1, 0), (2, CASE p % 3 WHEN 0 THEN 1 WHEN 1 THEN 3 ELSE 4 END),
                       (3, 4)) s (step, code);
INSERT INTO corpus (body)
SELECT jsonb_build_object('Method', 'UpdateCloseAccount', 'AccountKey', 'fb-acc-' || p,
                          'CloseAccountInformationStatus', s.code, 'Message', 'c' || s.code,
                          'SendDate', to_char(timestamp '2025-02-01' + p * interval '1 hour'
                                              + (40 + s.step) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS'))
  FROM generate_series(1, 3 * :scale, 3) p,
       LATERAL (VALUES (1, 0), (2, 1), (3, CASE WHEN p % 2 = 0 THEN 5 ELSE 3 END)) s (step, code);

-- Celcoin: flow option 1 or 2, files, the proposal, the account, its status.
INSERT INTO corpus (body)
SELECT jsonb_build_object('entity', e.entity, 'status', e.status,
                          CASE WHEN p % 2 = 0 THEN 'createTimestamp' ELSE 'createTimeStamp' END,
                          to_char(timestamp '2025-03-01' + p * interval '1 hour'
                                  + e.step * interval '2 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                          'webhookId', 'wh-' || p || '-' || e.step,
                          'body', jsonb_build_object('proposalId', 'cc-' || p, 'onboardingId', 'cc-' || p,
                                                     'clientCode', 'client-' || p,
                                                     'documentNumber', '61512061263',
                                                     'proposalType', 'PF')
                                  || CASE WHEN e.entity = 'onboarding-file' THEN jsonb_build_object('files',
                                         jsonb_build_array(jsonb_build_object('type', 'SELFIE', 'url', 'https://x/' || p),
                                                           jsonb_build_object('type', 'CNH_FRONT', 'url', 'https://y/' || p)))
                                          WHEN e.entity = 'onboarding-create' THEN jsonb_build_object('account',
                                         jsonb_build_object('branch', '0001', 'account', (5000 + p)::text))
                                          WHEN e.entity = 'account-status' THEN '{"reason": "ordem judicial"}'
                                          ELSE '{}' END)
  FROM generate_series(1, 3 * :scale) p,
       LATERAL (VALUES (1, 'onboarding-proposal', 'CREATED'),
                       (2, CASE WHEN p % 2 = 0 THEN 'onboarding-backgroundcheck' ELSE 'onboarding-documentscopy' END, 'PENDING'),
                       (3, CASE WHEN p % 2 = 0 THEN 'onboarding-backgroundcheck' ELSE 'onboarding-documentscopy' END, 'APPROVED'),
                       (4, CASE WHEN p % 2 = 0 THEN 'onboarding-documentscopy' ELSE 'onboarding-backgroundcheck' END, 'processing'),
                       (5, 'onboarding-file', 'PROCESSING'),
                       (6, CASE WHEN p % 2 = 0 THEN 'onboarding-documentscopy' ELSE 'onboarding-backgroundcheck' END,
                           CASE WHEN p % 7 = 0 THEN 'REPROVED' ELSE 'Approved' END),
                       (7, 'onboarding-proposal', CASE WHEN p % 7 = 0 THEN 'REPROVED' ELSE 'APPROVED' END),
                       (8, 'onboarding-create', CASE WHEN p % 11 = 0 THEN 'ERROR' ELSE 'CONFIRMED' END),
                       (9, 'account-status', 'BLOQUEADO'),
                       (10, 'account-status', 'ATIVO')) e (step, entity, status);

-- a few bodies nobody knows
INSERT INTO corpus (body)
SELECT jsonb_build_object('event', 'ping', 'n', i) FROM generate_series(1, :scale / 10 + 1) i;

-- the text a provider would send: Fitbank's documented defect, the others pretty-printed
UPDATE corpus
   SET raw = CASE WHEN body ? 'Method'
                  THEN regexp_replace(body::text, '"Method": "([A-Za-z]+)"', '"Method": \1')
                  ELSE jsonb_pretty(body) END;

-- about 5% duplicates, then a shuffled delivery order
INSERT INTO corpus (body, raw) SELECT body, raw FROM corpus WHERE random() < 0.05;
UPDATE corpus SET n = r.n
  FROM (SELECT ctid, row_number() OVER (ORDER BY random()) n FROM corpus) r
 WHERE corpus.ctid = r.ctid;
ALTER TABLE corpus ADD PRIMARY KEY (n);
ANALYZE corpus;

-- State is a pure function of the log: a generated corpus of every provider
-- and event type, delivered in a shuffled order with duplicates, derives the
-- same state and history as a rebuild that replays it.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SELECT setseed(0.20261123);

CREATE TEMP TABLE corpus (body jsonb, n int);

-- QI Tech: reservation, KYC, additional data, then opened or rejected.
INSERT INTO corpus (body)
SELECT jsonb_build_object('webhook_type', CASE WHEN s.status IN ('account_opened', 'account_rejected')
                                               THEN 'account' ELSE 'account_request.status_change' END,
                          'key', 'qi-' || a, 'status', s.status,
                          'event_datetime', to_char(timestamp '2025-01-01' + a * interval '1 hour'
                                                    + s.step * interval '7 minutes', 'YYYY-MM-DD HH24:MI:SS'),
                          'data', jsonb_build_object('account_info', jsonb_build_object(
                                      'account_branch', '0001', 'account_number', (1000000 + a)::text,
                                      'account_digit', (a % 10)::text)))
     || CASE WHEN s.status = 'rejected' THEN '{"rejection_reason": "UNSC"}'::jsonb ELSE '{}' END
  FROM generate_series(1, 800) a,
       LATERAL (VALUES (1, 'pending_bacen_validation'), (2, 'pending_kyc_analysis'),
                       (3, 'pending_additional_data'),
                       (4, CASE a % 5 WHEN 0 THEN 'rejected' WHEN 1 THEN 'account_rejected'
                                      WHEN 2 THEN 'account_opened' ELSE 'account_opened' END)) s (step, status);

-- Fitbank: account conditions, documents, the person's condition, closures.
INSERT INTO corpus (body)
SELECT jsonb_build_object('Method', 'UpdateAccount', 'AccountKey', 'fb-acc-' || p,
                          'TaxNumber', lpad((p * 7919)::text, 11, '0'),
                          'AccountConditionType', c.code, 'AccountStatus', 1,
                          'SendDate', to_char(timestamp '2025-02-01' + p * interval '1 hour'
                                              + c.step * interval '5 minutes', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                          'PartnerId', 860, 'BusinessUnitId', 820)
  FROM generate_series(1, 600) p,
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
  FROM generate_series(1, 600) p, generate_series(0, 2) d (kind),
       LATERAL (VALUES (1, 4), (2, 0), (3, CASE WHEN (p + d.kind) % 6 = 0 THEN 2 ELSE 1 END)) s (step, code);
INSERT INTO corpus (body)
SELECT jsonb_build_object('Method', 'UpdatePersonCondition', 'TaxNumber', 'PF-' || p,
                          'MessageClassification', s.code, 'Message', 'm' || s.code,
                          'AccountsKey', jsonb_build_array('fb-acc-' || p),
                          'SendDate', to_char(timestamp '2025-02-01' + p * interval '1 hour'
                                              + s.step * interval '11 minutes', 'YYYY-MM-DD"T"HH24:MI:SS'))
  FROM generate_series(1, 600) p,
       LATERAL (VALUES (1, 0), (2, CASE p % 3 WHEN 0 THEN 1 WHEN 1 THEN 3 ELSE 4 END),
                       (3, 4)) s (step, code);
INSERT INTO corpus (body)
SELECT jsonb_build_object('Method', 'UpdateCloseAccount', 'AccountKey', 'fb-acc-' || p,
                          'CloseAccountInformationStatus', s.code, 'Message', 'c' || s.code,
                          'SendDate', to_char(timestamp '2025-02-01' + p * interval '1 hour'
                                              + (40 + s.step) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS'))
  FROM generate_series(1, 600, 3) p,
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
                                          ELSE '{}' END)
  FROM generate_series(1, 600) p,
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

-- about 5% duplicates, then a shuffled delivery order
INSERT INTO corpus (body) SELECT body FROM corpus WHERE random() < 0.05;
UPDATE corpus SET n = r.n
  FROM (SELECT ctid, row_number() OVER (ORDER BY random()) n FROM corpus) r
 WHERE corpus.ctid = r.ctid;
SELECT count(*) >= 10000 AS at_least_10000,
       count(DISTINCT body->>'webhook_type') + count(DISTINCT body->>'Method')
       + count(DISTINCT body->>'entity') AS event_types
  FROM corpus;

SELECT max(id) AS before_corpus FROM onboarding.inbox \gset
INSERT INTO onboarding.inbox (payload) SELECT body FROM corpus ORDER BY n;

-- every delivery stored, every outcome accounted for
SELECT count(*) = (SELECT count(*) FROM corpus) AS all_stored,
       count(*) FILTER (WHERE outcome = 'duplicate') > 0 AS has_duplicates,
       count(*) FILTER (WHERE outcome = 'stale') > 0 AS has_stale,
       count(*) FILTER (WHERE outcome = 'applied') > 0 AS has_applied
  FROM onboarding.inbox WHERE id > :before_corpus;

-- verify(): live state equals a (rolled back) rebuild
SELECT count(*) AS differences FROM onboarding.verify();

-- rebuild() reproduces state, history and the inbox's derived columns exactly
CREATE TEMP TABLE live AS SELECT * FROM onboarding.derived_rows();
SELECT onboarding.rebuild() = (SELECT count(*) FROM onboarding.inbox) AS replayed_all;
CREATE TEMP TABLE rebuilt AS SELECT * FROM onboarding.derived_rows();
SELECT count(*) AS rows_compared FROM live;
SELECT 'only live' AS side, * FROM (SELECT * FROM live EXCEPT SELECT * FROM rebuilt) a
UNION ALL
SELECT 'only rebuilt', * FROM (SELECT * FROM rebuilt EXCEPT SELECT * FROM live) b;

-- where the Celcoin accounts ended (the seed makes the shuffle, and so this, repeatable)
SELECT status, count(*) FROM onboarding.account WHERE provider = 'celcoin' GROUP BY 1 ORDER BY 1;

-- test/reliability/multibyte.sql — deliveries whose keys are made of
-- multibyte UTF-8 characters, for test/scripts/dump_restore.sh.
--
-- Over-long keys (more than the 1024 bytes a key may have), direct and
-- derived, for every provider, laid out so that byte 40 and byte 1024 of the
-- key fall inside a character:
--   'ab' || 400 x '€' (3 bytes)  characters start at 2 + 3i: not 40, not 1024
--   'a' || 600 x 'é' (2 bytes)   characters start at 1 + 2i
--   'abc' || 300 x '😀' (4 bytes) characters start at 3 + 4i
-- Derived keys: a Fitbank document without DocumentKey is keyed
-- <taxpayer>:<DocumentType>, a Celcoin file <proposalId>:<type>.
-- Each body is delivered twice (the second a duplicate), through ingest()
-- and through INSERT (raw).  Then keys just over 40 bytes that are valid
-- (applied), and multibyte values that details quote (an unknown status, a
-- tax id that is not one, an unknown document type).  Every delivery is
-- tagged in its headers with {"mb": name}.

CREATE TEMP TABLE mb (name text, body jsonb);
INSERT INTO mb VALUES
('qitech key 3-byte', jsonb_build_object('webhook_type', 'account_request.status_change',
    'key', 'ab' || repeat('€', 400), 'status', 'pending_kyc_analysis',
    'event_datetime', '2025-05-01 10:00:00')),
('qitech data key 2-byte', jsonb_build_object('webhook_type', 'account_request.status_change',
    'data', jsonb_build_object('account_request_key', 'a' || repeat('é', 600), 'status', 'pending_kyc_analysis'),
    'event_datetime', '2025-05-01 10:00:00')),
('fitbank account key 2-byte', jsonb_build_object('Method', 'UpdateAccount', 'AccountKey', 'a' || repeat('é', 600),
    'TaxNumber', '24952122204', 'AccountConditionType', 2, 'AccountStatus', 1,
    'SendDate', '2025-05-01T10:00:00-03:00')),
('fitbank account taxpayer 4-byte', jsonb_build_object('Method', 'UpdateAccount', 'AccountKey', '',
    'TaxNumber', 'abc' || repeat('😀', 300), 'AccountConditionType', 0, 'AccountStatus', 0,
    'SendDate', '2025-05-01T10:00:00-03:00')),
('fitbank closure key 4-byte', jsonb_build_object('Method', 'UpdateCloseAccount', 'AccountKey', 'abc' || repeat('😀', 300),
    'CloseAccountInformationStatus', 5, 'Message', 'Conta cancelada — €',
    'SendDate', '2025-05-01T10:00:00-03:00')),
('fitbank proposal taxpayer 3-byte', jsonb_build_object('Method', 'UpdatePersonCondition',
    'TaxNumber', 'ab' || repeat('€', 400), 'MessageClassification', 4, 'Message', 'aprovação',
    'SendDate', '2025-05-01T10:00:00-03:00')),
('fitbank document key 3-byte', jsonb_build_object('Method', 'UpdatePersonDocument',
    'Document', jsonb_build_object('DocumentKey', 'ab' || repeat('€', 400), 'DocumentType', 1,
                                   'DocumentStatus', 4, 'TaxNumber', '24952122204'),
    'SendDate', '2025-05-01T10:00:00-03:00')),
('fitbank document derived taxpayer 4-byte', jsonb_build_object('Method', 'UpdatePersonDocument',
    'Document', jsonb_build_object('DocumentKey', '', 'DocumentType', 1, 'DocumentStatus', 4,
                                   'TaxNumber', 'abc' || repeat('😀', 300)),
    'SendDate', '2025-05-01T10:00:00-03:00')),
-- '61512061263:' is 12 bytes, then 'xy': characters start at 14 + 3i
('fitbank document derived type 3-byte', jsonb_build_object('Method', 'UpdatePersonDocument',
    'Document', jsonb_build_object('DocumentKey', '', 'DocumentType', 'xy' || repeat('€', 400),
                                   'DocumentStatus', 4, 'TaxNumber', '615.120.612-63'),
    'SendDate', '2025-05-01T10:00:00-03:00')),
('celcoin proposal id 3-byte', jsonb_build_object('entity', 'onboarding-proposal', 'status', 'CREATED',
    'createTimestamp', '2026-05-01T10:00:00Z', 'body', jsonb_build_object('proposalId', 'ab' || repeat('€', 400)))),
('celcoin check proposal id 2-byte', jsonb_build_object('entity', 'onboarding-backgroundcheck', 'status', 'PENDING',
    'createTimestamp', '2026-05-01T10:00:00Z', 'body', jsonb_build_object('proposalId', 'a' || repeat('é', 600)))),
('celcoin create onboarding id 4-byte', jsonb_build_object('entity', 'onboarding-create', 'status', 'CONFIRMED',
    'createTimestamp', '2026-05-01T10:00:00Z',
    'body', jsonb_build_object('onboardingId', 'abc' || repeat('😀', 300), 'proposalId', 'abc' || repeat('😀', 300),
                               'account', jsonb_build_object('branch', '0001', 'account', '1', 'name', 'João Ñandú')))),
('celcoin account-status onboarding id 3-byte', jsonb_build_object('entity', 'account-status', 'status', 'ATIVO',
    'createTimestamp', '2026-05-01T10:00:00Z', 'body', jsonb_build_object('onboardingId', 'ab' || repeat('€', 400)))),
-- 'p-mb-1:' is 7 bytes: characters of the type start at 7 + 2i
('celcoin file derived type 2-byte', jsonb_build_object('entity', 'onboarding-file', 'status', 'SUCCESS',
    'createTimestamp', '2026-05-01T10:00:00Z',
    'body', jsonb_build_object('proposalId', 'p-mb-1', 'files', jsonb_build_array(
        jsonb_build_object('type', repeat('é', 600), 'url', 'https://example.com/a.pdf'),
        jsonb_build_object('type', 'SELFIE', 'url', 'https://example.com/b.jpg'))))),
('celcoin file derived proposal id 3-byte', jsonb_build_object('entity', 'onboarding-file', 'status', 'SUCCESS',
    'createTimestamp', '2026-05-01T10:00:00Z',
    'body', jsonb_build_object('proposalId', 'ab' || repeat('€', 400), 'type', 'RG_FRONT',
                               'url', 'https://example.com/c.pdf'))),
-- valid keys over 40 bytes, cut at byte 40 the same way: applied
('qitech key 62 bytes', jsonb_build_object('webhook_type', 'account_request.status_change',
    'key', 'ab' || repeat('€', 20), 'status', 'pending_kyc_analysis',
    'event_datetime', '2025-05-01 10:00:00',
    'data', jsonb_build_object('account_owner', jsonb_build_object('name', 'Zoë Ångström 😀')))),
('fitbank document derived 60 bytes', jsonb_build_object('Method', 'UpdatePersonDocument',
    'Document', jsonb_build_object('DocumentKey', '', 'DocumentType', 'xy' || repeat('€', 16),
                                   'DocumentStatus', 4, 'TaxNumber', '615.120.612-63',
                                   'Message', 'Documento ilegível — reenvie'),
    'SendDate', '2025-05-01T10:00:00-03:00')),
('celcoin file derived 47 bytes', jsonb_build_object('entity', 'onboarding-file', 'status', 'SUCCESS',
    'createTimestamp', '2026-05-01T10:00:00Z',
    'body', jsonb_build_object('proposalId', 'p-mb-2', 'files', jsonb_build_array(
        jsonb_build_object('type', repeat('é', 20), 'url', 'https://example.com/d.pdf'))))),
-- multibyte values quoted in details
('qitech unknown status', jsonb_build_object('webhook_type', 'account_request.status_change',
    'key', 'mb-status', 'status', 'pendência_' || repeat('€', 30), 'event_datetime', '2025-05-01 10:00:00')),
('fitbank tax id not one', jsonb_build_object('Method', 'UpdateAccount', 'AccountKey', 'mb-taxid',
    'TaxNumber', 'ção.123-45😀', 'AccountConditionType', 0, 'AccountStatus', 0,
    'SendDate', '2025-05-01T10:00:00-03:00')),
('celcoin time not one', jsonb_build_object('entity', 'account-status', 'status', 'ATIVO',
    'createTimestamp', 'amanhã às 10h — ' || repeat('€', 30), 'body', jsonb_build_object('onboardingId', 'mb-time')));

-- each twice: through ingest(), then as text through INSERT (raw)
SELECT count(onboarding.ingest(body, NULL, jsonb_build_object('mb', name, 'door', 'ingest'))) FROM mb;
INSERT INTO onboarding.inbox (raw, headers)
SELECT body::text, jsonb_build_object('mb', name, 'door', 'raw') FROM mb;

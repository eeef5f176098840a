-- test/bench/corpus.sql — the benchmark's delivery corpus, generated in SQL.
--
-- Realistic onboarding flows, one per simulated customer, for the three
-- providers and every event type the extension knows:
--
--   QI Tech  account_request.status_change (pending_bacen_validation,
--            pending_kyc_analysis, pending_additional_data, rejected) and the
--            legacy `account` event (account_opened, account_rejected);
--   Fitbank  UpdateAccount, UpdatePersonDocument, UpdateAccountSignerDocument
--            (companies), UpdatePersonCondition, UpdateCloseAccount;
--   Celcoin  onboarding-proposal, onboarding-backgroundcheck,
--            onboarding-documentscopy, onboarding-file, onboarding-create,
--            account-status.
--
-- Body shapes follow test/fixtures (names, masked and bare valid CPF/CNPJ,
-- long file URLs, time formats with offsets, fractions and `Z`). Each flow's
-- event times increase; flows start 15 s apart and last minutes to hours
-- (closures and account-status changes come hours after the opening), so
-- thousands of entities are in flight at once and their deliveries
-- interleave; the corpus is the first :scale deliveries of that stream, a
-- window in which early customers are further along than late ones. A
-- delivery arrives 0-5 s after its event. On top of that:
--   * about 2% of deliveries are swapped with the previous delivery for the
--     same entity (they arrive out of order: stale or illegal outcomes);
--   * about 5% are delivered again 1 s to 10 min later (at-least-once:
--     byte-identical duplicates).
--
-- Creates (in the current database) schema `bench` with the generator
-- functions, bench.corpus(n, body, ent, event_at): exactly :scale deliveries
-- numbered in delivery order, with the generator's entity and event time of
-- each, and bench.corpus_info (its counts). Deterministic for a
-- given :scale (setseed). run.sh then COPYs it to a file so that every load
-- reads the same bytes.
--
-- psql variables: scale (deliveries); persons (optional, default 0): a
-- number that makes the tax ids another set of valid ones (make
-- bench-scale gives each chunk its own, so that every chunk's customers are
-- other people).

\set ON_ERROR_STOP on
\if :{?persons}
\else
\set persons 0
\endif
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;   -- keep random() repeatable
SET timezone = 'UTC';

DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
SELECT set_config('bench.persons', :'persons', false) IS NOT NULL AS persons_set \gset

-- A UUID-shaped key derived from a text (stable across runs). The third group
-- is always 4e00: run.sh rewrites it to make a repetition of the corpus
-- address other entities (see the memory measurement).
CREATE FUNCTION bench.uid(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4e00-'
           || substr('89ab', (get_byte(decode(substr(h, 17, 2), 'hex'), 0) % 4) + 1, 1)
           || substr(h, 18, 3) || '-' || substr(h, 21, 12)
      FROM md5(t) h
$$;

-- A valid CPF (11 digits, check digits computed) from any number (and the
-- set of people, bench.persons: n moved by ten million a set).
CREATE FUNCTION bench.cpf(n bigint) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    d int[];
    s int;
    r int;
    m bigint := n + current_setting('bench.persons')::bigint * 10000000;
    base text := lpad(((m * 7919 + 100000000) % 899999999 + 100000000)::text, 9, '0');
BEGIN
    d := string_to_array(base, NULL)::int[];
    s := 0;
    FOR i IN 1..9 LOOP s := s + d[i] * (11 - i); END LOOP;
    r := s % 11;
    d := d || CASE WHEN r < 2 THEN 0 ELSE 11 - r END;
    s := 0;
    FOR i IN 1..10 LOOP s := s + d[i] * (12 - i); END LOOP;
    r := s % 11;
    d := d || CASE WHEN r < 2 THEN 0 ELSE 11 - r END;
    RETURN array_to_string(d, '');
END $$;

-- A valid numeric CNPJ (14 digits; branch 0001) from any number (and the
-- set of people, as bench.cpf).
CREATE FUNCTION bench.cnpj(n bigint) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    w1 int[] := '{5,4,3,2,9,8,7,6,5,4,3,2}';
    w2 int[] := '{6,5,4,3,2,9,8,7,6,5,4,3,2}';
    d int[];
    s int;
    r int;
    m bigint := n + current_setting('bench.persons')::bigint * 10000000;
BEGIN
    d := string_to_array(lpad(((m * 104729) % 99999999 + 1)::text, 8, '0') || '0001', NULL)::int[];
    s := 0;
    FOR i IN 1..12 LOOP s := s + d[i] * w1[i]; END LOOP;
    r := s % 11;
    d := d || CASE WHEN r < 2 THEN 0 ELSE 11 - r END;
    s := 0;
    FOR i IN 1..13 LOOP s := s + d[i] * w2[i]; END LOOP;
    r := s % 11;
    d := d || CASE WHEN r < 2 THEN 0 ELSE 11 - r END;
    RETURN array_to_string(d, '');
END $$;

-- 999.999.999-99 / 99.999.999/9999-99
CREATE FUNCTION bench.mask(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE length(t)
           WHEN 11 THEN substr(t, 1, 3) || '.' || substr(t, 4, 3) || '.' || substr(t, 7, 3) || '-' || substr(t, 10, 2)
           ELSE substr(t, 1, 2) || '.' || substr(t, 3, 3) || '.' || substr(t, 6, 3) || '/' || substr(t, 9, 4) || '-' || substr(t, 13, 2)
           END
$$;

CREATE FUNCTION bench.person_name(p int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT (ARRAY['Ana', 'Bruno', 'Camila', 'Diego', 'Eduarda', 'Felipe', 'Gabriela', 'Henrique',
                  'Isabela', 'João', 'Larissa', 'Marcos', 'Natália', 'Otávio', 'Patrícia', 'Rafael',
                  'Sabrina', 'Thiago', 'Vanessa', 'Wagner'])[p % 20 + 1] || ' ' ||
           (ARRAY['Souza', 'Silva', 'Oliveira', 'Santos', 'Pereira', 'Lima', 'Carvalho', 'Ferreira',
                  'Rodrigues', 'Almeida', 'Costa', 'Gomes', 'Martins', 'Araújo', 'Barbosa', 'Ribeiro',
                  'Rocha', 'Dias', 'Nascimento', 'Moreira'])[(p / 20) % 20 + 1] || ' ' ||
           (ARRAY['Alves', 'Batista', 'Freitas', 'Teixeira', 'Mendes', 'Cardoso', 'Correia', 'Pinto',
                  'Moura', 'Cavalcanti'])[(p / 400) % 10 + 1]
$$;

CREATE FUNCTION bench.company_name(p int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT (ARRAY['MERCADO', 'PADARIA', 'AUTO PEÇAS', 'FARMÁCIA', 'DISTRIBUIDORA', 'CONFECÇÕES',
                  'TRANSPORTES', 'RESTAURANTE'])[p % 8 + 1] || ' ' ||
           (ARRAY['SOL NASCENTE', 'BOA VISTA', 'SÃO JORGE', 'NOVA ONDA', 'PRIMAVERA', 'CENTRAL',
                  'DO VALE', 'ESTRELA'])[(p / 8) % 8 + 1] || ' ' ||
           (ARRAY['LTDA', 'ME', 'EIRELI', 'S.A.'])[(p / 64) % 4 + 1]
$$;

-- Where customer p's flow starts. Customers take the providers in turn
-- (p % 3); within a provider, variants are chosen by p / 3.
CREATE FUNCTION bench.t0(p int) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT timestamptz '2025-03-03 11:00:00+00' + p * interval '15 seconds'
$$;

-- ---------------------------------------------------------------------------
-- QI Tech: reservation, KYC, sometimes additional data, then opened (legacy
-- `account` event) or rejected (either event type). One customer in ten is a
-- company (CNPJ owner, CPF allowed user).
-- ---------------------------------------------------------------------------
CREATE FUNCTION bench.qitech(p int) RETURNS TABLE (ent text, at timestamptz, body jsonb)
LANGUAGE sql STABLE AS $$
    SELECT 'qi/' || k.key, t.at,
           jsonb_strip_nulls(jsonb_build_object(
               'webhook_type', s.webhook_type,
               'key', CASE WHEN s.step = 2 AND (p / 3) % 4 = 0 THEN NULL ELSE k.key END,
               'status', CASE WHEN s.step = 2 AND (p / 3) % 4 = 0 THEN NULL ELSE s.status END,
               'event_datetime', CASE (p / 3) % 3
                   WHEN 0 THEN to_char(t.at AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD HH24:MI:SS')
                   WHEN 1 THEN to_char(t.at AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD"T"HH24:MI:SS.MS') || '-03:00'
                   ELSE to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || 'Z' END,
               'rejection_reason', CASE WHEN s.status = 'rejected'
                                        THEN 'CPF com situação irregular na Receita Federal' END,
               'data', jsonb_strip_nulls(jsonb_build_object(
                   'account_request_key', k.key,
                   'status', s.status,
                   'account_info', jsonb_build_object(
                       'account_branch', '0001', 'account_number', (4000000 + p)::text,
                       'account_digit', ((p / 3) % 10)::text,
                       'account_key', CASE WHEN s.status = 'account_opened' THEN bench.uid('qi-acc-' || p) END,
                       'financial_institution_code', CASE WHEN s.status = 'account_opened' THEN '329' END),
                   'account_owner', CASE WHEN s.step <> 2 OR (p / 3) % 4 <> 0 THEN jsonb_build_object(
                       'name', CASE WHEN (p / 3) % 10 = 0 THEN bench.company_name(p) ELSE bench.person_name(p) END,
                       'document_number', CASE WHEN (p / 3) % 10 = 0 THEN bench.mask(bench.cnpj(p))
                                               WHEN (p / 3) % 2 = 0 THEN bench.mask(bench.cpf(p))
                                               ELSE bench.cpf(p) END) END,
                   'allowed_user', CASE WHEN (p / 3) % 10 = 0 THEN jsonb_build_object(
                       'name', bench.person_name(p + 7), 'document_number', bench.cpf(p + 7)) END))))
      FROM (SELECT bench.uid('qi-' || p) AS key) k,
           LATERAL (VALUES
               (1, 0,    'account_request.status_change', 'pending_bacen_validation', true),
               (2, 6,    'account_request.status_change', 'pending_kyc_analysis', true),
               (3, 95,   'account_request.status_change', 'pending_additional_data', (p / 3) % 3 = 0),
               (4, 180,  CASE WHEN (p / 3) % 6 = 0 THEN 'account_request.status_change' ELSE 'account' END,
                         CASE (p / 3) % 6 WHEN 0 THEN 'rejected' WHEN 1 THEN 'account_rejected'
                                    ELSE 'account_opened' END, true)
           ) s (step, minutes, webhook_type, status, included),
           LATERAL (SELECT bench.t0(p) + s.minutes * interval '1 minute'
                           + ((p / 3) % 60) * interval '1 second' AS at) t
     WHERE s.included
$$;

-- ---------------------------------------------------------------------------
-- Fitbank: the account is created, documents are sent and analysed (one in
-- seven disapproved then resubmitted), a company's signer sends a document,
-- the person's condition is decided, the account verified, sometimes limited
-- or blocked, and one in six closed (close request, then Terminated).
-- ---------------------------------------------------------------------------
CREATE FUNCTION bench.fitbank(p int) RETURNS TABLE (ent text, at timestamptz, body jsonb)
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT '860590-' || lpad((254000 + (p / 3) % 997)::text, 6, '0') || '-' || (7100000 + p)::text
                   || '-' || ((p / 3) % 10)::text AS acc,
               CASE WHEN (p / 3) % 5 = 0 THEN bench.cnpj(p) ELSE bench.cpf(p) END AS tax,
               (p / 3) % 5 = 0 AS pj,
               bench.t0(p) AS t0
    ),
    -- ticks: time since the account was created, in units of 20 seconds
    ev (ent, ticks, body) AS (
        -- the account's conditions: 0 created, 2 verified, 1 limited, 3 blocked, 4 terminated
        SELECT 'fb/acc/' || c.acc, a.ticks,
               jsonb_build_object('Method', 'UpdateAccount', 'PartnerId', 860, 'BusinessUnitId', 820,
                   'TaxNumber', CASE WHEN (p / 3) % 2 = 0 THEN bench.mask(c.tax) ELSE c.tax END,
                   'AccountConditionType', a.code, 'AccountStatus', CASE WHEN a.code IN (1, 2) THEN 1 ELSE 0 END,
                   'CreationDate', to_char(c.t0 AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD"T"HH24:MI:SS.MS'),
                   'Bank', '450', 'BankBranch', '0001', 'BankAccount', (71000000 + p)::text,
                   'BankAccountDigit', ((p / 3) % 10)::text, 'AccountKey', c.acc, 'SpbAccount', NULL)
          FROM c, LATERAL (VALUES (0, 0, true), (2, 300, true), (1, 400, (p / 3) % 4 = 1),
                                  (3, 500, (p / 3) % 8 = 0), (4, 800, (p / 3) % 6 = 0)) a (code, ticks, included)
         WHERE a.included
        UNION ALL
        -- documents: sent, awaiting validation, then validated (or disapproved, resubmitted, validated)
        SELECT 'fb/doc/' || dk.key, 1 + d.n * 4 + s.step * 17,
               jsonb_build_object('Method', 'UpdatePersonDocument', 'BusinessUnitId', 820, 'PartnerId', 860,
                   'Account', jsonb_build_object('AccountStatus', 0, 'AccountConditionType', 0,
                       'TaxNumber', c.tax, 'Bank', '450', 'BankBranch', '0001',
                       'BankAccount', (71000000 + p)::text, 'BankAccountDigit', ((p / 3) % 10)::text,
                       'AccountKey', c.acc),
                   'Document', jsonb_build_object(
                       'FileName', c.tax || '_' || to_char(c.t0, 'DDMMYYYY') || '_' || d.file || '.jpeg',
                       'Description', d.file, 'Extension', '.jpeg', 'ExpirationDate', NULL,
                       'DocumentStatus', s.code, 'DocumentType', d.type,
                       'DocumentKey', CASE WHEN (p / 3) % 9 = 0 THEN '' ELSE dk.key END,
                       'Reason', CASE WHEN s.code = 6 THEN 'Imagem ilegível' ELSE '' END,
                       'TaxNumber', c.tax, 'Message', '', 'PendingReason', NULL))
          FROM c,
               LATERAL (SELECT * FROM (VALUES (0, 0, 'RGFrente'), (1, 7, 'RGVerso'), (2, 14, 'Selfie'),
                                              (3, 4, 'CartaoCNPJ'), (4, 5, 'ContratoSocial')) v (n, type, file)
                         WHERE (v.n < 3) <> c.pj) d,
               LATERAL (SELECT CASE WHEN (p / 3) % 9 = 0 THEN c.tax || ':' || d.type
                                    ELSE bench.uid('fb-doc-' || p || '-' || d.type) END AS key) dk,
               LATERAL (SELECT * FROM (VALUES (0, 4), (1, 0), (2, 1), (2, 6), (3, 5), (4, 0), (5, 1)) v (step, code)
                         WHERE CASE WHEN (p / 3 + d.n) % 7 = 0 THEN (v.step, v.code) <> (2, 1)
                                    ELSE v.step < 3 AND (v.step, v.code) <> (2, 6) END) s
        UNION ALL
        -- a company's signer: identity sent, awaiting, then validated
        SELECT 'fb/doc/' || bench.uid('fb-signer-' || p), 30 + s.step * 20,
               jsonb_build_object('Method', 'UpdateAccountSignerDocument', 'BusinessUnitId', 820, 'PartnerId', 860,
                   'Account', jsonb_build_object('AccountStatus', 1, 'AccountConditionType', 0,
                       'TaxNumber', c.tax, 'Bank', '450', 'BankBranch', '0001',
                       'BankAccount', (71000000 + p)::text, 'BankAccountDigit', ((p / 3) % 10)::text,
                       'AccountKey', c.acc),
                   'Document', jsonb_build_object(
                       'FileName', bench.cpf(p + 3) || '_' || to_char(c.t0, 'DDMMYYYY') || '_CNH.jpeg',
                       'Description', 'CNH_Socio', 'Extension', '.jpeg', 'ExpirationDate', NULL,
                       'DocumentStatus', s.code, 'DocumentType', 3,
                       'DocumentKey', bench.uid('fb-signer-' || p), 'Reason', '',
                       'TaxNumber', bench.mask(bench.cpf(p + 3)), 'Message', '', 'PendingReason', NULL))
          FROM c, LATERAL (VALUES (0, 4), (1, 0), (2, 1)) s (step, code)
         WHERE c.pj
        UNION ALL
        -- the person's condition: sometimes divergent first, then approved (or rejected)
        SELECT 'fb/cond/' || c.tax, m.ticks,
               jsonb_build_object('Method', 'UpdatePersonCondition', 'PartnerId', 860, 'BusinessUnitId', 820,
                   'TaxNumber', CASE WHEN (p / 3) % 2 = 0 THEN bench.mask(c.tax) ELSE c.tax END,
                   'MessageClassification', m.code,
                   'Message', CASE m.code
                       WHEN 0 THEN 'Prezado(a) Cliente, foi constatada uma divergência nos dados enviados para a abertura de conta. Solicitamos, por gentileza, que encaminhe novamente as informações com as correções necessárias.'
                       WHEN 1 THEN 'Prezado(a) Cliente, após análise cadastral não foi possível aprovar a abertura de conta.'
                       ELSE 'Prezado(a) Cliente, seu cadastro foi aprovado. Seja bem-vindo(a)!' END,
                   'AccountsKey', jsonb_build_array(c.acc))
          FROM c, LATERAL (VALUES (0, 120, (p / 3) % 4 = 0), (CASE WHEN (p / 3) % 10 = 3 THEN 1 ELSE 4 END, 280, true)) m (code, ticks, included)
         WHERE m.included
        UNION ALL
        -- closing: created, processing, then approved (closes the account) or pending
        SELECT 'fb/close/' || c.acc, 600 + x.step * 45,
               jsonb_build_object('Method', 'UpdateCloseAccount', 'PartnerId', 860, 'BusinessUnitId', 820,
                   'CloseAccountInformationStatus', x.code,
                   'Message', CASE x.code WHEN 0 THEN 'Solicitação em análise' WHEN 1 THEN 'Em processamento'
                                          WHEN 3 THEN 'Conta possui saldo remanescente' ELSE 'Conta encerrada' END,
                   'Bank', '', 'BankAccount', '', 'BankBranch', '', 'BankAccountDigit', '',
                   'AccountKey', c.acc)
          FROM c, LATERAL (VALUES (0, 0), (1, 1), (2, CASE WHEN (p / 3) % 12 = 0 THEN 3 ELSE 5 END)) x (step, code)
         WHERE (p / 3) % 6 = 0
    )
    SELECT ev.ent, t.at,
           ev.body || jsonb_build_object('SendDate', CASE (p / 3) % 3
               WHEN 0 THEN to_char(t.at AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '1-03:00'
               WHEN 1 THEN to_char(t.at AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD"T"HH24:MI:SS')
               ELSE to_char(t.at AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD"T"HH24:MI:SS') || '-03:00' END)
      FROM c, ev, LATERAL (SELECT c.t0 + ev.ticks * interval '20 seconds' + ((p / 3) % 50) * interval '1 second' AS at) t
$$;

-- ---------------------------------------------------------------------------
-- Celcoin: the proposal, two checks (flow 1: background check first; flow 2:
-- documentscopy first), the files, approval, the account, then status changes
-- (judicial block and release, RFB block, closing). Some are reproved.
-- ---------------------------------------------------------------------------
CREATE FUNCTION bench.celcoin(p int) RETURNS TABLE (ent text, at timestamptz, body jsonb)
LANGUAGE sql STABLE AS $$
    WITH c AS (
        SELECT bench.uid('cc-' || p) AS id, 'CLI-' || lpad(p::text, 7, '0') AS client,
               CASE WHEN (p / 3) % 7 = 0 THEN bench.cnpj(p) ELSE bench.cpf(p) END AS tax,
               CASE WHEN (p / 3) % 7 = 0 THEN 'PJ' ELSE 'PF' END AS kind,
               CASE WHEN (p / 3) % 2 = 0 THEN 1 ELSE 2 END AS flow,
               (p / 3) % 13 = 0 AS reproved_first, (p / 3) % 17 = 0 AS reproved_second, (p / 3) % 19 = 0 AS create_error
    ),
    steps (step, seconds, entity, status) AS (
        -- the sequences of test/fixtures/celcoin flow1-* and flow2-*
        SELECT s.step, s.seconds, s.entity, s.status FROM c, LATERAL (VALUES
            (1, 1, 0, 'onboarding-proposal', 'CREATED'),
            (1, 2, 2, 'onboarding-backgroundcheck', 'CREATED'),
            (1, 3, 40, 'onboarding-backgroundcheck', 'PENDING'),
            (1, 4, 95, 'onboarding-backgroundcheck', 'PROCESSING'),
            (1, 5, 600, 'onboarding-backgroundcheck', CASE WHEN c.reproved_first THEN 'REPROVED' ELSE 'APPROVED' END),
            (1, 6, 610, 'onboarding-proposal', CASE WHEN c.reproved_first THEN 'REPROVED' ELSE 'PENDING_DOCUMENTSCOPY' END),
            (1, 7, 615, 'onboarding-documentscopy', 'CREATED'),
            (1, 8, 640, 'onboarding-documentscopy', 'PENDING'),
            (1, 9, 660, 'onboarding-documentscopy', 'PROCESSING'),
            (1, 10, 662, 'onboarding-file', 'PROCESSING'),
            (1, 11, 700, 'onboarding-proposal', 'PROCESSING_DOCUMENTSCOPY'),
            (1, 12, 1500, 'onboarding-documentscopy', CASE WHEN c.reproved_second THEN 'REPROVED' ELSE 'APPROVED' END),
            (2, 1, 0, 'onboarding-proposal', 'CREATED'),
            (2, 2, 3, 'onboarding-documentscopy', 'created'),
            (2, 3, 60, 'onboarding-documentscopy', 'processing'),
            (2, 4, 62, 'onboarding-file', 'SUCCESS'),
            (2, 5, 900, 'onboarding-documentscopy', CASE WHEN c.reproved_first THEN 'Reproved' ELSE 'approved' END),
            (2, 6, 905, 'onboarding-proposal', CASE WHEN c.reproved_first THEN 'REPROVED' END),
            (2, 7, 910, 'onboarding-backgroundcheck', 'pending'),
            (2, 8, 960, 'onboarding-backgroundcheck', 'Processing'),
            (2, 12, 1500, 'onboarding-backgroundcheck', CASE WHEN c.reproved_second THEN 'REPROVED' ELSE 'Approved' END),
            (0, 13, 1510, 'onboarding-proposal', CASE WHEN c.reproved_second THEN 'REPROVED' ELSE 'APPROVED' END),
            (0, 14, 1570, 'onboarding-create', CASE WHEN c.create_error THEN 'ERROR' ELSE 'CONFIRMED' END),
            (0, 15, 1572, 'onboarding-proposal', CASE WHEN c.create_error THEN 'RESOURCE_ERROR' ELSE 'RESOURCE_CREATED' END),
            (0, 16, 7200, 'account-status', CASE WHEN (p / 3) % 10 = 0 THEN 'BLOQUEIO-JUDICIAL' WHEN (p / 3) % 10 = 5 THEN 'BLOQUEIO-RFB' END),
            (0, 17, 14400, 'account-status', CASE WHEN (p / 3) % 10 = 0 THEN 'DESBLOQUEIO-JUDICIAL' WHEN (p / 3) % 10 = 5 THEN 'BLOQUEADO-RFB' END),
            (0, 18, 21600, 'account-status', CASE WHEN (p / 3) % 23 = 0 THEN 'EM CANCELAMENTO' END),
            (0, 19, 23000, 'account-status', CASE WHEN (p / 3) % 23 = 0 THEN 'ENCERRADO' END)
        ) s (flow, step, seconds, entity, status)
         WHERE s.flow IN (0, c.flow)
           AND s.status IS NOT NULL
           AND (s.step <= 6 OR NOT c.reproved_first)
           AND (s.step <= 13 OR NOT (c.reproved_first OR c.reproved_second))
           AND (s.step <= 15 OR NOT c.create_error)
    )
    SELECT CASE WHEN s.entity IN ('onboarding-create', 'account-status') THEN 'cc/acc/' ELSE 'cc/prop/' END || c.id,
           t.at,
           jsonb_build_object(
               'entity', s.entity, 'status', s.status,
               CASE WHEN (p / 3) % 5 = 1 THEN 'createTimeStamp' ELSE 'createTimestamp' END,
               CASE (p / 3) % 3 WHEN 0 THEN to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || 'Z'
                          WHEN 1 THEN to_char(t.at AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD"T"HH24:MI:SS.MS')
                          ELSE to_char(t.at AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '6' END,
               'webhookId', bench.uid('cc-wh-' || p || '-' || s.step),
               'body', CASE s.entity
                   -- flow 2: one archive (as flow2-04); flow 1: one URL per file
                   WHEN 'onboarding-file' THEN jsonb_build_object(
                       'proposalId', c.id, 'clientCode', c.client, 'documentNumber', c.tax)
                       || CASE WHEN c.flow = 2 THEN jsonb_build_object(
                              'url', 'https://prdonboardingexterno.blob.core.windows.net/documents/' || c.id
                                     || '/documentos.zip?sv=2023-11-03&se='
                                     || to_char(t.at + interval '15 days', 'YYYY-MM-DD"T"HH24"%3A"MI"%3A"SS"Z"')
                                     || '&sr=b&sp=r&sig=' || substr(md5(c.id), 1, 10),
                              'expirationTime', to_char(t.at + interval '15 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                          ELSE jsonb_build_object('files', (SELECT jsonb_agg(jsonb_build_object(
                                     'type', f.type,
                                     'url', 'https://prdonboardingexterno.blob.core.windows.net/documents/' || c.id || '/'
                                            || lower(f.type) || '.jpg?sv=2023-11-03&se='
                                            || to_char(t.at + interval '15 days', 'YYYY-MM-DD"T"HH24"%3A"MI"%3A"SS"Z"')
                                            || '&sr=b&sp=r&sig=' || substr(md5(c.id || f.type), 1, 10),
                                     'expirationTime', to_char(t.at + interval '15 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
                                   FROM unnest(CASE WHEN (p / 3) % 3 = 0 THEN ARRAY['RG_FRONT', 'RG_BACK', 'SELFIE']
                                                    ELSE ARRAY['CNH_FRONT', 'CNH_BACK', 'SELFIE'] END) f (type))) END
                   WHEN 'onboarding-create' THEN jsonb_build_object(
                       'onboardingId', c.id, 'proposalId', c.id, 'clientCode', c.client,
                       'createDate', to_char(t.at AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                       'account', CASE WHEN NOT c.create_error THEN jsonb_build_object(
                           'branch', '0001', 'account', (300000000 + p)::text,
                           'name', CASE WHEN c.kind = 'PJ' THEN bench.company_name(p) ELSE bench.person_name(p) END,
                           'documentNumber', c.tax, 'ispb', '13935893') END)
                   WHEN 'account-status' THEN jsonb_build_object(
                       'onboardingId', c.id, 'account', (300000000 + p)::text, 'clientCode', c.client,
                       'documentNumber', bench.mask(c.tax))
                       || CASE WHEN s.status LIKE '%JUDICIAL' THEN jsonb_build_object(
                              'processNumber', lpad(p::text, 7, '0') || '-93.2025.8.26.0100',
                              'reason', 'Bloqueio judicial determinado no processo ' || lpad(p::text, 7, '0') || '-93.2025.8.26.0100')
                          ELSE '{}' END
                   ELSE jsonb_build_object('proposalId', c.id, 'clientCode', c.client,
                                           'documentNumber', c.tax, 'proposalType', c.kind,
                                           'onboardingType', 'BAAS') END)
      FROM c, steps s,
           LATERAL (SELECT bench.t0(p) + s.seconds * interval '1 second' AS at) t
$$;

-- The event time a body carries (the generator's, exactly: whole seconds,
-- or microseconds with a seventh digit for Fitbank; naive times are São
-- Paulo's).
CREATE FUNCTION bench.event_at(b jsonb) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN t ~ '(Z|[+-]\d\d:\d\d)$' THEN t::timestamptz
                ELSE t::timestamp AT TIME ZONE 'America/Sao_Paulo' END
      FROM coalesce(b->>'event_datetime', b->>'SendDate', b->>'createTimestamp', b->>'createTimeStamp') t
$$;

-- ---------------------------------------------------------------------------
-- The corpus: every customer's flow (providers in turn), in delivery order,
-- with swapped neighbours and redeliveries; the first :scale deliveries.
-- About 10.6 deliveries per customer: scale / 9 customers is always enough.
-- ---------------------------------------------------------------------------
SELECT setseed(0.20250303);
SELECT (:scale / 9 + 100)::int AS customers \gset

CREATE UNLOGGED TABLE bench.delivery (id serial PRIMARY KEY, ent text, at timestamptz, body jsonb,
                                      swapped bool NOT NULL DEFAULT false,
                                      redelivery bool NOT NULL DEFAULT false);
INSERT INTO bench.delivery (ent, at, body)
SELECT e.ent, e.at + random() * interval '5 seconds', e.body
  FROM generate_series(1, :customers) p,
       LATERAL (SELECT * FROM bench.qitech(p) WHERE p % 3 = 0
                UNION ALL SELECT * FROM bench.fitbank(p) WHERE p % 3 = 1
                UNION ALL SELECT * FROM bench.celcoin(p) WHERE p % 3 = 2) e
 ORDER BY p, e.at;

-- out of order: 2% of deliveries swap their arrival with the entity's
-- previous delivery (pairs are disjoint: only even positions within an
-- entity are candidates; the probability makes the pairs 2% of all)
WITH o AS (
    SELECT id, at, lag(id) OVER w AS prev_id, lag(at) OVER w AS prev_at,
           row_number() OVER w AS pos, random() AS r
      FROM bench.delivery WINDOW w AS (PARTITION BY ent ORDER BY at, id)
), share AS (
    SELECT 0.02 * count(*) / count(*) FILTER (WHERE pos % 2 = 0) AS p FROM o
), pick AS (
    SELECT id, at, prev_id, prev_at FROM o, share WHERE pos % 2 = 0 AND r < share.p
)
UPDATE bench.delivery d
   SET at = CASE WHEN d.id = pick.id THEN pick.prev_at ELSE pick.at END,
       swapped = (d.id = pick.id)
  FROM pick
 WHERE d.id IN (pick.id, pick.prev_id);

-- at least once: about 5% delivered again, 1 s to 10 min later
INSERT INTO bench.delivery (ent, at, body, redelivery)
SELECT ent, at + interval '1 second' + random() * interval '10 minutes', body, true
  FROM bench.delivery WHERE random() < 0.05;

-- ent (the generator's entity, e.g. fb/doc/<key>) and event_at are kept for
-- disorder.sql, which reorders the corpus. (bench.delivery keeps its shape:
-- the redeliveries are drawn in its physical order, which a wider row would
-- change, and with it the corpus.)
CREATE TABLE bench.corpus (n int PRIMARY KEY, body jsonb NOT NULL, ent text NOT NULL,
                           event_at timestamptz NOT NULL);
CREATE TABLE bench.corpus_info AS
WITH c AS (SELECT * FROM bench.delivery ORDER BY at, id LIMIT :scale),
     ins AS (INSERT INTO bench.corpus (n, body, ent, event_at)
             SELECT row_number() OVER (ORDER BY at, id), body, ent, bench.event_at(body) FROM c)
SELECT count(*) AS deliveries,
       count(DISTINCT ent) AS entities,
       count(*) FILTER (WHERE redelivery) AS redeliveries,
       count(*) FILTER (WHERE swapped) AS swapped,
       round(avg(length(body::text))) AS avg_bytes,
       count(DISTINCT coalesce(body->>'webhook_type', body->>'Method', body->>'entity')) AS event_types
  FROM c;
DROP TABLE bench.delivery;
ANALYZE bench.corpus;

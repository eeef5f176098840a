-- test/regress/provider_checks.sql — the checks every fixture suite ends with
-- (included by sql/qitech.sql, sql/fitbank.sql, sql/celcoin.sql and, up to the
-- oracle, sql/bad.sql).  Variables: fixtures (a LIKE pattern on fixture
-- names), provider (whose state to show), show_state (on/off).
\pset tuples_only off
\pset format aligned

-- The hand-made oracle (test/fixtures/EXPECTED.tsv, derived from SPEC §5
-- independently of the code) agrees on every fixture: no rows.
CREATE TEMP TABLE oracle (file text, provider text, event_type text, subject text,
                          status_raw text, event_at_utc text, notes text);
\copy oracle FROM 'test/fixtures/EXPECTED.tsv' WITH (FORMAT csv, DELIMITER E'\t', HEADER true, QUOTE E'\x01')
SELECT o.file, i.provider, i.event_type, i.subject, i.status_raw, i.event_at
  FROM oracle o
  LEFT JOIN onboarding.inbox i ON i.headers ->> 'fixture' = o.file
 WHERE o.file LIKE :'fixtures'
   AND (i.id IS NULL
        OR coalesce(i.provider::text, '') <> coalesce(o.provider, '')
        OR coalesce(i.event_type, '') <> coalesce(o.event_type, '')
        OR coalesce(i.subject, '') <> coalesce(o.subject, '')
        OR coalesce(i.status_raw, '') <> coalesce(o.status_raw, '')
        OR coalesce(i.event_at::text, '') <> coalesce(o.event_at_utc, ''));
SELECT count(*) AS fixtures_checked FROM oracle WHERE file LIKE :'fixtures';

-- Duplicate detection hashes each body itself (dedupe.c): bit for bit the
-- hash jsonb_hash_extended(payload, 0) gives, on every fixture: no rows.
SELECT i.headers ->> 'fixture' AS fixture, i.body_hash, jsonb_hash_extended(i.payload, 0)
  FROM onboarding.inbox i
 WHERE i.headers ->> 'fixture' LIKE :'fixtures' AND i.payload IS NOT NULL
   AND i.body_hash IS DISTINCT FROM jsonb_hash_extended(i.payload, 0);

\if :show_state
-- Where every entity of the provider stands after the whole corpus, and how it got there.
SELECT account_key, status, provider_status AS pstatus, enabled, tax_id, tax_id_raw, holder_name,
       bank, branch, number, digit, reason, first_event_at, last_event_at, last_inbox_id AS last_id
  FROM onboarding.account WHERE provider = :'provider' ORDER BY account_key;
SELECT proposal_key, status, provider_status AS pstatus, background_check AS bgcheck,
       documentscopy AS doccopy, flow, client_code, tax_id, tax_id_raw, person_type,
       account_key, message IS NOT NULL AS has_message, accounts_key, last_event_at, last_inbox_id AS last_id
  FROM onboarding.proposal WHERE provider = :'provider' ORDER BY proposal_key;
SELECT document_key, status, provider_status AS pstatus, document_type, document_type_raw AS type_raw,
       signer, account_key, tax_id, file_name, url IS NOT NULL AS has_url, expires_at, reason,
       last_event_at, last_inbox_id AS last_id
  FROM onboarding.document WHERE provider = :'provider' ORDER BY document_key;
SELECT account_key, status, provider_status AS pstatus, message, partner_id, business_unit_id,
       last_event_at, last_inbox_id AS last_id
  FROM onboarding.closure WHERE provider = :'provider' ORDER BY account_key;
SELECT entity, entity_key, from_status, to_status, event_at, inbox_id
  FROM onboarding.history WHERE provider = :'provider' ORDER BY entity, entity_key, id;
SELECT outcome, count(*) FROM onboarding.inbox WHERE provider = :'provider' GROUP BY outcome ORDER BY outcome;
\endif

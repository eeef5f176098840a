-- The in-progress reports against their definitions, row by row:
-- pg_temp.report_differences() says how many rows differ (both ways,
-- counting repeats) and how many rows each report has.  in_progress_entities
-- and pending_documents decide with joins (in_progress_statuses(), and an
-- outer join to each document's proposal); the definitions ask
-- in_progress() and document_settled() of every row.  Both read the kept
-- set onboarding.open_entity, which is compared with its computation too.
-- Used by suite reports (over random states) and by convergence.sh (every
-- flow's databases); 0 differences expected.
CREATE FUNCTION pg_temp.report_differences(OUT differences bigint, OUT in_progress bigint,
                                           OUT pending bigint)
    LANGUAGE sql AS $$
WITH rows_by_definition AS (
    SELECT provider, 'account'::text AS entity, account_key AS entity_key, status::text AS status,
           last_event_at, last_received_at
      FROM onboarding.account
    UNION ALL
    SELECT provider, 'proposal', proposal_key, status::text, last_event_at, last_received_at
      FROM onboarding.proposal WHERE status IS NOT NULL
    UNION ALL
    SELECT provider, 'background_check', proposal_key, background_check::text, last_event_at,
           last_received_at
      FROM onboarding.proposal WHERE background_check IS NOT NULL
    UNION ALL
    SELECT provider, 'documentscopy', proposal_key, documentscopy::text, last_event_at,
           last_received_at
      FROM onboarding.proposal WHERE documentscopy IS NOT NULL
    UNION ALL
    SELECT provider, 'document', document_key, status::text, last_event_at, last_received_at
      FROM onboarding.document WHERE NOT onboarding.document_settled(provider, document_key)
    UNION ALL
    SELECT provider, 'closure', account_key, status::text, last_event_at, last_received_at
      FROM onboarding.closure
), in_progress_by_definition AS (
    SELECT * FROM rows_by_definition WHERE onboarding.in_progress(entity, provider, status)
), pending_by_definition AS (
    SELECT d.provider, d.document_key, d.tax_id, d.account_key, d.document_type,
           d.document_type_raw, d.signer, d.status, d.reason,
           coalesce(d.last_event_at, d.last_received_at) AS since
      FROM onboarding.document d
     WHERE d.status <> 'validated' AND NOT onboarding.document_settled(d.provider, d.document_key)
), pending AS (
    SELECT provider, document_key, tax_id, account_key, document_type, document_type_raw,
           signer, status, reason, since
      FROM onboarding.pending_documents
)
SELECT (SELECT count(*) FROM (SELECT * FROM in_progress_by_definition
                              EXCEPT ALL SELECT * FROM onboarding.in_progress_entities) a)
     + (SELECT count(*) FROM (SELECT * FROM onboarding.in_progress_entities
                              EXCEPT ALL SELECT * FROM in_progress_by_definition) b)
     + (SELECT count(*) FROM (SELECT * FROM pending_by_definition EXCEPT ALL TABLE pending) c)
     + (SELECT count(*) FROM (TABLE pending EXCEPT ALL SELECT * FROM pending_by_definition) d)
       -- the kept set they read (onboarding.open_entity) against its computation
     + (SELECT count(*) FROM onboarding.open_entity k
         FULL JOIN onboarding.open_entity_expected() x
           ON k.entity = x.entity AND k.provider = x.provider AND k.entity_key = x.entity_key
        WHERE k.entity IS NULL OR x.entity IS NULL OR k.parent_key IS DISTINCT FROM x.parent_key
           OR (x.orphan AND NOT k.orphan)),
       (SELECT count(*) FROM onboarding.in_progress_entities),
       (SELECT count(*) FROM onboarding.pending_documents)
$$;
SELECT * FROM pg_temp.report_differences();

-- The in-progress reports against their definitions, row by row: how many
-- rows differ (both ways, counting repeats), and how many rows each has.  in_progress_entities and
-- pending_documents decide with joins (in_progress_statuses(), and an
-- outer join to each document's proposal); the definitions ask
-- in_progress() and document_settled() of every row.  Run by
-- convergence.sh on every flow's databases; 0 differences expected.
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
    SELECT d.provider, d.document_key, d.status
      FROM onboarding.document d
     WHERE d.status <> 'validated' AND NOT onboarding.document_settled(d.provider, d.document_key)
)
SELECT (SELECT count(*) FROM (SELECT * FROM in_progress_by_definition
                              EXCEPT ALL SELECT * FROM onboarding.in_progress_entities) a)
     + (SELECT count(*) FROM (SELECT * FROM onboarding.in_progress_entities
                              EXCEPT ALL SELECT * FROM in_progress_by_definition) b)
     + (SELECT count(*) FROM (SELECT * FROM pending_by_definition
                              EXCEPT ALL SELECT provider, document_key, status
                                           FROM onboarding.pending_documents) c)
     + (SELECT count(*) FROM (SELECT provider, document_key, status FROM onboarding.pending_documents
                              EXCEPT ALL SELECT * FROM pending_by_definition) d) AS differences,
       (SELECT count(*) FROM onboarding.in_progress_entities) AS in_progress,
       (SELECT count(*) FROM onboarding.pending_documents) AS pending;

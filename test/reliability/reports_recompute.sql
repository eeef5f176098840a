-- The in-progress reports against their definitions, row by row:
-- pg_temp.report_differences() says how many rows differ (both ways,
-- counting repeats) and how many rows each report has.  in_progress_entities
-- and pending_documents decide with joins (in_progress_statuses(), and an
-- outer join to each document's proposal); the definitions ask
-- in_progress() and document_settled() of every row.  Both read the kept
-- set onboarding.open_entity, which is compared with its computation too;
-- and rejection_reasons, which reads onboarding.refused_entity, is compared
-- with its old definition over every state row, and the rows with theirs;
-- and stage_durations, which reads onboarding.stage_span and
-- onboarding.stage_tally, with its old definition over all of history.
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
), rejection_by_definition AS (
    SELECT provider, entity, reason, count(*) AS how_many, max(last_event_at) AS last_seen
      FROM (SELECT provider, 'account' AS entity, coalesce(reason, '(no reason given)') AS reason,
                   last_event_at
              FROM onboarding.account WHERE status IN ('rejected', 'failed', 'blocked')
            UNION ALL
            SELECT provider, 'proposal', coalesce(provider_status || ': ' || message,
                                                  provider_status, '(no reason given)'), last_event_at
              FROM onboarding.proposal WHERE status IN ('rejected', 'expired', 'account_error')
            UNION ALL
            SELECT provider, 'document', coalesce(reason, provider_status, '(no reason given)'),
                   last_event_at
              FROM onboarding.document
             WHERE status IN ('invalid', 'disapproved', 'error', 'inexistent', 'expired')) r
     GROUP BY provider, entity, reason
), stage_by_definition AS (
    -- stage_durations as 0.2.0 computed it, over all of history
    SELECT provider, entity, status, count(*) AS n,
           (percentile_cont(0.5) WITHIN GROUP (ORDER BY spent))::text AS p50,
           (percentile_cont(0.9) WITHIN GROUP (ORDER BY spent))::text AS p90,
           max(spent)::text AS max
      FROM (SELECT provider, entity, to_status AS status,
                   lead(event_at) OVER w - event_at AS spent
              FROM (SELECT h.*, coalesce(h.event_at, max(h.event_at) OVER (PARTITION BY h.provider,
                                h.entity, h.entity_key ORDER BY h.id)) AS place
                      FROM onboarding.history h) h
            WINDOW w AS (PARTITION BY provider, entity, entity_key ORDER BY place, id)) s
     WHERE spent IS NOT NULL
     GROUP BY provider, entity, status
), stage AS (
    SELECT provider, entity, status, n, p50::text, p90::text, max::text
      FROM onboarding.stage_durations
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
           OR (x.orphan AND NOT k.orphan))
       -- rejection_reasons' kept rows against the state rows
     + (SELECT count(*) FROM onboarding.refused_entity k
         FULL JOIN onboarding.refused_rows() x
           ON k.entity = x.entity AND k.provider = x.provider AND k.entity_key = x.entity_key
        WHERE k.entity IS NULL OR x.entity IS NULL OR k.reason IS DISTINCT FROM x.reason
           OR k.last_event_at IS DISTINCT FROM x.last_event_at)
       -- and the report against its definition over every state row
     + (SELECT count(*) FROM ((SELECT * FROM onboarding.rejection_reasons
                               EXCEPT ALL SELECT * FROM rejection_by_definition)
                              UNION ALL
                              (SELECT * FROM rejection_by_definition
                               EXCEPT ALL SELECT * FROM onboarding.rejection_reasons)) r)
       -- stage_durations (kept spans, percentiles found by their buckets) against
       -- its definition over all of history, to the microsecond
     + (SELECT count(*) FROM ((TABLE stage EXCEPT ALL TABLE stage_by_definition)
                              UNION ALL
                              (TABLE stage_by_definition EXCEPT ALL TABLE stage)) t),
       (SELECT count(*) FROM onboarding.in_progress_entities),
       (SELECT count(*) FROM onboarding.pending_documents)
$$;
SELECT * FROM pg_temp.report_differences();

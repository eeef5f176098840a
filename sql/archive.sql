-- Archive (SPEC §10; docs/partitioning.md, "Archiving"): a range partition
-- of the inbox is detached by archive_partition() once the state rows of
-- every group with a delivery in it are checkpointed; state, verify(),
-- rebuild() and late deliveries go on from the checkpoints, a delivery that
-- arrives afterwards being folded after the checkpoint; restore_partition()
-- attaches it again and folds those groups from every delivery.  The
-- account ar-bia is archived; its twin ar-twin receives the same bodies in
-- the same order in a month never archived: once restored, the two agree.
CREATE TABLE onboarding.inbox_p20310101 PARTITION OF onboarding.inbox
    FOR VALUES FROM ('2031-01-01') TO ('2031-02-01');
CREATE TABLE onboarding.inbox_p20310201 PARTITION OF onboarding.inbox
    FOR VALUES FROM ('2031-02-01') TO ('2031-03-01');
CREATE TABLE onboarding.inbox_p20310301 PARTITION OF onboarding.inbox
    FOR VALUES FROM ('2031-03-01') TO ('2031-04-01');

CREATE FUNCTION pg_temp.qi(key text, status text, at text, received timestamptz) RETURNS text
    LANGUAGE sql AS $$
    INSERT INTO onboarding.inbox (received_at, payload)
    VALUES (received, jsonb_build_object('webhook_type', 'account_request.status_change', 'key', key,
                                         'status', status, 'event_datetime', at,
                                         'data', jsonb_build_object('account_owner',
                                             jsonb_build_object('name', 'Bia Arquivada',
                                                                'document_number', '390.533.447-05'))))
    RETURNING outcome::text
$$;

-- ar-bia: two events received in January, one in February; ar-cai: only
-- January's
SELECT pg_temp.qi('ar-bia', 'pending_kyc_analysis',    '2030-12-01 10:00:00', '2031-01-10 09:00+00'),
       pg_temp.qi('ar-bia', 'pending_additional_data', '2030-12-01 11:00:00', '2031-01-11 09:00+00'),
       pg_temp.qi('ar-cai', 'pending_kyc_analysis',    '2030-12-02 10:00:00', '2031-01-12 09:00+00'),
       pg_temp.qi('ar-bia', 'account_opened',          '2030-12-01 13:00:00', '2031-02-10 09:00+00');
SELECT pg_temp.qi('ar-twin', 'pending_kyc_analysis',    '2030-12-01 10:00:00', '2031-03-10 09:00+00'),
       pg_temp.qi('ar-twin', 'pending_additional_data', '2030-12-01 11:00:00', '2031-03-11 09:00+00'),
       pg_temp.qi('ar-twin', 'account_opened',          '2030-12-01 13:00:00', '2031-03-12 09:00+00');

-- what cannot be archived, or restored
SELECT onboarding.archive_partition('onboarding.inbox_default');
SELECT onboarding.archive_partition('onboarding.account');
SELECT onboarding.restore_partition('onboarding.inbox_p20310101');

-- January archived: ar-bia's and ar-cai's rows checkpointed, the table
-- detached (its deliveries leave the inbox with it), nothing else changes
SELECT account_key, status FROM onboarding.account WHERE account_key LIKE 'ar-%' ORDER BY 1;
SELECT onboarding.archive_partition('onboarding.inbox_p20310101') AS checkpointed;
SELECT partition, bound, deliveries, checkpoints, jsonb_array_length(tally) AS tally_rows
  FROM onboarding.archived_partition;
SELECT provider, state_table, entity_key, subjects, state_row->>'status' AS status, archives
  FROM onboarding.checkpoint ORDER BY entity_key;
SELECT count(*) AS still_attached FROM pg_catalog.pg_inherits
 WHERE inhrelid = 'onboarding.inbox_p20310101'::regclass;
SELECT count(*) AS deliveries_in_inbox FROM onboarding.inbox WHERE subject IN ('ar-bia', 'ar-cai');
SELECT account_key, status FROM onboarding.account WHERE account_key LIKE 'ar-%' ORDER BY 1;
SELECT day, provider, applied FROM onboarding.daily WHERE day BETWEEN '2031-01-01' AND '2031-01-31' ORDER BY 1;

-- verify() and rebuild() run from the checkpoints (a table detached by
-- hand still refuses them: suite partition); ar-cai, whose deliveries are
-- all archived, keeps its row
SELECT count(*) AS differences FROM onboarding.verify();
SELECT onboarding.rebuild() > 0 AS rebuilt;
SELECT onboarding.rebuild(subject => 'ar-bia') AS read_of_ar_bia;
SELECT account_key, status FROM onboarding.account WHERE account_key LIKE 'ar-%' ORDER BY 1;
SELECT count(*) AS differences FROM onboarding.verify();

-- a delivery placed before the checkpoint (11:30, between two archived
-- events) is folded against it: ar-bia is active there, and active ->
-- in_analysis is not a transition; its twin, never archived, has it at
-- its place (stale)
SELECT pg_temp.qi('ar-bia',  'pending_kyc_analysis', '2030-12-01 11:30:00', '2031-02-12 09:00+00') AS ar_bia,
       pg_temp.qi('ar-twin', 'pending_kyc_analysis', '2030-12-01 11:30:00', '2031-03-13 09:00+00') AS ar_twin;
SELECT count(*) AS differences FROM onboarding.verify();
SELECT onboarding.rebuild() > 0 AS rebuilt;
SELECT count(*) AS differences FROM onboarding.verify();

-- a person whose rows stand in a checkpoint cannot be erased until the
-- archive is restored (it still holds their data)
\set VERBOSITY default
SELECT onboarding.erase('390.533.447-05', 'ticket 77');
\set VERBOSITY terse

-- February archived too: ar-bia's checkpoint now stands for both archives
SELECT onboarding.archive_partition('onboarding.inbox_p20310201') AS checkpointed;
SELECT entity_key, archives FROM onboarding.checkpoint ORDER BY entity_key;
SELECT count(*) AS differences FROM onboarding.verify();

-- January restored: ar-cai's checkpoint goes (its group is folded from
-- its deliveries), ar-bia's stays for February
SELECT onboarding.restore_partition('onboarding.inbox_p20310101') AS read;
SELECT entity_key, archives FROM onboarding.checkpoint ORDER BY entity_key;
SELECT count(*) AS differences FROM onboarding.verify();

-- February restored: every delivery in its place; ar-bia is its twin
SELECT onboarding.restore_partition('onboarding.inbox_p20310201') AS read;
SELECT count(*) AS checkpoints, (SELECT count(*) FROM onboarding.archived_partition) AS archived
  FROM onboarding.checkpoint;
SELECT count(*) AS attached FROM pg_catalog.pg_inherits
 WHERE inhrelid IN ('onboarding.inbox_p20310101'::regclass, 'onboarding.inbox_p20310201'::regclass);
SELECT i.subject, i.status_raw, i.outcome,
       regexp_replace(replace(i.detail, i.subject, '<key>'), 'delivery [0-9]+', 'delivery <id>') AS detail
  FROM onboarding.inbox i WHERE i.subject IN ('ar-bia', 'ar-twin') ORDER BY i.subject, i.id;
SELECT (SELECT jsonb_agg(to_jsonb(a) - 'account_key' - 'subjects' - 'last_inbox_id' - 'last_seen_id'
                         - 'last_received_at') FROM onboarding.account a WHERE account_key = 'ar-bia')
     = (SELECT jsonb_agg(to_jsonb(a) - 'account_key' - 'subjects' - 'last_inbox_id' - 'last_seen_id'
                         - 'last_received_at') FROM onboarding.account a WHERE account_key = 'ar-twin')
       AS same_state,
       (SELECT jsonb_agg(jsonb_build_array(from_status, to_status, event_at) ORDER BY event_at)
          FROM onboarding.history WHERE entity_key = 'ar-bia')
     = (SELECT jsonb_agg(jsonb_build_array(from_status, to_status, event_at) ORDER BY event_at)
          FROM onboarding.history WHERE entity_key = 'ar-twin') AS same_history;
SELECT count(*) AS differences FROM onboarding.verify();

-- now the person can be erased
SELECT onboarding.erase('390.533.447-05', 'ticket 77') > 0 AS erased;
SELECT count(*) AS differences FROM onboarding.verify();

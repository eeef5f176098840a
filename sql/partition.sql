-- The inbox is partitioned by received_at (SPEC §10; README, "Partitioning
-- the inbox").  Range partitions for four months of 2030 are added ahead
-- (the default partition holds every delivery the other suites stored, all
-- received today): by pg_partman where Debian's is version 5 (PostgreSQL
-- 17 and 18); on 15, whose pg_partman 4 always makes a default partition of
-- its own (the inbox has one already), by hand, as pg_partman 5 names them.
-- Deliveries received in those months land in their partitions; a late one
-- is refolded across them, a duplicate is found in another partition, an id
-- taken in another partition is refused, a partition whose layout is not
-- the inbox's is refused, and rebuild() and verify() read them all.
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
DO $$
BEGIN
    IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_partman') >= '5' THEN
        PERFORM partman.create_parent('onboarding.inbox', 'received_at', '1 month',
                                      p_start_partition := '2030-01-01', p_premake := 1,
                                      p_default_table := false);
        PERFORM partman.create_partition_time('onboarding.inbox',
                    ARRAY['2030-02-01', '2030-03-01', '2030-04-01']::timestamptz[]);
    ELSE
        CREATE TABLE onboarding.inbox_p20300101 PARTITION OF onboarding.inbox
            FOR VALUES FROM ('2030-01-01') TO ('2030-02-01');
        CREATE TABLE onboarding.inbox_p20300201 PARTITION OF onboarding.inbox
            FOR VALUES FROM ('2030-02-01') TO ('2030-03-01');
        CREATE TABLE onboarding.inbox_p20300301 PARTITION OF onboarding.inbox
            FOR VALUES FROM ('2030-03-01') TO ('2030-04-01');
        CREATE TABLE onboarding.inbox_p20300401 PARTITION OF onboarding.inbox
            FOR VALUES FROM ('2030-04-01') TO ('2030-05-01');
    END IF;
END
$$;
SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'onboarding.inbox'::regclass
   AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
 ORDER BY c.relname;

-- History is partitioned by inbox_id: ten deliveries a partition from the
-- next multiple of ten on, five ahead, made the same way (pg_partman 5, or
-- by hand as it names them).  The next delivery is the last of the first
-- partition, so that the account below has history rows in two partitions
-- and its late delivery is refolded across them.
SELECT (last_value / 10 + 1) * 10 AS history_start FROM onboarding.inbox_id_seq \gset
SELECT pg_catalog.setval('onboarding.inbox_id_seq', :history_start + 8) > 0 AS aligned;
SET onboarding_test.history_start = :history_start;
DO $$
DECLARE
    start bigint := current_setting('onboarding_test.history_start')::bigint;
BEGIN
    IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_partman') >= '5' THEN
        PERFORM partman.create_parent('onboarding.history', 'inbox_id', '10',
                                      p_start_partition := start::text, p_premake := 1,
                                      p_default_table := false);
        PERFORM partman.create_partition_id('onboarding.history',
                    ARRAY(SELECT start + 10 * k FROM generate_series(0, 4) k));
    ELSE
        FOR k IN 0..4 LOOP
            EXECUTE format('CREATE TABLE onboarding.history_p%s PARTITION OF onboarding.history
                            FOR VALUES FROM (%s) TO (%s)', start + 10 * k, start + 10 * k,
                           start + 10 * (k + 1));
        END LOOP;
    END IF;
END
$$;
SELECT (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                'FROM \(''?(\d+)''?\)'))[1]::bigint - :history_start AS history_from,
       (SELECT count(*) FROM pg_catalog.pg_trigger g
         WHERE g.tgrelid = c.oid AND g.tgname LIKE 'history\_spanned\_%') AS span_triggers
  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'onboarding.history'::regclass
   AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
 ORDER BY 1;

-- one account's deliveries, received a month apart; the third is late (its
-- event sits between the first two), the fourth repeats the first's body
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-01-10 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-ana", "status": "pending_kyc_analysis",
                         "event_datetime": "2029-12-01 10:00:00"}');
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-02-10 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-ana", "status": "account_opened",
                         "event_datetime": "2029-12-01 13:00:00"}');
SET client_min_messages = debug1;
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-03-10 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-ana", "status": "pending_additional_data",
                         "event_datetime": "2029-12-01 12:00:00"}');
RESET client_min_messages;
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-04-10 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-ana", "status": "pending_kyc_analysis",
                         "event_datetime": "2029-12-01 10:00:00"}');

SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS partition, i.status_raw, i.outcome,
       i.duplicate_of = pg_catalog.min(i.id) OVER () AS duplicate_of_first
  FROM onboarding.inbox i JOIN pg_catalog.pg_class c ON c.oid = i.tableoid
 WHERE i.subject = 'pt-ana'
 ORDER BY i.id;
SELECT status FROM onboarding.account WHERE account_key = 'pt-ana';
SELECT from_status, to_status, (inbox_id - :history_start) / 10 AS history_partition
  FROM onboarding.history
 WHERE entity_key = 'pt-ana' ORDER BY event_at, id;

-- an id is unique across partitions: one taken in another partition is
-- refused (the primary key, (id, received_at), would let it in)
\set VERBOSITY terse
INSERT INTO onboarding.inbox (id, received_at, payload) OVERRIDING SYSTEM VALUE
SELECT min(id), '2030-03-15 09:00+00',
       '{"webhook_type": "account_request.status_change", "key": "pt-bia", "status": "pending_kyc_analysis"}'
  FROM onboarding.inbox WHERE subject = 'pt-ana';
\set VERBOSITY default

-- a partition whose columns are not at the inbox's numbers (here one
-- dropped) is refused the first time the pipeline meets it
CREATE TABLE public.odd_partition (LIKE onboarding.inbox INCLUDING DEFAULTS);
ALTER TABLE public.odd_partition ADD COLUMN junk int;
ALTER TABLE public.odd_partition DROP COLUMN junk;
ALTER TABLE onboarding.inbox ATTACH PARTITION public.odd_partition
    FOR VALUES FROM ('2031-01-01') TO ('2031-02-01');
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-01-11 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-bia", "status": "pending_kyc_analysis"}');
ALTER TABLE onboarding.inbox DETACH PARTITION public.odd_partition;
DROP TABLE public.odd_partition;
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-01-11 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-bia", "status": "pending_kyc_analysis"}');
SELECT subject, outcome FROM onboarding.inbox WHERE subject = 'pt-bia';

-- a row inserted straight into a partition takes its id from the inbox's
-- sequence, as one routed through the inbox does, and is derived alike
SELECT tableoid::regclass AS february FROM onboarding.inbox
 WHERE subject = 'pt-ana' AND status_raw = 'account_opened' \gset
INSERT INTO :february (received_at, payload) VALUES
 ('2030-02-20 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-cid", "status": "pending_kyc_analysis"}')
RETURNING id > (SELECT min(id) FROM onboarding.inbox WHERE subject = 'pt-ana') AS id_from_sequence, outcome;
SELECT status FROM onboarding.account WHERE account_key = 'pt-cid';

-- everything derives the same again from every partition
SELECT count(*) AS differences FROM onboarding.verify();
SELECT onboarding.rebuild(subject => 'pt-ana') > 0 AS rebuilt;
SELECT status FROM onboarding.account WHERE account_key = 'pt-ana';
SELECT count(*) AS differences FROM onboarding.verify();

-- Where each group's deliveries lie (onboarding.group_partition): a row for
-- each partition that holds some, named by a time received there, which the
-- duplicate check and the group's scans read instead of every partition
SELECT onboarding.inbox_partition_of(g.received_at) AS partition
  FROM onboarding.group_partition g WHERE g.subject = 'pt-ana' ORDER BY 1;
SELECT onboarding.inbox_partition_of('2030-02-10 09:00+00') AS february,
       onboarding.inbox_partition_of('2029-06-01 00:00+00') AS before_them;

-- verify() says when a partition holding a group's deliveries has no row
-- of it (here deleted by hand: such a partition would not be searched)
DELETE FROM onboarding.group_partition
 WHERE subject = 'pt-ana' AND onboarding.inbox_partition_of(received_at) = 'onboarding.inbox_p20300401'::regclass;
SELECT kind, key, rebuilt FROM onboarding.verify();

-- attaching a table that holds deliveries notes their groups (the event
-- trigger): here the April partition detached, as an archive is, and
-- attached again
ALTER TABLE onboarding.inbox DETACH PARTITION onboarding.inbox_p20300401;
ALTER TABLE onboarding.inbox ATTACH PARTITION onboarding.inbox_p20300401
    FOR VALUES FROM ('2030-04-01') TO ('2030-05-01');
SELECT onboarding.inbox_partition_of(g.received_at) AS partition
  FROM onboarding.group_partition g WHERE g.subject = 'pt-ana' ORDER BY 1;
SELECT count(*) AS differences FROM onboarding.verify();

-- a copy received in a month that holds nothing of its group is found in
-- the one that holds its original
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-03-20 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-cid", "status": "pending_kyc_analysis"}')
RETURNING outcome, duplicate_of = (SELECT min(id) FROM onboarding.inbox WHERE subject = 'pt-cid') AS of_the_first;

-- note_partition() is for the inbox's partitions only
SELECT onboarding.note_partition('onboarding.account');

-- every partition refuses TRUNCATE, as the inbox does (the event trigger
-- gives each its own: statement triggers are not cloned), and DROP while
-- attached; a detached one is the DBA's to drop
SELECT c.relname, count(g.tgname) AS truncate_triggers
  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
  LEFT JOIN pg_catalog.pg_trigger g ON g.tgrelid = c.oid AND g.tgname = 'inbox_no_truncate'
 WHERE i.inhparent = 'onboarding.inbox'::regclass
 GROUP BY c.relname ORDER BY c.relname;
TRUNCATE onboarding.inbox_p20300101;
DROP TABLE onboarding.inbox_p20300201;
-- (the guard looks only at what a command made or attached: a role that
-- may not touch the inbox creates its own tables freely, even while a
-- partition lacks its trigger)
DROP TRIGGER inbox_no_truncate ON onboarding.inbox_p20300301;
CREATE ROLE regress_ob_stranger;
SET ROLE regress_ob_stranger;
CREATE TEMPORARY TABLE stranger_notes (n int);
ALTER TABLE stranger_notes ADD COLUMN m int;
DROP TABLE stranger_notes;
RESET ROLE;
DROP ROLE regress_ob_stranger;
CREATE TRIGGER inbox_no_truncate BEFORE TRUNCATE ON onboarding.inbox_p20300301
    FOR EACH STATEMENT EXECUTE FUNCTION onboarding.inbox_refuse_delete();
CREATE TABLE onboarding.inbox_scratch PARTITION OF onboarding.inbox
    FOR VALUES FROM ('2035-01-01 00:00+00') TO ('2035-02-01 00:00+00');
ALTER TABLE onboarding.inbox DETACH PARTITION onboarding.inbox_scratch;
DROP TABLE onboarding.inbox_scratch;
SELECT count(*) AS deliveries_in_range_partitions FROM onboarding.inbox
 WHERE received_at >= '2030-01-01 00:00+00' AND received_at < '2030-05-01 00:00+00';

-- a partition detached with its deliveries (an archive) keeps its TRUNCATE
-- trigger, which tells it: while it holds deliveries a rebuild, and verify()
-- (which rebuilds), is refused, since it would derive its customers' state
-- without them; attached again, everything is as before
ALTER TABLE onboarding.inbox DETACH PARTITION onboarding.inbox_p20300401;
SELECT onboarding.rebuild();
CALL onboarding.rebuild_concurrently(since => '2030-01-01 00:00+00');
SELECT count(*) FROM onboarding.verify();
ALTER TABLE onboarding.inbox ATTACH PARTITION onboarding.inbox_p20300401
    FOR VALUES FROM ('2030-04-01') TO ('2030-05-01');
SELECT count(*) AS differences FROM onboarding.verify();

-- History's partitions: one detached takes its rows with it, and their
-- spans (the event trigger computes stage_span again: verify() finds the
-- history rows missing, not the spans); attached again, everything is as
-- before
SELECT :history_start + 10 AS history_from, :history_start + 20 AS history_to \gset
SELECT tableoid::regclass AS history_part FROM onboarding.history
 WHERE entity_key = 'pt-ana' AND to_status = 'active' \gset
ALTER TABLE onboarding.history DETACH PARTITION :history_part;
SELECT kind, count(*) > 0 AS differs FROM onboarding.verify() GROUP BY kind ORDER BY kind;
ALTER TABLE onboarding.history ATTACH PARTITION :history_part
    FOR VALUES FROM (:history_from) TO (:history_to);
SELECT count(*) AS differences FROM onboarding.verify();

-- a partition of history whose columns are not at history's numbers is
-- refused the first time the pipeline meets it, as the inbox's are
CREATE TABLE public.odd_history
    (LIKE onboarding.history INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS);
ALTER TABLE public.odd_history ADD COLUMN junk int;
ALTER TABLE public.odd_history DROP COLUMN junk;
ALTER TABLE onboarding.history ATTACH PARTITION public.odd_history
    FOR VALUES FROM (9000000000) TO (9000000010);
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-01-12 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-dan", "status": "pending_kyc_analysis"}');
ALTER TABLE onboarding.history DETACH PARTITION public.odd_history;
DROP TABLE public.odd_history;
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-01-12 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-dan", "status": "pending_kyc_analysis"}');
SELECT from_status, to_status, (inbox_id - :history_start) / 10 AS history_partition
  FROM onboarding.history WHERE entity_key = 'pt-dan';
SELECT count(*) AS differences FROM onboarding.verify();

-- with no partition for its rows (history's default partition detached), a
-- delivery is stored refused, with the reason, and derives nothing; its
-- copy, once the partition is attached again, is applied; verify() then
-- says a replay derives the first applied, and rebuild() makes it so
SELECT pg_catalog.setval('onboarding.inbox_id_seq', :history_start + 1000) > 0 AS beyond_the_ranges;
ALTER TABLE onboarding.history DETACH PARTITION onboarding.history_default;
\set VERBOSITY terse
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-01-13 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-eva", "status": "pending_kyc_analysis"}');
\set VERBOSITY default
ALTER TABLE onboarding.history ATTACH PARTITION onboarding.history_default DEFAULT;
INSERT INTO onboarding.inbox (received_at, payload) VALUES
 ('2030-01-13 09:00+00', '{"webhook_type": "account_request.status_change", "key": "pt-eva", "status": "pending_kyc_analysis"}');
SELECT outcome, detail, (SELECT count(*) FROM onboarding.history h WHERE h.inbox_id = i.id) AS history_rows
  FROM onboarding.inbox i WHERE subject = 'pt-eva' ORDER BY id;
SELECT kind, count(*) FROM onboarding.verify() GROUP BY kind ORDER BY kind;
SELECT onboarding.rebuild(subject => 'pt-eva') AS rebuilt;
SELECT outcome FROM onboarding.inbox WHERE subject = 'pt-eva' ORDER BY id;
SELECT count(*) AS differences FROM onboarding.verify();

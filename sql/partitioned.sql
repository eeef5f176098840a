-- The provider, ordering and late-delivery suites run a second time, in a
-- database of their own whose inbox and history are partitioned first
-- (test/run.sh): the inbox by month around today (every delivery received
-- now lands in a range partition; those with a time received of their own
-- in the default one), history by inbox_id, ten deliveries a partition for
-- the first thousand (the rest in its default partition), so that an
-- entity's rows lie in several partitions.  Made by pg_partman where
-- Debian's is version 5 (17, 18); on 15, whose pg_partman 4 insists on a
-- default partition of its own, by hand, as pg_partman names them.  The
-- suites' expected outputs are the unpartitioned run's: nothing they show
-- may change.
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
-- (the second time, the inbox holds deliveries received today already:
-- PostgreSQL refuses a range partition for rows of the default partition,
-- so the inbox's first range starts after the newest, by hand, and
-- history's after the highest inbox_id it holds)
DO $$
DECLARE
    month timestamptz := pg_catalog.date_trunc('month', pg_catalog.now()) - interval '1 month';
    newest timestamptz := (SELECT pg_catalog.max(received_at) FROM onboarding.inbox);
    lower timestamptz;
    hstart bigint := (SELECT COALESCE(pg_catalog.max(inbox_id) / 10 + 1, 0) * 10
                        FROM onboarding.history);
    partman5 boolean := (SELECT extversion FROM pg_catalog.pg_extension
                          WHERE extname = 'pg_partman') >= '5';
BEGIN
    IF partman5 AND newest IS NULL THEN
        PERFORM partman.create_parent('onboarding.inbox', 'received_at', '1 month',
                                      p_start_partition := month::text, p_premake := 2,
                                      p_default_table := false);
    ELSE
        FOR m IN 0..3 LOOP
            lower := month + m * interval '1 month';
            IF newest IS NOT NULL THEN
                lower := GREATEST(lower, newest + interval '1 microsecond');
            END IF;
            CONTINUE WHEN lower >= month + (m + 1) * interval '1 month';
            EXECUTE pg_catalog.format('CREATE TABLE onboarding.inbox_p%s PARTITION OF onboarding.inbox
                                       FOR VALUES FROM (%L) TO (%L)',
                                      pg_catalog.to_char(month + m * interval '1 month', 'YYYYMMDD'),
                                      lower, month + (m + 1) * interval '1 month');
        END LOOP;
    END IF;
    IF partman5 THEN
        PERFORM partman.create_parent('onboarding.history', 'inbox_id', '10',
                                      p_start_partition := hstart::text, p_premake := 1,
                                      p_default_table := false);
        PERFORM partman.create_partition_id('onboarding.history',
                    ARRAY(SELECT hstart + 10 * k FROM pg_catalog.generate_series(1, 99) k));
    ELSE
        FOR k IN 0..99 LOOP
            EXECUTE pg_catalog.format('CREATE TABLE onboarding.history_p%s PARTITION OF onboarding.history
                                       FOR VALUES FROM (%s) TO (%s)', hstart + 10 * k, hstart + 10 * k,
                                      hstart + 10 * (k + 1));
        END LOOP;
    END IF;
END
$$;
SELECT c.relname LIKE 'inbox%' AS inbox, count(*) >= 3 AS partitions
  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent IN ('onboarding.inbox'::regclass, 'onboarding.history'::regclass)
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS history_partitions_keeping_spans
  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_trigger g ON g.tgrelid = i.inhrelid
 WHERE i.inhparent = 'onboarding.history'::regclass AND g.tgname = 'history_spanned_insert';

-- pg_partman's part is done here: its template tables hold columns of the
-- extension's types, and taxid_domain drops the extension and creates it
-- again (this file runs again after it, test/run.sh)
SET client_min_messages = warning;
DROP EXTENSION pg_partman;
DROP SCHEMA partman CASCADE;
RESET client_min_messages;

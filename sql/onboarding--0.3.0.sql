/*
 * onboarding 0.3.0 — install script.
 *
 * Every delivery is INSERTed into onboarding.inbox; a C trigger parses it,
 * detects the provider and event, and derives the state tables.  Provider
 * knowledge (status vocabularies, transition graphs) lives in the rule
 * tables at the end of this file.
 */

\echo Use "CREATE EXTENSION onboarding" to load this file. \quit

-- Providers send UTF-8 JSON, \u escapes included; jsonb can hold them only
-- in a UTF8 database.
DO $$
BEGIN
    IF pg_catalog.getdatabaseencoding() <> 'UTF8' THEN
        RAISE EXCEPTION 'onboarding needs a database with encoding UTF8, not %',
                        pg_catalog.getdatabaseencoding()
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Create the database with ENCODING ''UTF8''.';
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Enums (labels and order are contract)
-- ---------------------------------------------------------------------------

CREATE TYPE onboarding.provider AS ENUM ('celcoin', 'qitech', 'fitbank');

CREATE TYPE onboarding.outcome AS ENUM
    ('applied', 'duplicate', 'stale', 'illegal_transition', 'unrecognized', 'invalid',
     'refused');

CREATE TYPE onboarding.account_status AS ENUM
    ('requested', 'in_analysis', 'pending_data', 'created', 'limited', 'active',
     'blocked', 'closing', 'closed', 'rejected', 'failed');

CREATE TYPE onboarding.proposal_status AS ENUM
    ('created', 'pending', 'in_analysis', 'pending_data', 'approved', 'rejected',
     'expired', 'account_created', 'account_error');

CREATE TYPE onboarding.check_status AS ENUM
    ('created', 'pending', 'processing', 'approved', 'rejected');

CREATE TYPE onboarding.document_status AS ENUM
    ('sent', 'awaiting_validation', 'resubmitted', 'typified', 'validated', 'invalid',
     'disapproved', 'expired', 'error', 'inexistent', 'suspended');

CREATE TYPE onboarding.document_type AS ENUM
    ('identity_front', 'cpf', 'proof_of_address', 'cnh', 'cnpj', 'contract',
     'power_of_attorney', 'identity_back', 'identity', 'kyc_report', 'selfie',
     'election_minutes', 'cnh_back', 'other');

CREATE TYPE onboarding.closure_status AS ENUM
    ('created', 'processing', 'pending', 'error', 'disapproved', 'approved', 'automatic');

-- ---------------------------------------------------------------------------
-- onboarding.taxid: a domain over the type of the extension taxid (0.2.0)
--
-- The base type, its operators, btree and hash operator classes, casts and
-- functions belong to the extension taxid (required, see onboarding.control),
-- installed in a schema of the default search_path (normally public), so a
-- session that never heard of the schema onboarding can still compare,
-- index and join tax ids.  onboarding.taxid stays the name the state tables,
-- timeline() and applications use; a domain has the operators of its base
-- type, and an index on a domain column uses the base type's operator class.
--
-- During this script search_path is "onboarding, <schema of taxid>": an
-- unqualified taxid names the companion's type only until the domain below
-- exists, so the wrappers that take the base type are created first.
-- ---------------------------------------------------------------------------

-- Thin wrappers, the names of SPEC 3.2.  They take the base type, so that
-- in a session whose search_path has both schemas the wrapper and the
-- companion's function have one signature and never make a call ambiguous;
-- they are the same C functions as the companion's.
CREATE FUNCTION onboarding.taxid_format(taxid) RETURNS text
    AS 'MODULE_PATHNAME', 'onboarding_taxid_format'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION onboarding.taxid_format(taxid) IS
    'masked form: 000.000.000-00 or XX.XXX.XXX/XXXX-DD';

CREATE FUNCTION onboarding.taxid_kind(taxid) RETURNS text
    AS 'MODULE_PATHNAME', 'onboarding_taxid_kind'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION onboarding.taxid_kind(taxid) IS 'cpf or cnpj';

CREATE DOMAIN onboarding.taxid AS taxid;
COMMENT ON DOMAIN onboarding.taxid IS
    'Brazilian taxpayer number: CPF (11 digits) or CNPJ (14 characters, alphanumeric allowed)';

CREATE FUNCTION onboarding.taxid_is_valid(text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_taxid_is_valid'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION onboarding.taxid_is_valid(text) IS
    'true when the text is a valid CPF or CNPJ; never raises';

CREATE FUNCTION onboarding.taxid_normalize(text) RETURNS onboarding.taxid
    AS 'MODULE_PATHNAME', 'onboarding_taxid_normalize'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION onboarding.taxid_normalize(text) IS
    'the taxid, or NULL when the text is not a valid CPF or CNPJ';

CREATE FUNCTION onboarding.taxid_problem(text) RETURNS text
    AS 'MODULE_PATHNAME', 'onboarding_taxid_problem'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION onboarding.taxid_problem(text) IS
    'why the text is not a valid CPF or CNPJ, or NULL when it is';

-- (end of onboarding.taxid; timeline() below has its own 0.2.0 note)

-- ---------------------------------------------------------------------------
-- The inbox: every delivery, append-only
-- ---------------------------------------------------------------------------

CREATE TABLE onboarding.inbox (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    received_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    provider     onboarding.provider,
    payload      jsonb,
    raw          text,
    headers      jsonb,
    event_type   text,
    subject      text,
    status_raw   text,
    event_at     timestamptz,
    outcome      onboarding.outcome NOT NULL,
    detail       text,
    body_hash    bigint,
    duplicate_of bigint,
    forced_by    text,
    extraction   bytea,
    -- (id alone is unique: the pipeline's trigger looks for an id it did
    -- not just hand out, as a key on id alone would)
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
-- (a row without payload and raw is refused by inbox_pipeline, on every
-- path, restores included: a CHECK saying it again cost every INSERT
-- statement the decoding of its expression)

-- Partitioned by the time a delivery was received, so that months can be
-- added ahead (pg_partman, or CREATE TABLE ... PARTITION OF) and old ones
-- detached and archived (README, "Partitioning the inbox").  Rows no range
-- partition takes land in the default partition, created here: an
-- extension's table cannot become partitioned later without breaking
-- pg_dump, so every install has one.
CREATE TABLE onboarding.inbox_default PARTITION OF onboarding.inbox DEFAULT;
COMMENT ON TABLE onboarding.inbox_default IS
    'the inbox''s default partition: deliveries no range partition takes (all of them until one is added, and those stored before the inbox was partitioned)';

COMMENT ON TABLE onboarding.inbox IS 'every delivery, stored forever with what ingestion made of it';
COMMENT ON COLUMN onboarding.inbox.body_hash IS 'jsonb hash of payload, for duplicate detection';
COMMENT ON COLUMN onboarding.inbox.duplicate_of IS 'id of the first delivery with the same provider and body';
COMMENT ON COLUMN onboarding.inbox.forced_by IS 'role that recorded this override through force_status()';
COMMENT ON COLUMN onboarding.inbox.extraction IS 'what reading the body gave (event, subject, status, time, effects with typed fields), kept in an internal format so that a late delivery''s refold does not read this body again; used only while the rules that read it are unchanged; NULL for rows stored before 0.3.0 until rebuild() reads them';

-- the inbox's one secondary index: every delivery of a group (provider,
-- subject), which a late delivery folds again (derive.c) and timeline() reads
-- besides history; in event time, the deliveries placed after a late one
-- (the bounded refold reads only those); and, with body_hash, the candidates
-- duplicate detection compares against (the same body has the same
-- provider, subject and event time)
-- (body_hash sets almost every key apart: btree deduplication would find
-- nothing to merge, and a page would pay for the search before each split)
CREATE INDEX inbox_group_idx ON onboarding.inbox (provider, subject, event_at, body_hash)
    WITH (deduplicate_items = off);

CREATE FUNCTION onboarding.inbox_before_insert() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_inbox_before_insert' LANGUAGE C;
CREATE FUNCTION onboarding.inbox_before_update() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_inbox_before_update' LANGUAGE C;
CREATE FUNCTION onboarding.inbox_after_insert() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_inbox_after_insert' LANGUAGE C;
CREATE FUNCTION onboarding.inbox_refuse_delete() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_inbox_refuse_delete' LANGUAGE C;

CREATE TRIGGER inbox_pipeline BEFORE INSERT ON onboarding.inbox
    FOR EACH ROW EXECUTE FUNCTION onboarding.inbox_before_insert();
-- the statement's state rows reach their tables (see store.c)
CREATE TRIGGER inbox_settle AFTER INSERT ON onboarding.inbox
    FOR EACH STATEMENT EXECUTE FUNCTION onboarding.inbox_after_insert();
CREATE TRIGGER inbox_immutable BEFORE UPDATE ON onboarding.inbox
    FOR EACH ROW EXECUTE FUNCTION onboarding.inbox_before_update();
CREATE TRIGGER inbox_no_delete BEFORE DELETE ON onboarding.inbox
    FOR EACH ROW EXECUTE FUNCTION onboarding.inbox_refuse_delete();
CREATE TRIGGER inbox_no_truncate BEFORE TRUNCATE ON onboarding.inbox
    FOR EACH STATEMENT EXECUTE FUNCTION onboarding.inbox_refuse_delete();
-- (row triggers are cloned onto every partition; statement triggers are not)
CREATE TRIGGER inbox_no_truncate BEFORE TRUNCATE ON onboarding.inbox_default
    FOR EACH STATEMENT EXECUTE FUNCTION onboarding.inbox_refuse_delete();

-- (a partitioned table has no rows of its own: its member partition's are
-- dumped; partitions added later are the DBA's, dumped as any table)
SELECT pg_catalog.pg_extension_config_dump('onboarding.inbox_default', '');
-- (onboarding.inbox_id_seq is listed with the other sequences below, in
-- the order an updated 0.2.0 lists them)

-- Where each group's deliveries lie among the inbox's partitions: a row
-- per group (provider, subject) and partition holding some of them, by
-- the time one of them was received there, which PostgreSQL's routing
-- maps back to the partition.  A delivery's probes (duplicate, later
-- delivery, the group's deliveries) read those partitions only, and the
-- default partition (whose deliveries need no row), so that their cost
-- does not grow with the months kept.  The pipeline adds the
-- rows (src/spread.c): as it stores a delivery, when a derivation moves
-- one to another group, and when a table holding deliveries is attached
-- as a partition (onboarding_guard_state_ddl).  Not dumped: a restore
-- stores the deliveries through the pipeline's trigger, which adds them
-- again (as it counts onboarding.daily_tally's).
CREATE TABLE onboarding.group_partition (
    provider     onboarding.provider NOT NULL,
    subject      text NOT NULL,
    received_at  timestamptz NOT NULL
);
CREATE INDEX group_partition_idx ON onboarding.group_partition (provider, subject, received_at);
-- (no key: two sessions may add the same row, and nothing should wait on
-- it; erase() deletes rows, which logical replication finds by their values)
ALTER TABLE onboarding.group_partition REPLICA IDENTITY FULL;
COMMENT ON TABLE onboarding.group_partition IS
    'the partitions of the inbox that hold each group''s deliveries (provider, subject), each named by the time one of them was received there; kept by the pipeline, read by its probes';
COMMENT ON INDEX onboarding.group_partition_idx IS
    'a group''s rows of onboarding.group_partition, read from the index alone';

-- The tables an ALTER TABLE attached as partitions of the inbox, and the
-- rows of onboarding.group_partition for the deliveries they hold.
CREATE FUNCTION onboarding.attached_partitions(command pg_ddl_command) RETURNS regclass[]
    AS 'MODULE_PATHNAME', 'onboarding_attached_partitions' LANGUAGE C STRICT;
COMMENT ON FUNCTION onboarding.attached_partitions(pg_ddl_command) IS
    'the tables an ALTER TABLE (a command of pg_event_trigger_ddl_commands()) attached as partitions of onboarding.inbox';
CREATE FUNCTION onboarding.note_partition(part regclass) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    n bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(part) a
                    WHERE a.relid = 'onboarding.inbox'::regclass AND a.relid <> part) THEN
        RAISE EXCEPTION '% is not a partition of onboarding.inbox', part
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('INSERT INTO onboarding.group_partition (provider, subject, received_at)
                    SELECT provider, subject, min(received_at) FROM %s
                     WHERE provider IS NOT NULL AND subject IS NOT NULL
                     GROUP BY provider, subject', part);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION onboarding.note_partition(regclass) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.note_partition(regclass) IS
    'adds the rows of onboarding.group_partition for the deliveries a partition of the inbox holds (run by onboarding_guard_state_ddl when a table is attached); returns how many';
CREATE FUNCTION onboarding.inbox_partition_of(received_at timestamptz) RETURNS regclass
    AS 'MODULE_PATHNAME', 'onboarding_inbox_partition_of' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION onboarding.inbox_partition_of(timestamptz) IS
    'the partition of the inbox that holds the deliveries received at that time, as row routing chooses it (NULL: none takes it, or the inbox is not partitioned by received_at alone)';

-- ---------------------------------------------------------------------------
-- State tables (derived; applications read them, the extension writes them)
-- ---------------------------------------------------------------------------

-- fillfactor 60: a state row is written again by a later delivery, and a
-- new version that fits on its page is a HOT update (no index entries);
-- in a batch the versions a transaction writes cannot be pruned before it
-- commits, and at 85 seven updates in ten left their page (the bench
-- corpus: 82.6% HOT at 60 against 29.1% at 85; tables 4% larger, indexes
-- 16% smaller)
CREATE TABLE onboarding.account (
    provider          onboarding.provider NOT NULL,
    account_key       text NOT NULL,
    status            onboarding.account_status NOT NULL,
    provider_status   text,
    enabled           boolean,
    tax_id            onboarding.taxid,
    tax_id_raw        text,
    holder_name       text,
    bank              text,
    branch            text,
    number            text,
    digit             text,
    reason            text,
    partner_id        text,
    business_unit_id  text,
    first_event_at    timestamptz,
    last_event_at     timestamptz,
    last_inbox_id     bigint NOT NULL,
    last_seen_id      bigint NOT NULL,
    last_received_at  timestamptz,
    subjects          text[],
    PRIMARY KEY (provider, account_key)
) WITH (fillfactor = 60);

CREATE TABLE onboarding.proposal (
    provider          onboarding.provider NOT NULL,
    proposal_key      text NOT NULL,
    status            onboarding.proposal_status,
    provider_status   text,
    background_check  onboarding.check_status,
    documentscopy     onboarding.check_status,
    status_at         timestamptz,
    background_check_at timestamptz,
    documentscopy_at  timestamptz,
    flow              smallint,
    client_code       text,
    tax_id            onboarding.taxid,
    tax_id_raw        text,
    person_type       text,
    account_key       text,
    message           text,
    accounts_key      jsonb,
    partner_id        text,
    business_unit_id  text,
    first_event_at    timestamptz,
    last_event_at     timestamptz,
    last_inbox_id     bigint NOT NULL,
    last_seen_id      bigint NOT NULL,
    last_received_at  timestamptz,
    subjects          text[],
    PRIMARY KEY (provider, proposal_key)
) WITH (fillfactor = 60);
COMMENT ON COLUMN onboarding.proposal.status_at IS
    'provider time of the event that set status (each check has its own: Celcoin runs them in parallel)';
COMMENT ON COLUMN onboarding.proposal.flow IS
    'Celcoin: 1 when the background check came first, 2 when documentscopy did';
COMMENT ON COLUMN onboarding.proposal.status IS
    'NULL while the proposal is known only through checks that do not move it';

CREATE TABLE onboarding.document (
    provider          onboarding.provider NOT NULL,
    document_key      text NOT NULL,
    status            onboarding.document_status NOT NULL,
    provider_status   text,
    document_type     onboarding.document_type,
    document_type_raw text,
    signer            boolean,
    account_key       text,
    tax_id            onboarding.taxid,
    tax_id_raw        text,
    file_name         text,
    url               text,
    expires_at        timestamptz,
    reason            text,
    message           text,
    partner_id        text,
    business_unit_id  text,
    first_event_at    timestamptz,
    last_event_at     timestamptz,
    last_inbox_id     bigint NOT NULL,
    last_seen_id      bigint NOT NULL,
    last_received_at  timestamptz,
    subjects          text[],
    PRIMARY KEY (provider, document_key)
) WITH (fillfactor = 60);

CREATE TABLE onboarding.closure (
    provider          onboarding.provider NOT NULL,
    account_key       text NOT NULL,
    status            onboarding.closure_status NOT NULL,
    provider_status   text,
    message           text,
    partner_id        text,
    business_unit_id  text,
    first_event_at    timestamptz,
    last_event_at     timestamptz,
    last_inbox_id     bigint NOT NULL,
    last_seen_id      bigint NOT NULL,
    last_received_at  timestamptz,
    subjects          text[],
    PRIMARY KEY (provider, account_key)
) WITH (fillfactor = 60);

-- (0.3.0: a primary key, so that logical replication and change data
-- capture see the rows a late delivery deletes when it rewrites a history)
CREATE TABLE onboarding.history (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    provider     onboarding.provider NOT NULL,
    entity       text NOT NULL,
    entity_key   text NOT NULL,
    from_status  text,
    to_status    text NOT NULL,
    event_at     timestamptz,
    inbox_id     bigint NOT NULL,
    reason       text,
    -- (id alone is unique: every id comes from history_id_seq, handed out
    -- by the pipeline or by the identity)
    PRIMARY KEY (id, inbox_id)
) PARTITION BY RANGE (inbox_id);
-- Partitioned by the delivery that wrote each row (inbox_id: arrival
-- order), so that ranges of rows can be added ahead and kept apart
-- (pg_partman, or CREATE TABLE ... PARTITION OF); an entity's rows may lie
-- in several partitions, and the pipeline reads each.  Rows no range
-- partition takes land in the default partition, created here: an
-- extension's table cannot become partitioned later without breaking
-- pg_dump, so every install has one.
CREATE TABLE onboarding.history_default PARTITION OF onboarding.history DEFAULT;
COMMENT ON TABLE onboarding.history_default IS
    'history''s default partition: rows no range partition takes (all of them until one is added, and those written before history was partitioned)';
COMMENT ON COLUMN onboarding.history.reason IS 'the operator''s reason, for force_status() overrides';
COMMENT ON COLUMN onboarding.history.entity IS
    'account, proposal, document, closure, background_check or documentscopy';

-- State is dumped with the inbox, so that a restore is exact and needs no
-- replay: restored inbox rows keep their derived columns (see inbox.c).
SELECT pg_catalog.pg_extension_config_dump('onboarding.account', '');
SELECT pg_catalog.pg_extension_config_dump('onboarding.proposal', '');
SELECT pg_catalog.pg_extension_config_dump('onboarding.document', '');
SELECT pg_catalog.pg_extension_config_dump('onboarding.closure', '');
-- (history's member partition holds its rows: see the inbox's above)
SELECT pg_catalog.pg_extension_config_dump('onboarding.history_default', '');
-- (onboarding.history_id_seq is listed with the other sequences below, in
-- the order an updated 0.2.0 lists them)

CREATE INDEX account_tax_id_idx ON onboarding.account (tax_id);
CREATE INDEX proposal_tax_id_idx ON onboarding.proposal (tax_id);
CREATE INDEX document_tax_id_idx ON onboarding.document (tax_id);
-- history by entity, in event time: entity_key tells rows apart (provider
-- and entity are compared row by row); event_at lets a late delivery read
-- the status just before its place, and the rows after it, without reading
-- the entity's whole history
CREATE INDEX history_entity_idx ON onboarding.history (entity_key, event_at);

CREATE FUNCTION onboarding.state_before_update() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_state_before_update' LANGUAGE C;

CREATE TRIGGER account_transitions BEFORE UPDATE ON onboarding.account
    FOR EACH ROW EXECUTE FUNCTION onboarding.state_before_update('account', 'account_key', 'status');
CREATE TRIGGER proposal_transitions BEFORE UPDATE ON onboarding.proposal
    FOR EACH ROW EXECUTE FUNCTION onboarding.state_before_update('proposal', 'proposal_key',
        'status', 'background_check', 'documentscopy');
CREATE TRIGGER document_transitions BEFORE UPDATE ON onboarding.document
    FOR EACH ROW EXECUTE FUNCTION onboarding.state_before_update('document', 'document_key', 'status');
CREATE TRIGGER closure_transitions BEFORE UPDATE ON onboarding.closure
    FOR EACH ROW EXECUTE FUNCTION onboarding.state_before_update('closure', 'account_key', 'status');

-- What a user adds to the state tables binds the pipeline's writes as it
-- binds the user's own (0.3.0, README "Your own columns, constraints and
-- triggers").  What the pipeline cannot honour is refused here, when it is
-- created, never silently at write time:
--  - a trigger for a list of columns (UPDATE OF ...): the pipeline writes a
--    row as a whole;
--  - a trigger with transition tables (REFERENCING): the pipeline's writes
--    are row changes, with no statement to collect them;
--  - a rule: rules rewrite statements, and the pipeline writes no statement;
--  - a deferrable constraint on a state table or history, or a deferrable
--    foreign key to one: checked at commit, it would fail the transaction
--    and lose its deliveries instead of refusing one of them.
CREATE FUNCTION onboarding.check_status_labels() RETURNS void
    AS 'MODULE_PATHNAME', 'onboarding_check_status_labels' LANGUAGE C;
COMMENT ON FUNCTION onboarding.check_status_labels() IS
    'raises when a status enum has a label the transition graphs do not know (run by onboarding_guard_state_ddl after ALTER TYPE)';

-- (SECURITY DEFINER: it fires for every role's DDL, and reads and calls
-- objects of this schema that a role without USAGE on it may not name)
CREATE FUNCTION onboarding.guard_state_ddl() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    bad record;
    part regclass;
BEGIN
    IF TG_TAG = 'ALTER TYPE' THEN
        PERFORM onboarding.check_status_labels();
        RETURN;
    END IF;
    IF TG_TAG = 'ALTER TABLE' THEN
        -- a table holding deliveries attached to the inbox: where its groups are
        PERFORM onboarding.note_partition(p)
           FROM pg_catalog.pg_event_trigger_ddl_commands() c,
                pg_catalog.unnest(onboarding.attached_partitions(c.command)) p;
    END IF;
    IF TG_TAG IN ('CREATE TABLE', 'ALTER TABLE') THEN
        -- a partition of the inbox this command made or attached refuses
        -- TRUNCATE, as the inbox does (statement triggers are not cloned
        -- onto partitions); another command's tables are not looked at
        FOR part IN
            SELECT DISTINCT t.relid
              FROM pg_catalog.pg_event_trigger_ddl_commands() c
             CROSS JOIN LATERAL (SELECT c.objid::regclass AS rel
                                  WHERE c.classid = 'pg_catalog.pg_class'::regclass
                                 UNION
                                 SELECT p FROM pg_catalog.unnest(onboarding.attached_partitions(c.command)) p) r
             CROSS JOIN LATERAL pg_catalog.pg_partition_tree(r.rel) t
             WHERE t.relid <> 'onboarding.inbox'::regclass
               AND 'onboarding.inbox'::regclass IN (SELECT a.relid
                                                      FROM pg_catalog.pg_partition_ancestors(t.relid) a)
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g
                                WHERE g.tgrelid = t.relid AND g.tgname = 'inbox_no_truncate')
        LOOP
            EXECUTE format('CREATE TRIGGER inbox_no_truncate BEFORE TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION onboarding.inbox_refuse_delete()', part);
        END LOOP;
        -- a partition of history this command made or attached keeps
        -- stage_span as history does, for statements that name it
        FOR part IN
            SELECT DISTINCT t.relid
              FROM pg_catalog.pg_event_trigger_ddl_commands() c
             CROSS JOIN LATERAL pg_catalog.pg_partition_tree(c.objid::regclass) t
             WHERE c.classid = 'pg_catalog.pg_class'::regclass
               AND t.relid <> 'onboarding.history'::regclass
               AND 'onboarding.history'::regclass IN (SELECT a.relid
                                                        FROM pg_catalog.pg_partition_ancestors(t.relid) a)
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g
                                WHERE g.tgrelid = t.relid AND g.tgname = 'history_spanned_insert')
        LOOP
            PERFORM onboarding.span_partition(part);
        END LOOP;
        -- a table attached to history, or one detached, brings or takes
        -- rows no statement wrote: their spans are computed again
        IF TG_TAG = 'ALTER TABLE' AND EXISTS (
               SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() c
                WHERE c.classid = 'pg_catalog.pg_class'::regclass
                  AND c.objid = 'onboarding.history'::regclass
                  AND c.command_tag = 'ALTER TABLE') THEN
            PERFORM onboarding.recount_stage_span();
        END IF;
    END IF;
    SELECT * INTO bad FROM (
        SELECT c.relname AS tab, format('trigger %I', t.tgname) AS what,
               'fires for a list of columns (UPDATE OF)' AS why,
               'Fire it for every UPDATE and compare OLD and NEW in its WHEN condition.' AS hint
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         WHERE c.relnamespace = 'onboarding'::regnamespace
           AND c.relname IN ('account', 'proposal', 'document', 'closure', 'history')
           AND NOT t.tgisinternal AND pg_catalog.cardinality(t.tgattr::int2[]) > 0
        UNION ALL
        SELECT c.relname, format('trigger %I', t.tgname),
               'has transition tables (REFERENCING)',
               'Use a row trigger, or a statement trigger without REFERENCING.'
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         WHERE c.relnamespace = 'onboarding'::regnamespace
           AND c.relname IN ('account', 'proposal', 'document', 'closure', 'history')
           AND NOT t.tgisinternal AND (t.tgoldtable IS NOT NULL OR t.tgnewtable IS NOT NULL)
           -- (but the extension's own, which count a user's statements only)
           AND t.tgfoid NOT IN (SELECT p.oid FROM pg_catalog.pg_proc p
                                 WHERE p.pronamespace = 'onboarding'::regnamespace
                                   AND p.proname IN ('state_counted', 'history_spanned'))
        UNION ALL
        SELECT c.relname, format('rule %I', r.rulename),
               'would rewrite statements, and the extension writes rows, not statements',
               'Use a trigger.'
          FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
         WHERE c.relnamespace = 'onboarding'::regnamespace
           AND c.relname IN ('account', 'proposal', 'document', 'closure', 'history')
        UNION ALL
        SELECT c.relname, format('constraint %I', k.conname),
               'is deferrable: checked at commit, it would fail the transaction and lose its deliveries',
               'Make it NOT DEFERRABLE: a delivery that breaks it is then stored with the outcome refused.'
          FROM pg_constraint k
          JOIN pg_class c ON c.oid IN (k.conrelid, k.confrelid)
         WHERE k.condeferrable
           AND c.relnamespace = 'onboarding'::regnamespace
           AND c.relname IN ('account', 'proposal', 'document', 'closure', 'history')
    ) x LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'onboarding.% cannot have %: it %', bad.tab, bad.what, bad.why
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'The extension writes onboarding.' || bad.tab || ' for every delivery; what it cannot honour on those writes is refused when it is created.',
                  HINT = bad.hint;
    END IF;
END
$$;
COMMENT ON FUNCTION onboarding.guard_state_ddl() IS
    'event trigger: refuses on the state tables and history what the pipeline cannot honour (column triggers, transition tables, rules, deferrable constraints), and labels added to a status enum; notes where the deliveries of a table attached to the inbox lie (onboarding.note_partition()), gives every partition of the inbox the trigger that refuses TRUNCATE, and every partition of history the triggers that keep stage_span (computing the spans again when a table is attached to history or detached from it)';
CREATE EVENT TRIGGER onboarding_guard_state_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TRIGGER', 'CREATE RULE', 'ALTER TABLE', 'CREATE TABLE', 'ALTER TYPE')
    EXECUTE FUNCTION onboarding.guard_state_ddl();
COMMENT ON EVENT TRIGGER onboarding_guard_state_ddl IS
    'refuses at DDL time what the pipeline cannot honour on the state tables and history (see onboarding.guard_state_ddl())';

-- A partition of the inbox dropped while attached would take its
-- deliveries with it: refused (detach it first, to archive it).  Its
-- pipeline trigger, a clone of the inbox's, tells it among what a DROP
-- TABLE dropped; the catalogs no longer know it as a partition.
CREATE FUNCTION onboarding.guard_inbox_drop() RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    part text;
BEGIN
    SELECT pg_catalog.substr(o.object_identity, pg_catalog.length('inbox_pipeline on ') + 1)
      INTO part
      FROM pg_catalog.pg_event_trigger_dropped_objects() o
     WHERE o.object_type = 'trigger'
       AND o.object_identity LIKE 'inbox\_pipeline on %'
       AND o.object_identity <> 'inbox_pipeline on onboarding.inbox'
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop %, a partition of onboarding.inbox', part
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Deliveries are evidence and are kept forever: dropping a partition would delete those it holds.',
                  HINT = 'Detach it first (ALTER TABLE onboarding.inbox DETACH PARTITION ...) to archive it.';
    END IF;
END
$$;
COMMENT ON FUNCTION onboarding.guard_inbox_drop() IS
    'event trigger: refuses DROP TABLE of a partition of the inbox while it is attached (its deliveries would go)';
CREATE EVENT TRIGGER onboarding_guard_inbox_drop ON sql_drop
    WHEN TAG IN ('DROP TABLE')
    EXECUTE FUNCTION onboarding.guard_inbox_drop();
COMMENT ON EVENT TRIGGER onboarding_guard_inbox_drop IS
    'refuses dropping a partition of the inbox while it is attached (see onboarding.guard_inbox_drop())';

-- ---------------------------------------------------------------------------
-- Rule tables: provider knowledge as data
-- ---------------------------------------------------------------------------

-- Is status a label of the enum of entity ('check' = background_check and documentscopy)?
CREATE FUNCTION onboarding.is_status(entity text, status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE entity
        WHEN 'account' THEN status = ANY (enum_range(NULL::onboarding.account_status)::text[])
        WHEN 'proposal' THEN status = ANY (enum_range(NULL::onboarding.proposal_status)::text[])
        WHEN 'document' THEN status = ANY (enum_range(NULL::onboarding.document_status)::text[])
        WHEN 'closure' THEN status = ANY (enum_range(NULL::onboarding.closure_status)::text[])
        WHEN 'check' THEN status = ANY (enum_range(NULL::onboarding.check_status)::text[])
        WHEN 'background_check' THEN status = ANY (enum_range(NULL::onboarding.check_status)::text[])
        WHEN 'documentscopy' THEN status = ANY (enum_range(NULL::onboarding.check_status)::text[])
        ELSE false END
    $$;

CREATE TABLE onboarding.status_map (
    provider    onboarding.provider NOT NULL,
    event_type  text NOT NULL,
    status_raw  text NOT NULL,
    entity      text NOT NULL CHECK (entity IN ('account', 'proposal', 'document', 'closure',
                                                'background_check', 'documentscopy')),
    status      text NOT NULL,
    label       text,
    shipped     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (provider, event_type, status_raw, entity),
    CONSTRAINT status_map_status_is_label CHECK (onboarding.is_status(entity, status))
);
COMMENT ON TABLE onboarding.status_map IS
    'what each provider status means; Celcoin statuses upper case; status_raw * matches any';
COMMENT ON COLUMN onboarding.status_map.label IS 'the provider''s own name for the status (provider_status)';

CREATE TABLE onboarding.transition (
    entity       text NOT NULL CHECK (entity IN ('account', 'proposal', 'document', 'closure', 'check')),
    provider     onboarding.provider,
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    shipped      boolean NOT NULL DEFAULT false,
    CONSTRAINT transition_unique UNIQUE NULLS NOT DISTINCT (entity, provider, from_status, to_status),
    CONSTRAINT transition_statuses_are_labels
        CHECK (onboarding.is_status(entity, from_status) AND onboarding.is_status(entity, to_status)),
    CONSTRAINT transition_moves CHECK (from_status <> to_status),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    CONSTRAINT transition_pkey PRIMARY KEY (id)
);
COMMENT ON COLUMN onboarding.transition.id IS
    'a primary key for replication (provider may be NULL, so the natural key cannot be one)';
COMMENT ON TABLE onboarding.transition IS
    'legal moves; provider NULL = every provider; entity check = background_check and documentscopy';

CREATE FUNCTION onboarding.rules_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_rules_changed' LANGUAGE C;
CREATE TRIGGER status_map_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.status_map FOR EACH STATEMENT EXECUTE FUNCTION onboarding.rules_changed();
CREATE TRIGGER transition_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.transition FOR EACH STATEMENT EXECUTE FUNCTION onboarding.rules_changed();

SELECT pg_catalog.pg_extension_config_dump('onboarding.status_map', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('onboarding.transition', 'WHERE NOT shipped');

-- Settings that change derived state: one value for the whole database,
-- read with the rules and changed only through a function that re-derives
-- every delivery with the new value (0.2.0).
CREATE FUNCTION onboarding.is_timezone(zone text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_is_timezone'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION onboarding.is_timezone(text) IS
    'would onboarding.settings accept this zone? PostgreSQL''s TimeZone syntax and sign (''-03'' is UTC-3)';

CREATE TABLE onboarding.settings (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    timezone  text NOT NULL CHECK (onboarding.is_timezone(timezone))
);
COMMENT ON TABLE onboarding.settings IS
    'settings that change derived state (no row: the defaults); change them with onboarding.set_timezone()';
CREATE TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.settings FOR EACH STATEMENT EXECUTE FUNCTION onboarding.rules_changed();
SELECT pg_catalog.pg_extension_config_dump('onboarding.settings', '');

-- What each provider status means (SPEC §5) -------------------------------

INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status, label, shipped)
SELECT 'qitech', e.event_type, m.status_raw, 'account', m.status, NULL, true
  FROM (VALUES ('account_request.status_change'), ('account')) AS e (event_type)
 CROSS JOIN (VALUES
    ('pending_bacen_validation', 'requested'),
    ('pending_kyc_analysis',     'in_analysis'),
    ('pending_additional_data',  'pending_data'),
    ('rejected',                 'rejected'),
    ('account_rejected',         'rejected'),
    ('account_opened',           'active')) AS m (status_raw, status);

INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status, label, shipped) VALUES
    ('fitbank', 'UpdateAccount', '0', 'account', 'created', 'Created', true),
    ('fitbank', 'UpdateAccount', '1', 'account', 'limited', 'Limited', true),
    ('fitbank', 'UpdateAccount', '2', 'account', 'active',  'Verified', true),
    ('fitbank', 'UpdateAccount', '3', 'account', 'blocked', 'Blocked', true),
    ('fitbank', 'UpdateAccount', '4', 'account', 'closed',  'Terminated', true),
    ('fitbank', 'UpdatePersonDocument', '0',  'document', 'awaiting_validation', 'AwaitingValidation', true),
    ('fitbank', 'UpdatePersonDocument', '1',  'document', 'validated',   'Validated', true),
    ('fitbank', 'UpdatePersonDocument', '2',  'document', 'invalid',     'Invalid', true),
    ('fitbank', 'UpdatePersonDocument', '3',  'document', 'expired',     'Expired', true),
    ('fitbank', 'UpdatePersonDocument', '4',  'document', 'sent',        'Sent', true),
    ('fitbank', 'UpdatePersonDocument', '5',  'document', 'resubmitted', 'Resubmitted', true),
    ('fitbank', 'UpdatePersonDocument', '6',  'document', 'disapproved', 'Disapproved', true),
    ('fitbank', 'UpdatePersonDocument', '7',  'document', 'error',       'Error', true),
    ('fitbank', 'UpdatePersonDocument', '8',  'document', 'inexistent',  'Inexistent', true),
    ('fitbank', 'UpdatePersonDocument', '9',  'document', 'suspended',   'Suspended', true),
    ('fitbank', 'UpdatePersonDocument', '10', 'document', 'typified',    'TypificationResult', true),
    ('fitbank', 'UpdatePersonCondition', '0', 'proposal', 'pending_data', 'DivergentInformation', true),
    ('fitbank', 'UpdatePersonCondition', '1', 'proposal', 'rejected',     'Rejected', true),
    ('fitbank', 'UpdatePersonCondition', '2', 'proposal', 'rejected',     'InternalDisapproved', true),
    ('fitbank', 'UpdatePersonCondition', '3', 'proposal', 'expired',      'ExpiredDocumentation', true),
    ('fitbank', 'UpdatePersonCondition', '4', 'proposal', 'approved',     'ApprovedCustomer', true),
    ('fitbank', 'UpdateCloseAccount', '0', 'closure', 'created',     'Created', true),
    ('fitbank', 'UpdateCloseAccount', '1', 'closure', 'processing',  'Processing', true),
    ('fitbank', 'UpdateCloseAccount', '2', 'closure', 'error',       'Error', true),
    ('fitbank', 'UpdateCloseAccount', '3', 'closure', 'pending',     'Pending', true),
    ('fitbank', 'UpdateCloseAccount', '4', 'closure', 'disapproved', 'Disapproved', true),
    ('fitbank', 'UpdateCloseAccount', '5', 'closure', 'approved',    'Approved', true),
    ('fitbank', 'UpdateCloseAccount', '6', 'closure', 'automatic',   'AutomaticClosureRequest', true),
    ('fitbank', 'UpdateCloseAccount', '5', 'account', 'closed',      NULL, true);

INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status, label, shipped)
SELECT 'celcoin', e.event_type, m.status_raw, e.entity, m.status, NULL, true
  FROM (VALUES ('onboarding-backgroundcheck', 'background_check'),
               ('onboarding-documentscopy', 'documentscopy')) AS e (event_type, entity)
 CROSS JOIN (VALUES ('CREATED', 'created'), ('PENDING', 'pending'), ('PROCESSING', 'processing'),
                    ('APPROVED', 'approved'), ('REPROVED', 'rejected')) AS m (status_raw, status);

-- a check moves its proposal: REPROVED rejects it, any other starts the analysis
INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status, label, shipped)
SELECT 'celcoin', e.event_type, m.status_raw, 'proposal', m.status, NULL, true
  FROM (VALUES ('onboarding-backgroundcheck'), ('onboarding-documentscopy')) AS e (event_type)
 CROSS JOIN (VALUES ('CREATED', 'in_analysis'), ('PENDING', 'in_analysis'),
                    ('PROCESSING', 'in_analysis'), ('APPROVED', 'in_analysis'),
                    ('REPROVED', 'rejected')) AS m (status_raw, status);

INSERT INTO onboarding.status_map (provider, event_type, status_raw, entity, status, label, shipped) VALUES
    ('celcoin', 'onboarding-file', '*', 'document', 'sent', NULL, true),
    ('celcoin', 'onboarding-proposal', 'CREATED',                  'proposal', 'created', NULL, true),
    ('celcoin', 'onboarding-proposal', 'PENDING',                  'proposal', 'pending', NULL, true),
    ('celcoin', 'onboarding-proposal', 'PENDING_DOCUMENTSCOPY',    'proposal', 'in_analysis', NULL, true),
    ('celcoin', 'onboarding-proposal', 'PROCESSING_DOCUMENTSCOPY', 'proposal', 'in_analysis', NULL, true),
    ('celcoin', 'onboarding-proposal', 'APPROVED',                 'proposal', 'approved', NULL, true),
    ('celcoin', 'onboarding-proposal', 'REPROVED',                 'proposal', 'rejected', NULL, true),
    ('celcoin', 'onboarding-proposal', 'RESOURCE_CREATED',         'proposal', 'account_created', NULL, true),
    ('celcoin', 'onboarding-proposal', 'RESOURCE_ERROR',           'proposal', 'account_error', NULL, true),
    ('celcoin', 'onboarding-create', 'CONFIRMED', 'account',  'active', NULL, true),
    ('celcoin', 'onboarding-create', 'ERROR',     'account',  'failed', NULL, true),
    ('celcoin', 'onboarding-create', 'CONFIRMED', 'proposal', 'account_created', NULL, true),
    ('celcoin', 'onboarding-create', 'ERROR',     'proposal', 'account_error', NULL, true),
    ('celcoin', 'account-status', 'ATIVO',                'account', 'active', NULL, true),
    ('celcoin', 'account-status', 'BLOQUEADO',            'account', 'blocked', NULL, true),
    ('celcoin', 'account-status', 'BLOQUEIO-JUDICIAL',    'account', 'blocked', NULL, true),
    ('celcoin', 'account-status', 'BLOQUEIO-RFB',         'account', 'blocked', NULL, true),
    ('celcoin', 'account-status', 'BLOQUEADO-RFB',        'account', 'blocked', NULL, true),
    ('celcoin', 'account-status', 'DESBLOQUEIO-JUDICIAL', 'account', 'active', NULL, true),
    ('celcoin', 'account-status', 'EM CANCELAMENTO',      'account', 'closing', NULL, true),
    ('celcoin', 'account-status', 'ENCERRADO',            'account', 'closed', NULL, true);

-- The legal moves (SPEC §6) -----------------------------------------------

INSERT INTO onboarding.transition (entity, provider, from_status, to_status, shipped)
SELECT g.entity, NULL, g.from_status, t.to_status, true
  FROM (VALUES
    ('account', 'requested',    'in_analysis,pending_data,created,limited,active,rejected,failed'),
    ('account', 'in_analysis',  'pending_data,created,limited,active,rejected,failed'),
    ('account', 'pending_data', 'in_analysis,created,limited,active,rejected,failed'),
    ('account', 'created',      'limited,active,blocked,closing,closed'),
    ('account', 'limited',      'active,blocked,closing,closed'),
    ('account', 'active',       'limited,blocked,closing,closed'),
    ('account', 'blocked',      'limited,active,closing,closed'),
    ('account', 'closing',      'active,blocked,closed'),
    ('account', 'failed',       'created,active'),
    ('proposal', 'created',      'pending,in_analysis,pending_data,approved,rejected,expired'),
    ('proposal', 'pending',      'in_analysis,pending_data,approved,rejected,expired'),
    ('proposal', 'in_analysis',  'pending,pending_data,approved,rejected,expired'),
    ('proposal', 'pending_data', 'pending,in_analysis,approved,rejected,expired'),
    ('proposal', 'approved',     'account_created,account_error'),
    ('proposal', 'account_error', 'account_created'),
    ('check', 'created',    'pending,processing,approved,rejected'),
    ('check', 'pending',    'processing,approved,rejected'),
    ('check', 'processing', 'pending,approved,rejected'),
    ('document', 'sent',                'awaiting_validation,typified,validated,invalid,disapproved,error,inexistent'),
    ('document', 'awaiting_validation', 'typified,validated,invalid,disapproved,error,inexistent,expired,suspended'),
    ('document', 'resubmitted',         'awaiting_validation,typified,validated,invalid,disapproved,error'),
    ('document', 'typified',            'awaiting_validation,validated,invalid,disapproved'),
    ('document', 'validated',           'expired,suspended,invalid,disapproved,resubmitted'),
    ('document', 'invalid',             'resubmitted,sent,awaiting_validation'),
    ('document', 'disapproved',         'resubmitted,sent,awaiting_validation'),
    ('document', 'error',               'resubmitted,sent,awaiting_validation'),
    ('document', 'inexistent',          'resubmitted,sent,awaiting_validation'),
    ('document', 'expired',             'resubmitted,sent,awaiting_validation'),
    ('document', 'suspended',           'validated,resubmitted,awaiting_validation,invalid'),
    ('closure', 'created',     'processing,pending,error,disapproved,approved,automatic'),
    ('closure', 'processing',  'pending,error,disapproved,approved'),
    ('closure', 'pending',     'processing,error,disapproved,approved'),
    ('closure', 'error',       'created,processing,pending'),
    ('closure', 'automatic',   'processing,pending,error,approved'),
    ('closure', 'disapproved', 'created')
  ) AS g (entity, from_status, to_list)
 CROSS JOIN LATERAL pg_catalog.unnest(pg_catalog.string_to_array(g.to_list, ',')) AS t (to_status);

-- Fitbank: a person may apply again after a rejection or an expiry
INSERT INTO onboarding.transition (entity, provider, from_status, to_status, shipped) VALUES
    ('proposal', 'fitbank', 'rejected', 'pending_data', true),
    ('proposal', 'fitbank', 'rejected', 'approved', true),
    ('proposal', 'fitbank', 'expired',  'pending_data', true),
    ('proposal', 'fitbank', 'expired',  'approved', true);

-- ===========================================================================
-- Providers as data (0.2.0): how a delivery is read
--
-- Everything the pipeline knows of a provider is rows of these tables:
-- how its bodies are recognised and where their event type and time are
-- (provider_rule), which events it sends (event_rule), which entities each
-- event touches (effect_rule), where each key, status and field is and how
-- it is read (value_rule), and the provider's code tables (code_map).  The
-- C (src/extract.c) is one interpreter of these rows, compiled once into a
-- cache that a change to any of them invalidates.  Shipped rows are marked
-- shipped; rows of yours are dumped by pg_dump, as status_map's are.
-- ===========================================================================

-- Is path a JSON path of the rule tables: keys joined by dots, "@." first
-- for a key of the element of an effect's for_each?
CREATE FUNCTION onboarding.is_json_path(path text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT path <> '' AND path <> '@.'
       AND NOT path ~ '(^\.|\.\.|\.$)' AND path !~ '^@[^.]' AND length(path) <= 200
    $$;

-- Is template a template of value_rule: literal text and placeholders
-- {path,path...|transform?default} (see src/extract.c)?
CREATE FUNCTION onboarding.is_template(template text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_is_template'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Is every element of paths such a path?
CREATE FUNCTION onboarding.are_json_paths(paths text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT coalesce(bool_and(coalesce(onboarding.is_json_path(p), false)), true) FROM unnest(paths) AS p
    $$;

-- Are all statuses labels of the enum of entity?
CREATE FUNCTION onboarding.are_statuses(entity text, statuses text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT coalesce(bool_and(onboarding.is_status(entity, s)), true) FROM unnest(statuses) AS s
    $$;

CREATE TABLE onboarding.provider_rule (
    provider       onboarding.provider PRIMARY KEY,
    title          text NOT NULL CHECK (title <> ''),
    position       integer NOT NULL,
    marker         text NOT NULL CHECK (onboarding.is_json_path(marker) AND marker !~ '^@'),
    marker_object  text CHECK (onboarding.is_json_path(marker_object) AND marker_object !~ '^@'),
    event_path     text NOT NULL CHECK (onboarding.is_json_path(event_path) AND event_path !~ '^@'),
    time_paths     text[] NOT NULL DEFAULT '{}' CHECK (onboarding.are_json_paths(time_paths)),
    fold_status    boolean NOT NULL DEFAULT false,
    shipped        boolean NOT NULL DEFAULT false,
    CONSTRAINT provider_rule_position_unique UNIQUE (position)
);
COMMENT ON TABLE onboarding.provider_rule IS
    'how a body is recognised as the provider''s (a string at marker, an object at marker_object), where its event type and time are';

CREATE TABLE onboarding.event_rule (
    provider      onboarding.provider NOT NULL,
    event_type    text NOT NULL CHECK (event_type <> '' AND event_type <> '*'),
    match         text NOT NULL DEFAULT 'exact' CHECK (match IN ('exact', 'contains')),
    rule_event    text,
    requires      text CHECK (onboarding.is_json_path(requires) AND requires !~ '^@'),
    needs_status  boolean NOT NULL DEFAULT true,
    position      integer NOT NULL DEFAULT 0,
    shipped       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (provider, event_type)
);
COMMENT ON TABLE onboarding.event_rule IS
    'the events of a provider: the event type as sent (match exact) or a part of it (match contains); rule_event: the event_type of its status_map rows';

CREATE TABLE onboarding.effect_rule (
    provider       onboarding.provider NOT NULL,
    event_type     text NOT NULL,
    entity         text NOT NULL CHECK (entity IN ('account', 'proposal', 'document', 'closure',
                                                   'background_check', 'documentscopy')),
    position       integer NOT NULL DEFAULT 1,
    consequence    boolean NOT NULL DEFAULT false,
    for_each       text CHECK (onboarding.is_json_path(for_each) AND for_each !~ '^@'),
    for_each_else  text CHECK (onboarding.is_json_path(for_each_else) AND for_each_else !~ '^@'),
    shipped        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (provider, event_type, entity),
    CONSTRAINT effect_rule_event FOREIGN KEY (provider, event_type)
        REFERENCES onboarding.event_rule ON UPDATE CASCADE ON DELETE CASCADE,
    CONSTRAINT effect_rule_else CHECK (for_each_else IS NULL OR for_each IS NOT NULL)
);
COMMENT ON TABLE onboarding.effect_rule IS
    'the entities an event touches; a consequence applies only when status_map maps the status for it and the move is legal';

CREATE TABLE onboarding.value_rule (
    provider    onboarding.provider NOT NULL,
    event_type  text NOT NULL,
    entity      text NOT NULL CHECK (entity IN ('*', 'account', 'proposal', 'document', 'closure',
                                                'background_check', 'documentscopy')),
    field       text NOT NULL CHECK (field IN ('subject', 'key', 'status',
                    'enabled', 'tax_id', 'tax_id_raw', 'holder_name', 'bank', 'branch', 'number',
                    'digit', 'reason', 'client_code', 'person_type', 'account_key', 'message',
                    'document_type', 'document_type_raw', 'signer', 'file_name', 'url',
                    'expires_at', 'partner_id', 'business_unit_id', 'accounts_key')),
    position    integer NOT NULL DEFAULT 1,
    paths       text[] NOT NULL DEFAULT '{}' CHECK (onboarding.are_json_paths(paths)),
    transform   text NOT NULL DEFAULT 'text'
                CHECK (transform IN ('text', 'upper', 'status', 'time', 'taxid', 'taxid_key',
                                     'taxid_kind', 'code', 'jsonb', 'template', 'const')),
    arg         text,
    if_absent   text,
    shipped     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (provider, event_type, entity, field, position),
    CONSTRAINT value_rule_paths CHECK (transform IN ('template', 'const') OR cardinality(paths) > 0),
    CONSTRAINT value_rule_arg CHECK ((arg IS NOT NULL) = (transform IN ('code', 'template', 'const'))),
    CONSTRAINT value_rule_taxid CHECK ((field = 'tax_id') = (transform = 'taxid')),
    CONSTRAINT value_rule_event_wide CHECK (field NOT IN ('subject', 'status') OR entity = '*'),
    CONSTRAINT value_rule_key CHECK (field <> 'key' OR entity <> '*'),
    CONSTRAINT value_rule_key_transform
        CHECK (field NOT IN ('subject', 'key') OR transform IN ('text', 'upper', 'taxid_key', 'template', 'const')),
    CONSTRAINT value_rule_status CHECK ((field = 'status') = (transform = 'status')),
    CONSTRAINT value_rule_template CHECK (transform <> 'template' OR onboarding.is_template(arg))
);
COMMENT ON TABLE onboarding.value_rule IS
    'where each subject, key, status and field is (paths, tried in order) and how it is read (transform); rows of one field are alternatives, tried by position';

CREATE TABLE onboarding.code_map (
    code_table  text NOT NULL CHECK (code_table <> ''),
    code        text NOT NULL,
    value       text NOT NULL,
    shipped     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (code_table, code)
);
COMMENT ON TABLE onboarding.code_map IS
    'code tables of the providers (compared ignoring ASCII case); code * is the value of any other code';

-- The guard of a move: an event that moves entity to status does so only
-- from the states of from_status (a Celcoin check starts the analysis of a
-- proposal that has not started it yet, and leaves a later stage alone).
-- Read with status_map (src/rules.c).
CREATE TABLE onboarding.status_guard (
    provider     onboarding.provider NOT NULL,
    event_type   text NOT NULL,
    entity       text NOT NULL CHECK (entity IN ('account', 'proposal', 'document', 'closure',
                                                 'background_check', 'documentscopy')),
    status       text NOT NULL,
    from_status  text[] NOT NULL,
    shipped      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (provider, event_type, entity, status),
    CONSTRAINT status_guard_statuses_are_labels
        CHECK (onboarding.is_status(entity, status) AND onboarding.are_statuses(entity, from_status))
);
COMMENT ON TABLE onboarding.status_guard IS
    'an event that moves entity to status does so only from from_status (else the move is illegal, or a consequence skipped)';

-- Statuses that are not final in the graph but in which an entity waits on
-- nobody (stuck() leaves them out): an account that exists, a validated
-- document, a disapproved closure request, an approved Fitbank person
-- (Fitbank reports the account itself through UpdateAccount); and outcomes
-- that a later move may still follow but nobody awaits: an account, or a
-- proposal's account, whose creation failed (the provider may retry), a
-- Fitbank person rejected or expired (they may apply again).
CREATE TABLE onboarding.settled_status (
    entity    text NOT NULL CHECK (entity IN ('account', 'proposal', 'document', 'closure',
                                              'background_check', 'documentscopy')),
    provider  onboarding.provider,
    status    text NOT NULL,
    shipped   boolean NOT NULL DEFAULT false,
    CONSTRAINT settled_status_unique UNIQUE NULLS NOT DISTINCT (entity, provider, status),
    CONSTRAINT settled_status_is_label CHECK (onboarding.is_status(entity, status)),
    id        bigint GENERATED ALWAYS AS IDENTITY,
    CONSTRAINT settled_status_pkey PRIMARY KEY (id)
);
COMMENT ON COLUMN onboarding.settled_status.id IS
    'a primary key for replication (provider may be NULL, so the natural key cannot be one)';
COMMENT ON TABLE onboarding.settled_status IS
    'statuses, not final, in which an entity waits on nobody (provider NULL = every provider); stuck() leaves them out';

-- Entities settled by their proposal: a provider that reports a document
-- once, as sent, and never again (Celcoin's files) settles it by analysing
-- the proposal it belongs to.  The proposal is the same provider's, keyed
-- by the document key up to the first key_separator (the whole key when it
-- has none); while it is in one of the statuses of proposal_waiting the
-- document still waits, afterwards it waits on nobody (document_settled(),
-- read by pending_documents and stuck()).
CREATE TABLE onboarding.settled_by_proposal (
    entity            text NOT NULL CHECK (entity = 'document'),
    provider          onboarding.provider NOT NULL,
    key_separator     text NOT NULL CHECK (key_separator <> ''),
    proposal_waiting  text[] NOT NULL,
    shipped           boolean NOT NULL DEFAULT false,
    PRIMARY KEY (entity, provider),
    CONSTRAINT settled_by_proposal_waiting_are_labels
        CHECK (onboarding.are_statuses('proposal', proposal_waiting)
               AND array_position(proposal_waiting, NULL) IS NULL)
);
COMMENT ON TABLE onboarding.settled_by_proposal IS
    'documents settled by their proposal (the document key up to the first key_separator): waiting while it is in a status of proposal_waiting, settled once it is not; pending_documents and stuck() leave settled ones out';

CREATE TRIGGER provider_rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.provider_rule FOR EACH STATEMENT EXECUTE FUNCTION onboarding.rules_changed();
CREATE TRIGGER event_rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.event_rule FOR EACH STATEMENT EXECUTE FUNCTION onboarding.rules_changed();
CREATE TRIGGER effect_rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.effect_rule FOR EACH STATEMENT EXECUTE FUNCTION onboarding.rules_changed();
CREATE TRIGGER value_rule_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.value_rule FOR EACH STATEMENT EXECUTE FUNCTION onboarding.rules_changed();
CREATE TRIGGER code_map_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.code_map FOR EACH STATEMENT EXECUTE FUNCTION onboarding.rules_changed();
CREATE TRIGGER status_guard_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.status_guard FOR EACH STATEMENT EXECUTE FUNCTION onboarding.rules_changed();

SELECT pg_catalog.pg_extension_config_dump('onboarding.provider_rule', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('onboarding.event_rule', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('onboarding.effect_rule', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('onboarding.value_rule', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('onboarding.code_map', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('onboarding.status_guard', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('onboarding.settled_status', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('onboarding.settled_by_proposal', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('onboarding.inbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('onboarding.history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('onboarding.transition_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('onboarding.settled_status_id_seq', '');

-- Rule tables and logical replication (0.3.0).  A subscriber that has the
-- extension has the shipped rows already: a publication carries the user's
-- rows only, with the row filter WHERE (NOT shipped), and PostgreSQL lets a
-- row filter name only columns of the replica identity when updates and
-- deletions are published.  These tables are small and rarely written, so
-- their replica identity is the whole row (README, "Replicas").
ALTER TABLE onboarding.status_map REPLICA IDENTITY FULL;
ALTER TABLE onboarding.transition REPLICA IDENTITY FULL;
ALTER TABLE onboarding.provider_rule REPLICA IDENTITY FULL;
ALTER TABLE onboarding.event_rule REPLICA IDENTITY FULL;
ALTER TABLE onboarding.effect_rule REPLICA IDENTITY FULL;
ALTER TABLE onboarding.value_rule REPLICA IDENTITY FULL;
ALTER TABLE onboarding.code_map REPLICA IDENTITY FULL;
ALTER TABLE onboarding.status_guard REPLICA IDENTITY FULL;
ALTER TABLE onboarding.settled_status REPLICA IDENTITY FULL;
ALTER TABLE onboarding.settled_by_proposal REPLICA IDENTITY FULL;

-- The shipped providers (SPEC §5) -----------------------------------------

INSERT INTO onboarding.provider_rule
    (provider, title, position, marker, marker_object, event_path, time_paths, fold_status, shipped) VALUES
    ('qitech',  'QI Tech', 1, 'webhook_type', NULL,   'webhook_type', '{event_datetime}', false, true),
    ('fitbank', 'Fitbank', 2, 'Method',       NULL,   'Method',       '{SendDate}', false, true),
    ('celcoin', 'Celcoin', 3, 'entity',       'body', 'entity',       '{createTimestamp,createTimeStamp}', true, true);

INSERT INTO onboarding.event_rule (provider, event_type, match, rule_event, requires, needs_status, position, shipped) VALUES
    ('qitech',  'account_request.status_change', 'exact', NULL, NULL, true, 0, true),
    ('qitech',  'account',                       'exact', NULL, NULL, true, 0, true),
    ('fitbank', 'UpdateAccount',         'exact', NULL, NULL, true, 0, true),
    ('fitbank', 'UpdatePersonDocument',  'exact', NULL, 'Document', true, 0, true),
    ('fitbank', 'Signer',                'contains', 'UpdatePersonDocument', 'Document', true, 1, true),
    ('fitbank', 'UpdatePersonCondition', 'exact', NULL, NULL, true, 0, true),
    ('fitbank', 'UpdateCloseAccount',    'exact', NULL, NULL, true, 0, true),
    ('celcoin', 'onboarding-backgroundcheck', 'exact', NULL, NULL, true, 0, true),
    ('celcoin', 'onboarding-documentscopy',   'exact', NULL, NULL, true, 0, true),
    ('celcoin', 'onboarding-proposal',        'exact', NULL, NULL, true, 0, true),
    ('celcoin', 'onboarding-file',            'exact', NULL, NULL, false, 0, true),
    ('celcoin', 'onboarding-create',          'exact', NULL, NULL, true, 0, true),
    ('celcoin', 'account-status',             'exact', NULL, NULL, true, 0, true);

INSERT INTO onboarding.effect_rule (provider, event_type, entity, position, consequence, for_each, for_each_else, shipped) VALUES
    ('qitech',  'account_request.status_change', 'account', 1, false, NULL, NULL, true),
    ('qitech',  'account',                       'account', 1, false, NULL, NULL, true),
    ('fitbank', 'UpdateAccount',         'account',  1, false, NULL, NULL, true),
    ('fitbank', 'UpdatePersonDocument',  'document', 1, false, NULL, NULL, true),
    ('fitbank', 'Signer',                'document', 1, false, NULL, NULL, true),
    ('fitbank', 'UpdatePersonCondition', 'proposal', 1, false, NULL, NULL, true),
    ('fitbank', 'UpdateCloseAccount',    'closure',  1, false, NULL, NULL, true),
    ('fitbank', 'UpdateCloseAccount',    'account',  2, true,  NULL, NULL, true),
    ('celcoin', 'onboarding-backgroundcheck', 'background_check', 1, false, NULL, NULL, true),
    ('celcoin', 'onboarding-backgroundcheck', 'proposal',         2, true,  NULL, NULL, true),
    ('celcoin', 'onboarding-documentscopy',   'documentscopy',    1, false, NULL, NULL, true),
    ('celcoin', 'onboarding-documentscopy',   'proposal',         2, true,  NULL, NULL, true),
    ('celcoin', 'onboarding-proposal',        'proposal',         1, false, NULL, NULL, true),
    ('celcoin', 'onboarding-file',            'document',         1, false, 'body.files', 'body.url', true),
    ('celcoin', 'onboarding-create',          'account',          1, false, NULL, NULL, true),
    ('celcoin', 'onboarding-create',          'proposal',         2, true,  NULL, NULL, true),
    ('celcoin', 'account-status',             'account',          1, false, NULL, NULL, true);

-- QI Tech: the key and status of every event, the fields of its account
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform, arg, if_absent, shipped) VALUES
    ('qitech', '*', '*', 'subject', 1, '{key}', 'text', NULL, NULL, true),
    ('qitech', '*', '*', 'subject', 2, '{data.account_request_key}', 'text', NULL, NULL, true),
    ('qitech', '*', '*', 'status',  1, '{status}', 'status', NULL, NULL, true),
    ('qitech', '*', '*', 'status',  2, '{data.status}', 'status', NULL, NULL, true),
    ('qitech', '*', 'account', 'branch',      10, '{data.account_info.account_branch}', 'text', NULL, NULL, true),
    ('qitech', '*', 'account', 'number',      20, '{data.account_info.account_number}', 'text', NULL, NULL, true),
    ('qitech', '*', 'account', 'digit',       30, '{data.account_info.account_digit}', 'text', NULL, NULL, true),
    ('qitech', '*', 'account', 'bank',        40, '{data.account_info.financial_institution_code}', 'text', NULL, NULL, true),
    ('qitech', '*', 'account', 'holder_name', 50, '{data.account_owner.name}', 'text', NULL, NULL, true),
    ('qitech', '*', 'account', 'reason',      60, '{rejection_reason}', 'text', NULL, NULL, true),
    ('qitech', '*', 'account', 'tax_id',      70, '{data.account_owner.document_number}', 'taxid', NULL, NULL, true);

-- Fitbank: the tenant on every row; each Method's key, status and fields
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform, arg, if_absent, shipped) VALUES
    ('fitbank', '*', '*', 'partner_id',       1, '{PartnerId}', 'text', NULL, NULL, true),
    ('fitbank', '*', '*', 'business_unit_id', 2, '{BusinessUnitId,BusinessUnitld}', 'text', NULL, NULL, true),
    ('fitbank', 'UpdateAccount', '*', 'subject', 1, '{AccountKey}', 'text', NULL, NULL, true),
    ('fitbank', 'UpdateAccount', '*', 'subject', 2, '{TaxNumber,Taxnumber}', 'taxid_key', NULL, NULL, true),
    ('fitbank', 'UpdateAccount', '*', 'status',  1, '{AccountConditionType}', 'status', NULL, NULL, true),
    ('fitbank', 'UpdateAccount', 'account', 'tax_id',  10, '{TaxNumber,Taxnumber}', 'taxid', NULL, NULL, true),
    ('fitbank', 'UpdateAccount', 'account', 'bank',    20, '{Bank,SpbAccount.Bank}', 'text', NULL, NULL, true),
    ('fitbank', 'UpdateAccount', 'account', 'branch',  30, '{BankBranch,SpbAccount.BankBranch}', 'text', NULL, NULL, true),
    ('fitbank', 'UpdateAccount', 'account', 'number',  40, '{BankAccount,SpbAccount.BankAccount}', 'text', NULL, NULL, true),
    ('fitbank', 'UpdateAccount', 'account', 'digit',   50, '{BankAccountDigit,SpbAccount.BankAccountDigit}', 'text', NULL, NULL, true),
    ('fitbank', 'UpdateAccount', 'account', 'enabled', 60, '{AccountStatus}', 'code', 'fitbank_account_status', NULL, true),
    ('fitbank', 'UpdatePersonCondition', '*', 'subject', 1, '{TaxNumber,Taxnumber}', 'taxid_key', NULL, NULL, true),
    ('fitbank', 'UpdatePersonCondition', '*', 'status',  1, '{MessageClassification}', 'status', NULL, NULL, true),
    ('fitbank', 'UpdatePersonCondition', 'proposal', 'tax_id',       10, '{TaxNumber,Taxnumber}', 'taxid', NULL, NULL, true),
    ('fitbank', 'UpdatePersonCondition', 'proposal', 'message',      20, '{Message}', 'text', NULL, NULL, true),
    ('fitbank', 'UpdatePersonCondition', 'proposal', 'person_type',  30, '{TaxNumber,Taxnumber}', 'taxid_kind', NULL, NULL, true),
    ('fitbank', 'UpdatePersonCondition', 'proposal', 'accounts_key', 40, '{AccountsKey}', 'jsonb', NULL, NULL, true),
    ('fitbank', 'UpdateCloseAccount', '*', 'subject', 1, '{AccountKey}', 'text', NULL, NULL, true),
    ('fitbank', 'UpdateCloseAccount', '*', 'status',  1, '{CloseAccountInformationStatus}', 'status', NULL, NULL, true),
    ('fitbank', 'UpdateCloseAccount', 'closure', 'message', 10, '{Message}', 'text', NULL, NULL, true);

-- Fitbank documents: UpdatePersonDocument, and any Method naming a Signer
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform, arg, if_absent, shipped)
SELECT 'fitbank', e.event_type, v.entity, v.field, v.position, v.paths::text[], v.transform,
       CASE v.field WHEN 'signer' THEN e.signer
                    WHEN 'subject' THEN v.arg || e.suffix ELSE v.arg END, NULL, true
  FROM (VALUES ('UpdatePersonDocument', 'false', ''), ('Signer', 'true', ':signer'))
       AS e (event_type, signer, suffix)
 CROSS JOIN (VALUES
    ('*', 'subject', 1, '{Document.DocumentKey}', 'text', NULL),
    ('*', 'subject', 2, '{}', 'template',
     '{Document.TaxNumber,Document.Taxnumber,Account.TaxNumber,Account.Taxnumber,TaxNumber,Taxnumber|taxid_key}:{Document.DocumentType}'),
    ('*', 'status', 1, '{Document.DocumentStatus}', 'status', NULL),
    ('document', 'document_type',     10, '{Document.DocumentType}', 'code', 'fitbank_document_type'),
    ('document', 'tax_id',            20, '{Document.TaxNumber,Document.Taxnumber,Account.TaxNumber,Account.Taxnumber,TaxNumber,Taxnumber}', 'taxid', NULL),
    ('document', 'document_type_raw', 30, '{Document.DocumentType}', 'text', NULL),
    ('document', 'signer',            40, '{}', 'const', NULL),
    ('document', 'account_key',       50, '{Account.AccountKey}', 'text', NULL),
    ('document', 'file_name',         60, '{Document.FileName}', 'text', NULL),
    ('document', 'reason',            70, '{Document.Reason,Document.PendingReason}', 'text', NULL),
    ('document', 'message',           80, '{Document.Message}', 'text', NULL),
    ('document', 'expires_at',        90, '{Document.ExpirationDate}', 'time', NULL)
  ) AS v (entity, field, position, paths, transform, arg);

-- Celcoin: the envelope's status; each entity's key and fields
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform, arg, if_absent, shipped)
SELECT 'celcoin', v.event_type, v.entity, v.field, v.position, v.paths::text[], v.transform, v.arg, v.if_absent, true
  FROM (VALUES
    ('*', '*', 'status', 1, '{status}', 'status', NULL, NULL),
    ('onboarding-backgroundcheck', '*', 'subject', 1, '{body.proposalId}', 'text', NULL, NULL),
    ('onboarding-documentscopy',   '*', 'subject', 1, '{body.proposalId}', 'text', NULL, NULL),
    ('onboarding-proposal',        '*', 'subject', 1, '{body.proposalId}', 'text', NULL, NULL),
    ('onboarding-file',            '*', 'subject', 1, '{body.proposalId}', 'text', NULL, NULL),
    ('onboarding-create',          '*', 'subject', 1, '{body.onboardingId}', 'text', NULL, NULL),
    ('account-status',             '*', 'subject', 1, '{body.onboardingId}', 'text', NULL, NULL),
    ('onboarding-file', 'document', 'key',               1, '{}', 'template', '{body.proposalId}:{@.type?FILE}', NULL),
    ('onboarding-file', 'document', 'document_type',     10, '{@.type}', 'code', 'celcoin_file_type', 'FILE'),
    ('onboarding-file', 'document', 'document_type_raw', 20, '{@.type}', 'text', NULL, 'FILE'),
    ('onboarding-file', 'document', 'signer',            30, '{}', 'const', 'false', NULL),
    ('onboarding-file', 'document', 'url',               40, '{@.url}', 'text', NULL, NULL),
    ('onboarding-file', 'document', 'expires_at',        50, '{@.expirationTime}', 'time', NULL, NULL),
    ('onboarding-file', 'document', 'tax_id',            60, '{body.documentNumber}', 'taxid', NULL, NULL),
    ('onboarding-create', 'account', 'branch',      10, '{body.account.branch}', 'text', NULL, NULL),
    ('onboarding-create', 'account', 'number',      20, '{body.account.account}', 'text', NULL, NULL),
    ('onboarding-create', 'account', 'holder_name', 30, '{body.account.name}', 'text', NULL, NULL),
    ('onboarding-create', 'account', 'bank',        40, '{body.account.ispb}', 'text', NULL, NULL),
    ('onboarding-create', 'account', 'tax_id',      50, '{body.account.documentNumber}', 'taxid', NULL, NULL),
    ('onboarding-create', 'proposal', 'key',         1, '{body.proposalId}', 'text', NULL, NULL),
    ('onboarding-create', 'proposal', 'key',         2, '{body.onboardingId}', 'text', NULL, NULL),
    ('onboarding-create', 'proposal', 'client_code', 10, '{body.clientCode}', 'text', NULL, NULL),
    ('onboarding-create', 'proposal', 'account_key', 20, '{body.onboardingId}', 'text', NULL, NULL),
    ('account-status', 'account', 'reason', 10, '{body.reason}', 'text', NULL, NULL),
    ('account-status', 'account', 'number', 20, '{body.account}', 'text', NULL, NULL),
    ('account-status', 'account', 'tax_id', 30, '{body.documentNumber}', 'taxid', NULL, NULL)
  ) AS v (event_type, entity, field, position, paths, transform, arg, if_absent);

-- the proposal fields every Celcoin KYC event carries
INSERT INTO onboarding.value_rule (provider, event_type, entity, field, position, paths, transform, arg, if_absent, shipped)
SELECT 'celcoin', e.event_type, 'proposal', v.field, v.position, v.paths::text[], v.transform, NULL, NULL, true
  FROM (VALUES ('onboarding-backgroundcheck'), ('onboarding-documentscopy'), ('onboarding-proposal'))
       AS e (event_type)
 CROSS JOIN (VALUES
    ('client_code', 10, '{body.clientCode}', 'text'),
    ('person_type', 20, '{body.proposalType}', 'text'),
    ('tax_id',      30, '{body.documentNumber}', 'taxid')
  ) AS v (field, position, paths, transform);

INSERT INTO onboarding.code_map (code_table, code, value, shipped) VALUES
    ('fitbank_account_status', '0', 'false', true),
    ('fitbank_account_status', '1', 'true', true),
    ('fitbank_document_type', '0',  'identity_front', true),
    ('fitbank_document_type', '1',  'cpf', true),
    ('fitbank_document_type', '2',  'proof_of_address', true),
    ('fitbank_document_type', '3',  'cnh', true),
    ('fitbank_document_type', '4',  'cnpj', true),
    ('fitbank_document_type', '5',  'contract', true),
    ('fitbank_document_type', '6',  'power_of_attorney', true),
    ('fitbank_document_type', '7',  'identity_back', true),
    ('fitbank_document_type', '8',  'other', true),
    ('fitbank_document_type', '10', 'identity', true),
    ('fitbank_document_type', '12', 'kyc_report', true),
    ('fitbank_document_type', '13', 'other', true),
    ('fitbank_document_type', '14', 'selfie', true),
    ('fitbank_document_type', '15', 'election_minutes', true),
    ('fitbank_document_type', '16', 'cnh_back', true),
    ('fitbank_document_type', '*',  'other', true),
    ('celcoin_file_type', 'RG_FRONT',          'identity_front', true),
    ('celcoin_file_type', 'RG_BACK',           'identity_back', true),
    ('celcoin_file_type', 'RG',                'identity', true),
    ('celcoin_file_type', 'CNH_FRONT',         'cnh', true),
    ('celcoin_file_type', 'CNH',               'cnh', true),
    ('celcoin_file_type', 'CNH_BACK',          'cnh_back', true),
    ('celcoin_file_type', 'SELFIE',            'selfie', true),
    ('celcoin_file_type', 'CPF',               'cpf', true),
    ('celcoin_file_type', 'CNPJ',              'cnpj', true),
    ('celcoin_file_type', 'PROOF_OF_ADDRESS',  'proof_of_address', true),
    ('celcoin_file_type', 'CONTRACT',          'contract', true),
    ('celcoin_file_type', 'SOCIAL_CONTRACT',   'contract', true),
    ('celcoin_file_type', 'POWER_OF_ATTORNEY', 'power_of_attorney', true),
    ('celcoin_file_type', 'ELECTION_MINUTES',  'election_minutes', true),
    ('celcoin_file_type', 'KYC_REPORT',        'kyc_report', true),
    ('celcoin_file_type', 'FILE',              'other', true),
    ('celcoin_file_type', '*',                 'other', true);

-- a Celcoin check starts its proposal's analysis only from created or pending
INSERT INTO onboarding.status_guard (provider, event_type, entity, status, from_status, shipped) VALUES
    ('celcoin', 'onboarding-backgroundcheck', 'proposal', 'in_analysis', '{created,pending}', true),
    ('celcoin', 'onboarding-documentscopy',   'proposal', 'in_analysis', '{created,pending}', true);

INSERT INTO onboarding.settled_status (entity, provider, status, shipped) VALUES
    ('account',  NULL, 'created', true),
    ('account',  NULL, 'limited', true),
    ('account',  NULL, 'active', true),
    ('account',  NULL, 'blocked', true),
    ('account',  NULL, 'closing', true),
    ('account',  NULL, 'failed', true),
    ('document', NULL, 'validated', true),
    ('closure',  NULL, 'disapproved', true),
    ('proposal', NULL, 'account_error', true),
    ('proposal', 'fitbank', 'approved', true),
    ('proposal', 'fitbank', 'rejected', true),
    ('proposal', 'fitbank', 'expired', true);

-- a Celcoin file (key <proposalId>:<type>) waits while its proposal is analysed
INSERT INTO onboarding.settled_by_proposal (entity, provider, key_separator, proposal_waiting, shipped) VALUES
    ('document', 'celcoin', ':', '{created,pending,in_analysis,pending_data}', true);

-- (end of providers as data)

-- ---------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------

CREATE FUNCTION onboarding.ingest(payload jsonb,
                                  provider onboarding.provider DEFAULT NULL,
                                  headers jsonb DEFAULT NULL)
    RETURNS onboarding.inbox
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    INSERT INTO onboarding.inbox (payload, provider, headers)
    VALUES (ingest.payload, ingest.provider, ingest.headers)
    RETURNING *
    $$;
COMMENT ON FUNCTION onboarding.ingest(jsonb, onboarding.provider, jsonb) IS
    'store a delivery whose body is valid JSON and return it, outcome included';

CREATE FUNCTION onboarding.ingest_text(body text,
                                       provider onboarding.provider DEFAULT NULL,
                                       headers jsonb DEFAULT NULL)
    RETURNS onboarding.inbox
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    INSERT INTO onboarding.inbox (raw, provider, headers)
    VALUES (ingest_text.body, ingest_text.provider, ingest_text.headers)
    RETURNING *
    $$;
COMMENT ON FUNCTION onboarding.ingest_text(text, onboarding.provider, jsonb) IS
    'store a delivery exactly as received (it may not be valid JSON) and return it';
REVOKE ALL ON FUNCTION onboarding.ingest(jsonb, onboarding.provider, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION onboarding.ingest_text(text, onboarding.provider, jsonb) FROM PUBLIC;

CREATE FUNCTION onboarding.explain(payload jsonb, provider onboarding.provider DEFAULT NULL)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'onboarding_explain'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION onboarding.explain(jsonb, onboarding.provider) IS
    'dry run: what the delivery is, what it would do to state now, and which rule gave each value it read (rules); writes nothing';
REVOKE ALL ON FUNCTION onboarding.explain(jsonb, onboarding.provider) FROM PUBLIC;

CREATE FUNCTION onboarding.force_status_record(entity text, provider onboarding.provider,
                                               key text, status text, reason text)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'onboarding_force_status'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION onboarding.force_status_record(text, onboarding.provider, text, text, text) FROM PUBLIC;

CREATE FUNCTION onboarding.force_status(entity text, provider onboarding.provider,
                                        key text, status text, reason text)
    RETURNS onboarding.inbox
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    recorded bigint;
    result onboarding.inbox;
BEGIN
    recorded := onboarding.force_status_record(entity, provider, key, status, reason);
    SELECT * INTO result FROM onboarding.inbox i WHERE i.id = recorded;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION onboarding.force_status(text, onboarding.provider, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.force_status(text, onboarding.provider, text, text, text) IS
    'audited override of a state: recorded in the inbox, applied past the transition graph';

CREATE FUNCTION onboarding.rebuild(provider onboarding.provider DEFAULT NULL,
                                   entity text DEFAULT NULL,
                                   subject text DEFAULT NULL,
                                   since timestamptz DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'onboarding_rebuild'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION onboarding.rebuild(onboarding.provider, text, text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.rebuild(onboarding.provider, text, text, timestamptz) IS
    'derive again, in one transaction that holds deliveries off, what the deliveries derive: every one (no argument) or the groups of a scope (a provider, an entity, a subject, deliveries received since a time); rewrites the state and history rows that change, deletes those no delivery derives (a delivery stored with no provider gets the one the rules now recognise); returns how many deliveries it read';

CREATE PROCEDURE onboarding.rebuild_concurrently(provider onboarding.provider DEFAULT NULL,
                                                 entity text DEFAULT NULL,
                                                 subject text DEFAULT NULL,
                                                 since timestamptz DEFAULT NULL)
    AS 'MODULE_PATHNAME', 'onboarding_rebuild_concurrently'
    LANGUAGE C;
REVOKE ALL ON PROCEDURE onboarding.rebuild_concurrently(onboarding.provider, text, text, timestamptz) FROM PUBLIC;
COMMENT ON PROCEDURE onboarding.rebuild_concurrently(onboarding.provider, text, text, timestamptz) IS
    'rebuild() of the same scope without an outage: one transaction per group and no table lock, so a delivery waits for one group at most; CALL it outside a transaction block; its progress is committed to onboarding.rebuild_progress as it goes';

CREATE TABLE onboarding.rebuild_progress (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pid               integer NOT NULL,
    concurrent        boolean NOT NULL,
    scope             jsonb NOT NULL,
    phase             text NOT NULL,
    started_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    groups_total      bigint NOT NULL DEFAULT 0,
    groups_done       bigint NOT NULL DEFAULT 0,
    deliveries        bigint NOT NULL DEFAULT 0,
    rows_deleted      bigint NOT NULL DEFAULT 0,
    groups_per_second double precision,
    estimated_end     timestamptz
);
COMMENT ON TABLE onboarding.rebuild_progress IS
    'one row per rebuild: its scope, phase and counts, rate and estimated end; rebuild_concurrently() commits it every few seconds, rebuild() once it is done; finished_at NULL and a pid no longer running: a run that stopped';
COMMENT ON SEQUENCE onboarding.rebuild_progress_id_seq IS 'identity of onboarding.rebuild_progress.id';

-- The counts behind onboarding.daily (0.3.0), kept by the pipeline as it
-- stores deliveries and rewrites their outcomes (src/tally.c): deliveries
-- per UTC day of arrival, provider ('' for none) and outcome, in rows of
-- each backend's own (slot: its backend number; -1 for counts compacted or
-- carried over by ALTER EXTENSION UPDATE), so that two transactions
-- delivering at once never wait on a count.  The view sums the slots.
CREATE TABLE onboarding.daily_tally (
    day       date NOT NULL,
    provider  text NOT NULL,
    outcome   onboarding.outcome NOT NULL,
    slot      integer NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (day, provider, outcome, slot)
);
COMMENT ON TABLE onboarding.daily_tally IS
    'deliveries per UTC day of arrival, provider ('''' for none) and outcome, kept as deliveries are stored and their outcomes rewritten, in rows of each backend''s own (slot); onboarding.daily sums them, verify() checks them against the inbox';

CREATE FUNCTION onboarding.compact_daily_tally() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    merged bigint;
BEGIN
    -- one compaction at a time; rows a delivering transaction holds are
    -- left for the next one, so that it never waits on a delivery (nor a
    -- delivery on it for longer than its own commit)
    LOCK TABLE onboarding.daily_tally IN SHARE UPDATE EXCLUSIVE MODE;
    WITH gone AS (
        DELETE FROM onboarding.daily_tally t
         WHERE t.ctid = ANY (ARRAY(SELECT l.ctid FROM onboarding.daily_tally l
                                    WHERE l.slot OPERATOR(pg_catalog.<>) -1
                                      FOR UPDATE SKIP LOCKED))
        RETURNING t.day, t.provider, t.outcome, t.n
    ), merged AS (
        INSERT INTO onboarding.daily_tally AS t (day, provider, outcome, slot, n)
        SELECT g.day, g.provider, g.outcome, -1, pg_catalog.sum(g.n)
          FROM gone g
         GROUP BY g.day, g.provider, g.outcome
        ON CONFLICT (day, provider, outcome, slot)
        DO UPDATE SET n = t.n OPERATOR(pg_catalog.+) excluded.n
        RETURNING 1
    )
    SELECT pg_catalog.count(*) INTO merged FROM gone;
    DELETE FROM onboarding.daily_tally WHERE n OPERATOR(pg_catalog.=) 0
       AND slot OPERATOR(pg_catalog.=) -1;
    RETURN merged;
END
$$;
REVOKE ALL ON FUNCTION onboarding.compact_daily_tally() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.compact_daily_tally() IS
    'merge the per-backend rows of onboarding.daily_tally into one per day, provider and outcome (slot -1); returns the rows merged; run it now and then (nightly) so that daily reads few rows';

-- The counts behind onboarding.funnel (0.3.0): entities per provider,
-- entity and status (a proposal's checks are entities of their own), kept
-- as state rows are written (src/tally.c): the pipeline counts its own
-- writes; a user's INSERT, UPDATE, DELETE, COPY or TRUNCATE of a state
-- table is counted by the statement triggers below, from their transition
-- tables.  Rows of each backend's own (slot, as daily_tally's; -1 for
-- counts compacted or carried over by ALTER EXTENSION UPDATE).  Not
-- dumped: a restore's COPY into the state tables counts them again.
CREATE TABLE onboarding.status_tally (
    provider  text NOT NULL,
    entity    text NOT NULL,
    status    text NOT NULL,
    slot      integer NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (provider, entity, status, slot)
);
COMMENT ON TABLE onboarding.status_tally IS
    'entities per provider, entity and status, kept as state rows are written, in rows of each backend''s own (slot); onboarding.funnel sums them, verify() checks them against the state tables';

CREATE FUNCTION onboarding.compact_status_tally() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    merged bigint;
BEGIN
    -- as compact_daily_tally(): rows a writing transaction holds are left
    -- for the next compaction
    LOCK TABLE onboarding.status_tally IN SHARE UPDATE EXCLUSIVE MODE;
    WITH gone AS (
        DELETE FROM onboarding.status_tally t
         WHERE t.ctid = ANY (ARRAY(SELECT l.ctid FROM onboarding.status_tally l
                                    WHERE l.slot OPERATOR(pg_catalog.<>) -1
                                      FOR UPDATE SKIP LOCKED))
        RETURNING t.provider, t.entity, t.status, t.n
    ), merged AS (
        INSERT INTO onboarding.status_tally AS t (provider, entity, status, slot, n)
        SELECT g.provider, g.entity, g.status, -1, pg_catalog.sum(g.n)
          FROM gone g
         GROUP BY g.provider, g.entity, g.status
        ON CONFLICT (provider, entity, status, slot)
        DO UPDATE SET n = t.n OPERATOR(pg_catalog.+) excluded.n
        RETURNING 1
    )
    SELECT pg_catalog.count(*) INTO merged FROM gone;
    DELETE FROM onboarding.status_tally WHERE n OPERATOR(pg_catalog.=) 0
       AND slot OPERATOR(pg_catalog.=) -1;
    RETURN merged;
END
$$;
REVOKE ALL ON FUNCTION onboarding.compact_status_tally() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.compact_status_tally() IS
    'merge the per-backend rows of onboarding.status_tally into one per provider, entity and status (slot -1); returns the rows merged; run it now and then (nightly) so that funnel reads few rows';

CREATE FUNCTION onboarding.recount_status_tally() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    counted bigint;
BEGIN
    -- no state row changes meanwhile (a writer's counts are written before
    -- it commits, so every count of a committed change is in the table):
    -- deliveries wait for the recount's commit
    LOCK TABLE onboarding.account, onboarding.proposal, onboarding.document,
               onboarding.closure IN SHARE MODE;
    LOCK TABLE onboarding.status_tally IN EXCLUSIVE MODE;
    DELETE FROM onboarding.status_tally;
    INSERT INTO onboarding.status_tally (provider, entity, status, slot, n)
    SELECT e.provider::text, e.entity, e.status, -1, pg_catalog.count(*)
      FROM onboarding.entity_status e
     GROUP BY e.provider, e.entity, e.status;
    GET DIAGNOSTICS counted = ROW_COUNT;
    -- and the entities on their way and the refused ones, kept from the
    -- same rows (0.3.0)
    PERFORM onboarding.recount_open_entity();
    LOCK TABLE onboarding.refused_entity IN EXCLUSIVE MODE;
    DELETE FROM onboarding.refused_entity;
    INSERT INTO onboarding.refused_entity (entity, provider, entity_key, reason, last_event_at)
    SELECT r.entity, r.provider, r.entity_key, r.reason, r.last_event_at
      FROM onboarding.refused_rows() r;
    -- and stage_durations' spans, kept from history (0.3.0)
    PERFORM onboarding.recount_stage_span();
    RETURN counted;
END
$$;
REVOKE ALL ON FUNCTION onboarding.recount_status_tally() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.recount_status_tally() IS
    'count onboarding.status_tally again from the state tables, and compute onboarding.open_entity and onboarding.refused_entity again (after rows were written behind their triggers'' back: session_replication_role = replica, disabled triggers); deliveries wait meanwhile; returns the rows of status_tally written';

CREATE FUNCTION onboarding.state_counted() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_state_counted' LANGUAGE C;
COMMENT ON FUNCTION onboarding.state_counted() IS
    'AFTER INSERT, UPDATE, DELETE trigger of the state tables: counts the rows a user''s statement removed and added in onboarding.status_tally (the pipeline counts its own writes)';
CREATE FUNCTION onboarding.state_truncated() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_state_truncated' LANGUAGE C;
COMMENT ON FUNCTION onboarding.state_truncated() IS
    'AFTER TRUNCATE trigger of the state tables: the truncated table''s entities leave onboarding.status_tally';
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['account', 'proposal', 'document', 'closure'] LOOP
        EXECUTE format('CREATE TRIGGER %1$s_counted_insert AFTER INSERT ON onboarding.%1$I'
                       ' REFERENCING NEW TABLE AS added'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION onboarding.state_counted(%1$L)', t);
        EXECUTE format('CREATE TRIGGER %1$s_counted_update AFTER UPDATE ON onboarding.%1$I'
                       ' REFERENCING OLD TABLE AS removed NEW TABLE AS added'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION onboarding.state_counted(%1$L)', t);
        EXECUTE format('CREATE TRIGGER %1$s_counted_delete AFTER DELETE ON onboarding.%1$I'
                       ' REFERENCING OLD TABLE AS removed'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION onboarding.state_counted(%1$L)', t);
        EXECUTE format('CREATE TRIGGER %1$s_counted_truncate AFTER TRUNCATE ON onboarding.%1$I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION onboarding.state_truncated(%1$L)', t);
    END LOOP;
END
$$;

-- Is row-level security on for a state table?  onboarding.funnel then
-- counts the rows the caller may see instead of reading the kept counts,
-- which count every row.
CREATE FUNCTION onboarding.state_row_security() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT EXISTS (SELECT FROM pg_catalog.pg_class c
                    WHERE c.oid IN ('onboarding.account'::regclass, 'onboarding.proposal'::regclass,
                                    'onboarding.document'::regclass, 'onboarding.closure'::regclass)
                      AND c.relrowsecurity)
    $$;
COMMENT ON FUNCTION onboarding.state_row_security() IS
    'is row-level security enabled on a state table? (then funnel counts the rows the caller may see, not onboarding.status_tally)';

CREATE TABLE onboarding.erasure (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    erased_by      text NOT NULL,
    reason         text NOT NULL,
    deliveries     bigint NOT NULL DEFAULT 0,
    values_erased  bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE onboarding.erasure IS
    'one row per erase(): when, by whom, why, how many deliveries and values; never the tax id (its tombstone in the erased bodies is erased-<id>)';
COMMENT ON SEQUENCE onboarding.erasure_id_seq IS 'identity of onboarding.erasure.id';

CREATE FUNCTION onboarding.erase(tax_id onboarding.taxid, reason text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'onboarding_erase'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION onboarding.erase(onboarding.taxid, text) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.erase(onboarding.taxid, text) IS
    'LGPD art. 18: erase a person''s personal data (tax id, names, e-mails, phones, file names, URLs) from their stored deliveries and the rows they derive, keeping outcomes, statuses and times; the tax id becomes erased-<id>; returns the id of its onboarding.erasure row';

CREATE FUNCTION onboarding.replay_lock() RETURNS void
    AS 'MODULE_PATHNAME', 'onboarding_replay_lock'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION onboarding.replay_lock() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.replay_lock() IS
    'the locks rebuild() takes (inbox EXCLUSIVE, state ACCESS EXCLUSIVE), all or none';

CREATE FUNCTION onboarding.set_timezone(zone text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF zone IS NULL OR NOT onboarding.is_timezone(zone) THEN
        RAISE EXCEPTION 'invalid time zone "%"', zone
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'onboarding.settings.timezone takes what PostgreSQL''s TimeZone takes: a name of pg_timezone_names, a POSIX zone, or hours east of UTC such as -03.',
                  HINT = 'For Brazil''s official time use America/Sao_Paulo.';
    END IF;
    PERFORM onboarding.replay_lock();
    INSERT INTO onboarding.settings (timezone) VALUES (zone)
        ON CONFLICT (only_row) DO UPDATE SET timezone = excluded.timezone;
    RETURN onboarding.rebuild();
END
$$;
REVOKE ALL ON FUNCTION onboarding.set_timezone(text) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.set_timezone(text) IS
    'set the zone naive provider times are read in, for the whole database, and re-derive every delivery with it';

-- Every derived row, keyed, as jsonb: what verify() compares.
CREATE FUNCTION onboarding.derived_rows()
    RETURNS TABLE (kind text, key text, row_data jsonb)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT 'account', a.provider || '/' || a.account_key, to_jsonb(a) FROM onboarding.account a
    UNION ALL
    SELECT 'proposal', p.provider || '/' || p.proposal_key, to_jsonb(p) FROM onboarding.proposal p
    UNION ALL
    SELECT 'document', d.provider || '/' || d.document_key, to_jsonb(d) FROM onboarding.document d
    UNION ALL
    SELECT 'closure', c.provider || '/' || c.account_key, to_jsonb(c) FROM onboarding.closure c
    UNION ALL
    SELECT 'history', h.provider || '/' || h.entity || '/' || h.entity_key || '/' || h.inbox_id
                      || '/' || h.to_status,
           to_jsonb(h) - 'id'
      FROM onboarding.history h
    UNION ALL
    SELECT 'inbox', i.id::text,
           jsonb_build_object('event_type', i.event_type, 'subject', i.subject,
                              'status_raw', i.status_raw, 'event_at', i.event_at,
                              'outcome', i.outcome, 'detail', i.detail,
                              'duplicate_of', i.duplicate_of, 'body_hash', i.body_hash)
      FROM onboarding.inbox i
    $$;
REVOKE ALL ON FUNCTION onboarding.derived_rows() FROM PUBLIC;

CREATE FUNCTION onboarding.verify()
    RETURNS TABLE (kind text, key text, live jsonb, rebuilt jsonb)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning
    AS $$
DECLARE
    differences jsonb;
BEGIN
    -- no delivery may arrive between the two snapshots; locks taken all or
    -- none, so that verify() never deadlocks with a delivering transaction
    PERFORM onboarding.replay_lock();
    DROP TABLE IF EXISTS pg_temp.onboarding_verify_live;
    CREATE TEMP TABLE onboarding_verify_live AS SELECT * FROM onboarding.derived_rows();
    -- rebuild inside a block whose changes are rolled back; plpgsql
    -- variables survive the rollback, so the differences come out
    BEGIN
        PERFORM onboarding.rebuild();
        SELECT jsonb_agg(jsonb_build_array(coalesce(l.kind, r.kind), coalesce(l.key, r.key),
                                           l.row_data, r.row_data)) INTO differences
          FROM pg_temp.onboarding_verify_live l
          FULL JOIN onboarding.derived_rows() r ON l.kind = r.kind AND l.key = r.key
         WHERE l.row_data IS DISTINCT FROM r.row_data;
        RAISE EXCEPTION USING ERRCODE = 'OB000', MESSAGE = 'roll back the verification rebuild';
    EXCEPTION WHEN SQLSTATE 'OB000' THEN
        NULL;
    END;
    DROP TABLE pg_temp.onboarding_verify_live;
    -- onboarding.daily's counts (0.3.0) against the deliveries they count
    SELECT coalesce(differences, '[]') || coalesce(jsonb_agg(jsonb_build_array('daily_tally',
               concat_ws('/', coalesce(t.day, c.day), coalesce(t.provider, c.provider),
                         coalesce(t.outcome, c.outcome)), to_jsonb(t.n), to_jsonb(c.n))), '[]')
      INTO differences
      FROM (SELECT day, provider, outcome::text AS outcome, sum(n) AS n
              FROM onboarding.daily_tally GROUP BY 1, 2, 3 HAVING sum(n) <> 0) t
      FULL JOIN (SELECT day, provider, outcome, sum(n) AS n FROM (
                 SELECT (received_at AT TIME ZONE 'UTC')::date AS day,
                        coalesce(provider::text, '') AS provider, outcome::text AS outcome,
                        count(*)::numeric AS n
                   FROM onboarding.inbox GROUP BY 1, 2, 3
                  UNION ALL   -- the deliveries of the archived partitions, counted when archived
                  SELECT (a.day)::date, a.provider, a.outcome, sum(a.n)
                    FROM onboarding.archived_partition p,
                         jsonb_to_recordset(p.tally) AS a(day text, provider text, outcome text, n numeric)
                   GROUP BY 1, 2, 3) u GROUP BY 1, 2, 3) c
        ON t.day = c.day AND t.provider = c.provider AND t.outcome = c.outcome
     WHERE t.n IS DISTINCT FROM c.n;
    -- onboarding.funnel's counts (0.3.0) against the state rows they count
    SELECT differences || coalesce(jsonb_agg(jsonb_build_array('status_tally',
               concat_ws('/', coalesce(t.provider, c.provider), coalesce(t.entity, c.entity),
                         coalesce(t.status, c.status)), to_jsonb(t.n), to_jsonb(c.n))), '[]')
      INTO differences
      FROM (SELECT provider, entity, status, sum(n) AS n
              FROM onboarding.status_tally GROUP BY 1, 2, 3 HAVING sum(n) <> 0) t
      FULL JOIN (SELECT provider::text AS provider, entity, status, count(*)::numeric AS n
                   FROM onboarding.entity_status GROUP BY 1, 2, 3) c
        ON t.provider = c.provider AND t.entity = c.entity AND t.status = c.status
     WHERE t.n IS DISTINCT FROM c.n;
    -- in_progress_entities' and pending_documents' kept set (0.3.0)
    SELECT differences || coalesce(jsonb_agg(jsonb_build_array('open_entity',
               concat_ws('/', coalesce(k.provider, x.provider), coalesce(k.entity, x.entity),
                         coalesce(k.entity_key, x.entity_key)),
               CASE WHEN k.entity IS NOT NULL
                    THEN jsonb_build_object('parent_key', k.parent_key, 'orphan', k.orphan) END,
               CASE WHEN x.entity IS NOT NULL
                    THEN jsonb_build_object('parent_key', x.parent_key, 'orphan', x.orphan) END)), '[]')
      INTO differences
      FROM (SELECT entity, provider::text AS provider, entity_key, parent_key, orphan
              FROM onboarding.open_entity) k
      FULL JOIN (SELECT entity, provider::text AS provider, entity_key, parent_key, orphan
                   FROM onboarding.open_entity_expected()) x
        ON k.entity = x.entity AND k.provider = x.provider AND k.entity_key = x.entity_key
     WHERE k.entity IS NULL OR x.entity IS NULL OR k.parent_key IS DISTINCT FROM x.parent_key
        OR (x.orphan AND NOT k.orphan);   -- (an orphan whose proposal came since: the reports check)
    -- rejection_reasons' kept rows (0.3.0)
    SELECT differences || coalesce(jsonb_agg(jsonb_build_array('refused_entity',
               concat_ws('/', coalesce(k.provider, x.provider), coalesce(k.entity, x.entity),
                         coalesce(k.entity_key, x.entity_key)),
               CASE WHEN k.entity IS NOT NULL
                    THEN jsonb_build_object('reason', k.reason, 'last_event_at', k.last_event_at) END,
               CASE WHEN x.entity IS NOT NULL
                    THEN jsonb_build_object('reason', x.reason, 'last_event_at', x.last_event_at) END)),
               '[]')
      INTO differences
      FROM (SELECT entity, provider::text AS provider, entity_key, reason, last_event_at
              FROM onboarding.refused_entity) k
      FULL JOIN (SELECT entity, provider::text AS provider, entity_key, reason, last_event_at
                   FROM onboarding.refused_rows()) x
        ON k.entity = x.entity AND k.provider = x.provider AND k.entity_key = x.entity_key
     WHERE k.entity IS NULL OR x.entity IS NULL OR k.reason IS DISTINCT FROM x.reason
        OR k.last_event_at IS DISTINCT FROM x.last_event_at;
    -- stage_durations' kept spans and their counts (0.3.0)
    SELECT differences || coalesce(jsonb_agg(jsonb_build_array('stage_span',
               coalesce(k.owner_id, x.owner_id)::text,
               CASE WHEN k.owner_id IS NOT NULL
                    THEN jsonb_build_object('status', k.status, 'bucket', k.bucket, 'spent', k.spent) END,
               CASE WHEN x.owner_id IS NOT NULL
                    THEN jsonb_build_object('status', x.status, 'bucket', onboarding.span_bucket(x.spent),
                                            'spent', x.spent) END)), '[]')
      INTO differences
      FROM onboarding.stage_span k
      FULL JOIN onboarding.stage_spans() x ON k.owner_id = x.owner_id
     WHERE k.owner_id IS NULL OR x.owner_id IS NULL OR k.provider <> x.provider
        OR k.entity <> x.entity OR k.status <> x.status OR k.spent::text <> x.spent::text
        OR k.bucket <> onboarding.span_bucket(x.spent);
    SELECT differences || coalesce(jsonb_agg(jsonb_build_array('stage_tally',
               concat_ws('/', coalesce(t.provider, c.provider), coalesce(t.entity, c.entity),
                         coalesce(t.status, c.status), coalesce(t.bucket, c.bucket)),
               to_jsonb(t.n), to_jsonb(c.n))), '[]')
      INTO differences
      FROM (SELECT provider, entity, status, bucket, sum(n) AS n
              FROM onboarding.stage_tally GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0) t
      FULL JOIN (SELECT provider::text AS provider, entity, status, bucket, count(*)::numeric AS n
                   FROM onboarding.stage_span GROUP BY 1, 2, 3, 4) c
        ON t.provider = c.provider AND t.entity = c.entity AND t.status = c.status
       AND t.bucket = c.bucket
     WHERE t.n IS DISTINCT FROM c.n;
    -- every group of the stored deliveries has a row of
    -- onboarding.group_partition for each partition that holds some (0.3.0;
    -- where the inbox is routed by time: the probes read no other), but the
    -- default partition (always read)
    SELECT differences || coalesce(jsonb_agg(jsonb_build_array('group_partition',
               concat_ws('/', i.provider, i.subject), NULL, to_jsonb(i.part::text))), '[]')
      INTO differences
      FROM (SELECT provider, subject, tableoid::regclass AS part, min(received_at) AS first_at
              FROM onboarding.inbox
             WHERE provider IS NOT NULL AND subject IS NOT NULL
             GROUP BY 1, 2, 3) i
     WHERE onboarding.inbox_partition_of(i.first_at) = i.part
       AND i.part <> ALL (SELECT t.partdefid FROM pg_catalog.pg_partitioned_table t
                           WHERE t.partrelid = 'onboarding.inbox'::regclass)
       AND NOT EXISTS (SELECT FROM onboarding.group_partition g
                        WHERE g.provider = i.provider AND g.subject = i.subject
                          AND onboarding.inbox_partition_of(g.received_at) = i.part);
    RETURN QUERY
    SELECT e ->> 0, e ->> 1, e -> 2, e -> 3
      FROM jsonb_array_elements(coalesce(differences, '[]')) e
     ORDER BY 1, 2;
END
$$;
REVOKE ALL ON FUNCTION onboarding.verify() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.verify() IS
    'rows where live state differs from a rebuild (rolled back); no rows means consistent';

CREATE FUNCTION onboarding.transition_graph(entity text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    graphs constant text[] := ARRAY['account', 'proposal', 'check', 'document', 'closure'];
    g text;
    dot text := '';
    lines text;
BEGIN
    IF entity IS NOT NULL AND NOT entity = ANY (graphs) THEN
        RAISE EXCEPTION 'unknown entity "%"', entity
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use account, proposal, check, document or closure.';
    END IF;
    FOREACH g IN ARRAY graphs LOOP
        CONTINUE WHEN entity IS NOT NULL AND g <> entity;
        WITH labels AS (
            SELECT l.label, l.ord
              FROM unnest(CASE g
                    WHEN 'account' THEN enum_range(NULL::onboarding.account_status)::text[]
                    WHEN 'proposal' THEN enum_range(NULL::onboarding.proposal_status)::text[]
                    WHEN 'check' THEN enum_range(NULL::onboarding.check_status)::text[]
                    WHEN 'document' THEN enum_range(NULL::onboarding.document_status)::text[]
                    WHEN 'closure' THEN enum_range(NULL::onboarding.closure_status)::text[]
                   END) WITH ORDINALITY AS l (label, ord)
        ), edges AS (
            SELECT t.from_status, t.to_status, fl.ord AS from_ord, tl.ord AS to_ord,
                   string_agg(t.provider::text, ', ' ORDER BY t.provider) AS providers,
                   bool_or(t.provider IS NULL) AS everyone
              FROM onboarding.transition t
              JOIN labels fl ON fl.label = t.from_status
              JOIN labels tl ON tl.label = t.to_status
             WHERE t.entity = g
             GROUP BY 1, 2, 3, 4
        )
        SELECT string_agg(line, E'\n' ORDER BY sort1, sort2, sort3) INTO lines
          FROM (
            SELECT 0 AS sort1, l.ord AS sort2, 0 AS sort3,
                   format('        %I [label=%I%s];', g || '.' || l.label, l.label,
                          CASE WHEN NOT EXISTS (SELECT 1 FROM edges e WHERE e.from_status = l.label)
                               THEN ', peripheries=2' ELSE '' END) AS line
              FROM labels l
            UNION ALL
            SELECT 1, e.from_ord, e.to_ord,
                   format('        %I -> %I%s;', g || '.' || e.from_status, g || '.' || e.to_status,
                          CASE WHEN e.everyone THEN ''
                               ELSE format(' [label=%I, style=dashed]', e.providers) END)
              FROM edges e
          ) x;
        dot := dot || format(E'    subgraph %I {\n        label=%I;\n%s\n    }\n',
                             'cluster_' || g, g, lines);
    END LOOP;
    RETURN format(E'digraph %I {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n%s}\n',
                  coalesce(entity, 'onboarding'), dot);
END
$$;
COMMENT ON FUNCTION onboarding.transition_graph(text) IS
    'the transition graphs as Graphviz DOT (one entity, or all); final states drawn doubled';

-- ---------------------------------------------------------------------------
-- Reporting (SPEC §8).  The views run with the rights of whoever queries
-- them (security_invoker, 0.3.0), so row-level security on a state table
-- holds in reports too.  Every name is schema-qualified and every operator
-- in the text body of an inlinable SQL function is written
-- OPERATOR(pg_catalog.…), so the views and those functions mean the same
-- whatever the caller's search_path.  timeline() compares tax ids with the
-- operator of the extension taxid, whose schema this script cannot name: its
-- body is SQL-standard (BEGIN ATOMIC), resolved once, here.
-- ---------------------------------------------------------------------------

-- Every status column of every entity, one row per entity (checks included)
CREATE VIEW onboarding.entity_status WITH (security_invoker = true) AS
SELECT provider, 'account'::text AS entity, account_key AS entity_key, status::text AS status,
       tax_id, last_event_at, last_inbox_id
  FROM onboarding.account
UNION ALL
SELECT provider, 'proposal', proposal_key, status::text, tax_id, last_event_at, last_inbox_id
  FROM onboarding.proposal WHERE status IS NOT NULL
UNION ALL
SELECT provider, 'background_check', proposal_key, background_check::text, tax_id, last_event_at, last_inbox_id
  FROM onboarding.proposal WHERE background_check IS NOT NULL
UNION ALL
SELECT provider, 'documentscopy', proposal_key, documentscopy::text, tax_id, last_event_at, last_inbox_id
  FROM onboarding.proposal WHERE documentscopy IS NOT NULL
UNION ALL
SELECT provider, 'document', document_key, status::text, tax_id, last_event_at, last_inbox_id
  FROM onboarding.document
UNION ALL
SELECT provider, 'closure', account_key, status::text, NULL::onboarding.taxid, last_event_at, last_inbox_id
  FROM onboarding.closure;
COMMENT ON VIEW onboarding.entity_status IS
    'every entity (checks as entities of their own) with its current status';

-- What funnel counts while row-level security is on for a state table: the
-- rows the caller may see (a function, run as the caller, so that the
-- planner's estimate of a branch that is not taken stays small: a view
-- over every state row would have JIT compile the whole plan each time)
CREATE FUNCTION onboarding.funnel_counted()
    RETURNS TABLE (provider onboarding.provider, entity text, status text, how_many bigint)
    LANGUAGE sql STABLE ROWS 40
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT e.provider, e.entity, e.status, pg_catalog.count(*)
      FROM onboarding.entity_status e
     GROUP BY e.provider, e.entity, e.status
    $$;
COMMENT ON FUNCTION onboarding.funnel_counted() IS
    'funnel''s counts from the state rows the caller may see (what funnel reads while row-level security is on for a state table)';

CREATE VIEW onboarding.funnel WITH (security_invoker = true) AS
SELECT provider, entity, status, how_many,
       round(how_many * 100.0 / sum(how_many) OVER (PARTITION BY provider, entity), 1) AS share
  FROM (SELECT t.provider::onboarding.provider AS provider, t.entity, t.status,
               sum(t.n)::bigint AS how_many
          FROM onboarding.status_tally t
         WHERE NOT onboarding.state_row_security()
         GROUP BY t.provider, t.entity, t.status
        HAVING sum(t.n) <> 0
        UNION ALL
        SELECT f.provider, f.entity, f.status, f.how_many
          FROM onboarding.funnel_counted() f
         WHERE onboarding.state_row_security()) c;
COMMENT ON VIEW onboarding.funnel IS
    'how many entities are in each status, and their share (percent) of the provider''s entities (from onboarding.status_tally; counted from the state tables while row-level security is on for one of them)';

-- (refused, new in 0.3.0, is compared as text here and in
-- person_timeline, and anomalies names the outcomes it leaves out: the
-- upgrade adds the label and creates these views in one transaction,
-- where the new label cannot yet be read as a constant)
CREATE VIEW onboarding.daily WITH (security_invoker = true) AS
SELECT day, nullif(provider, '')::onboarding.provider AS provider,
       sum(n)::bigint AS deliveries,
       coalesce(sum(n) FILTER (WHERE outcome = 'applied'), 0)::bigint AS applied,
       coalesce(sum(n) FILTER (WHERE outcome = 'duplicate'), 0)::bigint AS duplicate,
       coalesce(sum(n) FILTER (WHERE outcome = 'stale'), 0)::bigint AS stale,
       coalesce(sum(n) FILTER (WHERE outcome = 'illegal_transition'), 0)::bigint AS illegal_transition,
       coalesce(sum(n) FILTER (WHERE outcome = 'unrecognized'), 0)::bigint AS unrecognized,
       coalesce(sum(n) FILTER (WHERE outcome = 'invalid'), 0)::bigint AS invalid,
       coalesce(sum(n) FILTER (WHERE outcome::text = 'refused'), 0)::bigint AS refused
  FROM onboarding.daily_tally
 GROUP BY day, provider
HAVING sum(n) <> 0;
COMMENT ON VIEW onboarding.daily IS 'deliveries per UTC day of arrival and provider, by outcome (from onboarding.daily_tally: a few rows a day, whatever the size of the inbox)';

-- ---------------------------------------------------------------------------
-- stage_durations from kept spans (0.3.0): how long each history row's
-- status lasted, written as history is (src/span.c), and the spans' counts
-- per bucket, so that the report reads a few index entries per percentile
-- instead of ordering all of history.
-- ---------------------------------------------------------------------------

-- The bucket of a time spent: 0 for none, else 45 per factor e of the
-- seconds (a bucket is 2.2% wide).  stage_span keeps it beside the time,
-- so that a rank's bucket, found from the counts, is a range of its index;
-- the pipeline computes it with the same C function.
CREATE FUNCTION onboarding.span_bucket(spent interval) RETURNS integer
    AS 'MODULE_PATHNAME', 'onboarding_span_bucket'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION onboarding.span_bucket(interval) IS
    'the bucket of a time spent in a status (0: none; else 1 + floor(45 ln(1 + seconds)), 2.2% wide), as onboarding.stage_span and onboarding.stage_tally keep it';

-- A span per history row that has one: the time from its event to the
-- next event of its entity (event_at, then id), spent in its to_status.
-- Written by the pipeline where history is written, and by history's
-- statement triggers (a user's statements, force_status()).  Not dumped:
-- a restore's COPY into history computes them again.
CREATE TABLE onboarding.stage_span (
    owner_id  bigint PRIMARY KEY,
    provider  onboarding.provider NOT NULL,
    entity    text COLLATE "C" NOT NULL,   -- (byte order: the index compares fast)
    status    text COLLATE "C" NOT NULL,
    bucket    integer NOT NULL,
    spent     interval NOT NULL
);
CREATE INDEX stage_span_rank_idx ON onboarding.stage_span (provider, entity, status, bucket, spent);
COMMENT ON TABLE onboarding.stage_span IS
    'how long each history row''s status lasted (until the next event of its entity), kept as history is written; what onboarding.stage_durations reads, checked by verify()';
COMMENT ON COLUMN onboarding.stage_span.owner_id IS 'the history row (onboarding.history.id) whose status it is';
COMMENT ON COLUMN onboarding.stage_span.bucket IS 'onboarding.span_bucket(spent)';
COMMENT ON INDEX onboarding.stage_span_rank_idx IS
    'the spans of a status in order: a percentile is an offset into one bucket';

-- The spans per provider, entity, status and bucket, in rows of each
-- backend's own (slot, as status_tally's; -1 for counts compacted or
-- written by a recount).  Not dumped, as stage_span.
CREATE TABLE onboarding.stage_tally (
    provider  text NOT NULL,
    entity    text NOT NULL,
    status    text NOT NULL,
    bucket    integer NOT NULL,
    slot      integer NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (provider, entity, status, bucket, slot)
);
COMMENT ON TABLE onboarding.stage_tally IS
    'spans of onboarding.stage_span per provider, entity, status and bucket, in rows of each backend''s own (slot); onboarding.stage_durations finds a percentile''s bucket from them';

CREATE FUNCTION onboarding.compact_stage_tally() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    merged bigint;
BEGIN
    -- as compact_status_tally()
    LOCK TABLE onboarding.stage_tally IN SHARE UPDATE EXCLUSIVE MODE;
    WITH gone AS (
        DELETE FROM onboarding.stage_tally t
         WHERE t.ctid = ANY (ARRAY(SELECT l.ctid FROM onboarding.stage_tally l
                                    WHERE l.slot OPERATOR(pg_catalog.<>) -1
                                      FOR UPDATE SKIP LOCKED))
        RETURNING t.provider, t.entity, t.status, t.bucket, t.n
    ), merged AS (
        INSERT INTO onboarding.stage_tally AS t (provider, entity, status, bucket, slot, n)
        SELECT g.provider, g.entity, g.status, g.bucket, -1, pg_catalog.sum(g.n)
          FROM gone g
         GROUP BY g.provider, g.entity, g.status, g.bucket
        ON CONFLICT (provider, entity, status, bucket, slot)
        DO UPDATE SET n = t.n OPERATOR(pg_catalog.+) excluded.n
        RETURNING 1
    )
    SELECT pg_catalog.count(*) INTO merged FROM gone;
    DELETE FROM onboarding.stage_tally WHERE n OPERATOR(pg_catalog.=) 0
       AND slot OPERATOR(pg_catalog.=) -1;
    RETURN merged;
END
$$;
REVOKE ALL ON FUNCTION onboarding.compact_stage_tally() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.compact_stage_tally() IS
    'merge the per-backend rows of onboarding.stage_tally into one per provider, entity, status and bucket (slot -1); returns the rows merged; run it now and then (nightly), as compact_status_tally()';

-- The spans as computed from history (what 0.2.0's stage_durations read):
-- what recount_stage_span() writes and verify() compares.  A change
-- without a time sits right after the latest event before it (ids are in
-- event order up to there).
CREATE FUNCTION onboarding.stage_spans()
    RETURNS TABLE (owner_id bigint, provider onboarding.provider, entity text, status text,
                   spent interval)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT s.id, s.provider, s.entity, s.to_status, s.spent
      FROM (SELECT h.id, h.provider, h.entity, h.to_status,
                   lead(h.event_at) OVER w OPERATOR(pg_catalog.-) h.event_at AS spent
              FROM (SELECT h.*,
                           coalesce(h.event_at, max(h.event_at) OVER (PARTITION BY h.provider, h.entity,
                                    h.entity_key ORDER BY h.id)) AS place
                      FROM onboarding.history h) h
            WINDOW w AS (PARTITION BY h.provider, h.entity, h.entity_key ORDER BY h.place, h.id)) s
     WHERE s.spent IS NOT NULL
    $$;
COMMENT ON FUNCTION onboarding.stage_spans() IS
    'every span of history computed from it (a pass over all of history): what onboarding.stage_span keeps, and what recount_stage_span() writes and verify() compares';

CREATE FUNCTION onboarding.recount_stage_span() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    counted bigint;
BEGIN
    -- no history row changes meanwhile: deliveries wait for the commit
    LOCK TABLE onboarding.history IN SHARE MODE;
    LOCK TABLE onboarding.stage_span, onboarding.stage_tally IN EXCLUSIVE MODE;
    DELETE FROM onboarding.stage_span;
    DELETE FROM onboarding.stage_tally;
    INSERT INTO onboarding.stage_span (owner_id, provider, entity, status, bucket, spent)
    SELECT s.owner_id, s.provider, s.entity, s.status, onboarding.span_bucket(s.spent), s.spent
      FROM onboarding.stage_spans() s;
    GET DIAGNOSTICS counted = ROW_COUNT;
    INSERT INTO onboarding.stage_tally (provider, entity, status, bucket, slot, n)
    SELECT s.provider::text, s.entity, s.status, s.bucket, -1, pg_catalog.count(*)
      FROM onboarding.stage_span s
     GROUP BY s.provider, s.entity, s.status, s.bucket;
    RETURN counted;
END
$$;
REVOKE ALL ON FUNCTION onboarding.recount_stage_span() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.recount_stage_span() IS
    'compute onboarding.stage_span and onboarding.stage_tally again from history (after history rows were written behind its triggers'' back: session_replication_role = replica, disabled triggers; recount_status_tally() calls it); deliveries wait meanwhile; returns the spans written';

CREATE FUNCTION onboarding.history_spanned() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_history_spanned' LANGUAGE C;
COMMENT ON FUNCTION onboarding.history_spanned() IS
    'AFTER INSERT, UPDATE, DELETE trigger of history: recomputes the spans (onboarding.stage_span) of the entities whose rows a statement removed or added (the pipeline gathers its own writes)';
CREATE FUNCTION onboarding.history_truncated() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_history_truncated' LANGUAGE C;
COMMENT ON FUNCTION onboarding.history_truncated() IS
    'AFTER TRUNCATE trigger of history: empties onboarding.stage_span and onboarding.stage_tally';
CREATE TRIGGER history_spanned_insert AFTER INSERT ON onboarding.history
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION onboarding.history_spanned();
CREATE TRIGGER history_spanned_update AFTER UPDATE ON onboarding.history
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION onboarding.history_spanned();
CREATE TRIGGER history_spanned_delete AFTER DELETE ON onboarding.history
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION onboarding.history_spanned();
CREATE TRIGGER history_spanned_truncate AFTER TRUNCATE ON onboarding.history
    FOR EACH STATEMENT EXECUTE FUNCTION onboarding.history_truncated();

-- A partition of history: the same triggers, for statements that name it
-- (statement triggers are not cloned onto partitions).  Run for
-- onboarding.history_default here, and by onboarding_guard_state_ddl for
-- every partition made or attached later.
CREATE FUNCTION onboarding.span_partition(part regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER history_spanned_insert AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS added '
                   'FOR EACH STATEMENT EXECUTE FUNCTION onboarding.history_spanned()', part);
    EXECUTE format('CREATE TRIGGER history_spanned_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS removed NEW TABLE AS added '
                   'FOR EACH STATEMENT EXECUTE FUNCTION onboarding.history_spanned()', part);
    EXECUTE format('CREATE TRIGGER history_spanned_delete AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS removed '
                   'FOR EACH STATEMENT EXECUTE FUNCTION onboarding.history_spanned()', part);
    EXECUTE format('CREATE TRIGGER history_spanned_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION onboarding.history_truncated()', part);
END
$$;
REVOKE ALL ON FUNCTION onboarding.span_partition(regclass) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.span_partition(regclass) IS
    'gives a partition of history the statement triggers that keep onboarding.stage_span (history_spanned_*), as history has them; run by onboarding_guard_state_ddl for every partition made or attached';
SELECT onboarding.span_partition('onboarding.history_default');

-- Is row-level security on for history?  stage_durations then computes
-- the spans of the rows the caller may see instead of reading the kept
-- ones, which are every row's.
CREATE FUNCTION onboarding.history_row_security() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT c.relrowsecurity FROM pg_catalog.pg_class c
     WHERE c.oid OPERATOR(pg_catalog.=) 'onboarding.history'::regclass
    $$;
COMMENT ON FUNCTION onboarding.history_row_security() IS
    'is row-level security enabled on history? (then stage_durations computes the spans of the rows the caller may see, not onboarding.stage_span)';

-- The report from the kept spans: per status, the ranks percentile_cont
-- reads (0-based: floor and ceil of p × (n - 1)), the bucket that holds
-- each (from the counts), and the value at that offset in the bucket
-- (from stage_span's index, read only when the bucket's first and last
-- values differ); interpolated as percentile_cont does (lo + (hi - lo) ×
-- fraction).
CREATE FUNCTION onboarding.stage_durations_kept()
    RETURNS TABLE (provider onboarding.provider, entity text, status text, n bigint,
                   p50 interval, p90 interval, max interval)
    LANGUAGE sql STABLE ROWS 40
    SET search_path = pg_catalog, pg_temp
    AS $$
    WITH g AS (
        SELECT t.provider::onboarding.provider AS provider, t.entity, t.status, t.bucket,
               sum(t.n) AS n
          FROM onboarding.stage_tally t
         GROUP BY t.provider, t.entity, t.status, t.bucket
        HAVING sum(t.n) OPERATOR(pg_catalog.<>) 0
    ), c AS (
        SELECT g.*, sum(g.n) OVER w OPERATOR(pg_catalog.-) g.n AS before,
               sum(g.n) OVER (PARTITION BY g.provider, g.entity, g.status) AS total
          FROM g
        WINDOW w AS (PARTITION BY g.provider, g.entity, g.status ORDER BY g.bucket)
    ), q AS (
        -- the ranks percentile_cont reads (0-based): floor and, unless the
        -- fraction is 0, ceil of p × (n - 1)
        SELECT DISTINCT c.provider, c.entity, c.status, c.total, p.pct,
               floor(p.pct OPERATOR(pg_catalog.*) (c.total OPERATOR(pg_catalog.-) 1)::float8) AS first_row,
               p.pct OPERATOR(pg_catalog.*) (c.total OPERATOR(pg_catalog.-) 1)::float8
                   OPERATOR(pg_catalog.-)
                   floor(p.pct OPERATOR(pg_catalog.*) (c.total OPERATOR(pg_catalog.-) 1)::float8) AS fraction
          FROM c CROSS JOIN (VALUES (0.5::float8), (0.9::float8)) p (pct)
    ), r AS (
        SELECT q.*, x.k, x.which
          FROM q CROSS JOIN LATERAL (VALUES (q.first_row, 1), (q.first_row OPERATOR(pg_catalog.+) 1, 2)) x (k, which)
         WHERE x.which OPERATOR(pg_catalog.=) 1 OR q.fraction OPERATOR(pg_catalog.<>) 0
    ), v AS (
        -- the value at each rank: in the bucket that holds it (from the
        -- counts), at its offset there (stage_span's index); a bucket whose
        -- first and last values are equal holds nothing else
        SELECT r.provider, r.entity, r.status, r.total, r.pct, r.fraction, r.which,
               CASE WHEN lo.spent OPERATOR(pg_catalog.=) hi.spent THEN lo.spent
                    ELSE (SELECT s.spent FROM onboarding.stage_span s
                           WHERE s.provider OPERATOR(pg_catalog.=) r.provider
                             AND s.entity OPERATOR(pg_catalog.=) r.entity
                             AND s.status OPERATOR(pg_catalog.=) r.status
                             AND s.bucket OPERATOR(pg_catalog.=) c.bucket
                           ORDER BY s.spent
                          OFFSET (r.k OPERATOR(pg_catalog.-) c.before::float8)::bigint LIMIT 1) END AS value
          FROM r
          JOIN c ON c.provider OPERATOR(pg_catalog.=) r.provider AND c.entity OPERATOR(pg_catalog.=) r.entity
                AND c.status OPERATOR(pg_catalog.=) r.status
                AND r.k OPERATOR(pg_catalog.>=) c.before::float8
                AND r.k OPERATOR(pg_catalog.<) (c.before OPERATOR(pg_catalog.+) c.n)::float8
         CROSS JOIN LATERAL (SELECT s.spent FROM onboarding.stage_span s
                              WHERE s.provider OPERATOR(pg_catalog.=) r.provider
                                AND s.entity OPERATOR(pg_catalog.=) r.entity
                                AND s.status OPERATOR(pg_catalog.=) r.status
                                AND s.bucket OPERATOR(pg_catalog.=) c.bucket
                              ORDER BY s.spent LIMIT 1) lo
         CROSS JOIN LATERAL (SELECT s.spent FROM onboarding.stage_span s
                              WHERE s.provider OPERATOR(pg_catalog.=) r.provider
                                AND s.entity OPERATOR(pg_catalog.=) r.entity
                                AND s.status OPERATOR(pg_catalog.=) r.status
                                AND s.bucket OPERATOR(pg_catalog.=) c.bucket
                              ORDER BY s.spent DESC LIMIT 1) hi
    ), p AS (
        -- interpolated as percentile_cont does: lo + (hi - lo) × fraction
        SELECT a.provider, a.entity, a.status, a.total, a.pct,
               CASE WHEN b.value IS NULL THEN a.value
                    ELSE (b.value OPERATOR(pg_catalog.-) a.value) OPERATOR(pg_catalog.*) a.fraction
                         OPERATOR(pg_catalog.+) a.value END AS value
          FROM v a
          LEFT JOIN v b ON b.which OPERATOR(pg_catalog.=) 2 AND b.provider OPERATOR(pg_catalog.=) a.provider
                       AND b.entity OPERATOR(pg_catalog.=) a.entity AND b.status OPERATOR(pg_catalog.=) a.status
                       AND b.pct OPERATOR(pg_catalog.=) a.pct
         WHERE a.which OPERATOR(pg_catalog.=) 1
    )
    SELECT p.provider, p.entity, p.status, p.total::bigint,
           max(p.value) FILTER (WHERE p.pct OPERATOR(pg_catalog.=) 0.5),
           max(p.value) FILTER (WHERE p.pct OPERATOR(pg_catalog.=) 0.9),
           (SELECT s.spent FROM onboarding.stage_span s
             WHERE s.provider OPERATOR(pg_catalog.=) p.provider
               AND s.entity OPERATOR(pg_catalog.=) p.entity
               AND s.status OPERATOR(pg_catalog.=) p.status
             ORDER BY s.bucket DESC, s.spent DESC LIMIT 1)
      FROM p
     GROUP BY p.provider, p.entity, p.status, p.total
    $$;
COMMENT ON FUNCTION onboarding.stage_durations_kept() IS
    'stage_durations from onboarding.stage_tally and onboarding.stage_span: a few index probes per status';

-- The report computed from the history rows the caller may see (what it
-- reads while row-level security is on for history; 0.2.0's definition)
CREATE FUNCTION onboarding.stage_durations_computed()
    RETURNS TABLE (provider onboarding.provider, entity text, status text, n bigint,
                   p50 interval, p90 interval, max interval)
    LANGUAGE sql STABLE ROWS 40
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT s.provider, s.entity, s.status, count(*),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY s.spent),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY s.spent),
           max(s.spent)
      FROM onboarding.stage_spans() s
     GROUP BY s.provider, s.entity, s.status
    $$;
COMMENT ON FUNCTION onboarding.stage_durations_computed() IS
    'stage_durations computed from the history rows the caller may see (what it reads while row-level security is on for history)';

CREATE VIEW onboarding.stage_durations WITH (security_invoker = true) AS
SELECT k.provider, k.entity, k.status, k.n, k.p50, k.p90, k.max
  FROM onboarding.stage_durations_kept() k
 WHERE NOT onboarding.history_row_security()
UNION ALL
SELECT c.provider, c.entity, c.status, c.n, c.p50, c.p90, c.max
  FROM onboarding.stage_durations_computed() c
 WHERE onboarding.history_row_security();
COMMENT ON VIEW onboarding.stage_durations IS
    'time spent in each status before the next change (provider times): n, p50, p90 and max per provider, entity and status, from onboarding.stage_span (computed from the history rows the caller may see while row-level security is on for history)';

-- The entities in a refusing status, kept as state rows are written (open.c,
-- from the same row versions as open_entity): rejection_reasons reads these
-- rows (about one entity in twelve at ten million deliveries) instead of
-- every state row.  refused_rows() says what they must be; verify() checks
-- them; recount_status_tally() writes them again after rows were written
-- behind the triggers' back.  Not dumped: a restore's COPY into the state
-- tables fills it again.
CREATE TABLE onboarding.refused_entity (
    entity         text NOT NULL,
    provider       onboarding.provider NOT NULL,
    entity_key     text NOT NULL,
    reason         text NOT NULL,
    last_event_at  timestamptz,
    PRIMARY KEY (entity, provider, entity_key)
);
COMMENT ON TABLE onboarding.refused_entity IS
    'the accounts, proposals and documents in a refusing status, with why and when, kept as state rows are written: what rejection_reasons reads; verify() checks it against the state tables';
COMMENT ON COLUMN onboarding.refused_entity.reason IS
    'why, as rejection_reasons says it: an account''s reason; a proposal''s provider status and message; a document''s reason, else its provider status; else (no reason given)';

-- The refused entities as the state rows give them, to the caller's sight
CREATE FUNCTION onboarding.refused_rows()
    RETURNS TABLE (entity text, provider onboarding.provider, entity_key text, reason text,
                   last_event_at timestamptz)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT 'account'::text, a.provider, a.account_key, coalesce(a.reason, '(no reason given)'),
           a.last_event_at
      FROM onboarding.account a WHERE a.status IN ('rejected', 'failed', 'blocked')
    UNION ALL
    SELECT 'proposal', p.provider, p.proposal_key,
           coalesce(p.provider_status || ': ' || p.message, p.provider_status, '(no reason given)'),
           p.last_event_at
      FROM onboarding.proposal p WHERE p.status IN ('rejected', 'expired', 'account_error')
    UNION ALL
    SELECT 'document', d.provider, d.document_key,
           coalesce(d.reason, d.provider_status, '(no reason given)'), d.last_event_at
      FROM onboarding.document d
     WHERE d.status IN ('invalid', 'disapproved', 'error', 'inexistent', 'expired')
    $$;
COMMENT ON FUNCTION onboarding.refused_rows() IS
    'the accounts, proposals and documents in a refusing status that the caller may see, from the state tables: what onboarding.refused_entity keeps, and what rejection_reasons counts while row-level security is on for a state table';

-- rejection_reasons reads the kept rows while no state table has
-- row-level security on (as funnel reads its counts), the state rows the
-- caller may see otherwise
CREATE VIEW onboarding.rejection_reasons WITH (security_invoker = true) AS
SELECT provider, entity, reason, count(*) AS how_many, max(last_event_at) AS last_seen
  FROM (SELECT r.provider, r.entity, r.reason, r.last_event_at
          FROM onboarding.refused_entity r
         WHERE NOT onboarding.state_row_security()
        UNION ALL
        SELECT v.provider, v.entity, v.reason, v.last_event_at
          FROM onboarding.refused_rows() v
         WHERE onboarding.state_row_security()) r
 GROUP BY provider, entity, reason;
COMMENT ON VIEW onboarding.rejection_reasons IS
    'why accounts, proposals and documents were refused or blocked, how often, last seen';

-- A document that waits on nobody because its proposal has moved on
-- (onboarding.settled_by_proposal): a provider that reports a file once,
-- as sent, and never again (Celcoin) settles it by analysing the proposal.
-- pending_documents and in_progress_entities ask the same question of
-- every document at once, as one anti-join against the proposals (each
-- document's proposal key computed beside it, so that the join hashes),
-- not this function per row: a Celcoin file stays `sent` for good, so they
-- add up to most documents.
CREATE FUNCTION onboarding.document_settled(provider onboarding.provider, document_key text)
    RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT EXISTS (SELECT 1
                     FROM onboarding.settled_by_proposal r
                     JOIN onboarding.proposal p
                       ON p.provider = r.provider
                      AND p.proposal_key = pg_catalog.split_part(document_settled.document_key,
                                                                 r.key_separator, 1)
                    WHERE r.entity = 'document'
                      AND r.provider = document_settled.provider
                      AND p.status::text <> ALL (r.proposal_waiting))
    $$;
COMMENT ON FUNCTION onboarding.document_settled(onboarding.provider, text) IS
    'a document whose proposal (onboarding.settled_by_proposal) is in none of the statuses in which it waits: nothing more will come';

-- the anomalies, newest first: anomalies' count and its pages read this
-- index alone (a few percent of the inbox), not the inbox; its predicate
-- is anomalies' condition, word for word (every outcome but applied and
-- duplicate: stale, illegal_transition, unrecognized, invalid, refused)
CREATE INDEX inbox_anomaly_idx ON onboarding.inbox (id)
    WHERE outcome NOT IN ('applied', 'duplicate');
COMMENT ON INDEX onboarding.inbox_anomaly_idx IS
    'the deliveries onboarding.anomalies lists (every outcome but applied and duplicate), by id';

CREATE VIEW onboarding.anomalies WITH (security_invoker = true) AS
SELECT id, received_at, provider, event_type, subject, status_raw, event_at, outcome, detail
  FROM onboarding.inbox
 WHERE outcome NOT IN ('applied', 'duplicate');
COMMENT ON VIEW onboarding.anomalies IS
    'deliveries that changed nothing for a reason worth a look, with the reason';

-- Statuses in which an entity is still on its way (used by stuck()): not
-- final in the graph, and not settled (onboarding.settled_status).
CREATE FUNCTION onboarding.in_progress(entity text, provider onboarding.provider, status text)
    RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT NOT EXISTS (SELECT 1 FROM onboarding.settled_status s
                        WHERE s.entity = in_progress.entity
                          AND s.status = in_progress.status
                          AND (s.provider IS NULL OR s.provider = in_progress.provider))
       AND EXISTS (SELECT 1 FROM onboarding.transition t
                    WHERE t.entity = CASE WHEN in_progress.entity IN ('background_check', 'documentscopy')
                                          THEN 'check' ELSE in_progress.entity END
                      AND t.from_status = in_progress.status
                      AND (t.provider IS NULL OR t.provider = in_progress.provider))
    $$;

-- Every (entity, provider, status) in which an entity is on its way, as
-- in_progress() decides: a few dozen rows, computed once per query, that
-- in_progress_entities joins (a hash semi-join) instead of calling
-- in_progress() for each of its rows.
CREATE FUNCTION onboarding.in_progress_statuses()
    RETURNS TABLE (entity text, provider onboarding.provider, status text)
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 40
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT l.entity, p.provider, l.status
      FROM (SELECT 'account'::text, s::text FROM unnest(enum_range(NULL::onboarding.account_status)) AS s
            UNION ALL
            SELECT 'proposal', s::text FROM unnest(enum_range(NULL::onboarding.proposal_status)) AS s
            UNION ALL
            SELECT e, s::text FROM unnest(enum_range(NULL::onboarding.check_status)) AS s,
                                   unnest('{background_check,documentscopy}'::text[]) AS e
            UNION ALL
            SELECT 'document', s::text FROM unnest(enum_range(NULL::onboarding.document_status)) AS s
            UNION ALL
            SELECT 'closure', s::text FROM unnest(enum_range(NULL::onboarding.closure_status)) AS s
           ) AS l (entity, status)
     CROSS JOIN unnest(enum_range(NULL::onboarding.provider)) AS p (provider)
     WHERE onboarding.in_progress(l.entity, p.provider, l.status)
    $$;

-- The elements of labels (the labels of a status enum) in which an entity
-- of one of entities is on its way for at least one provider, as
-- in_progress() decides: in_progress_entities reads the rows of a state
-- table in these statuses only, and asks in_progress() of each of them.
CREATE FUNCTION onboarding.in_progress_labels(entities text[], labels anyarray)
    RETURNS SETOF anyelement
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT l FROM unnest(labels) AS l
     WHERE EXISTS (SELECT 1
                     FROM unnest(entities) AS e, unnest(enum_range(NULL::onboarding.provider)) AS p
                    WHERE onboarding.in_progress(e, p, l::text))
    $$;

-- Every entity still on its way, as in_progress() decides, from the rule
-- tables alone: nothing here names a status, so the statuses of a provider
-- taught with rows are judged like the shipped ones.  A state table is read
-- where its status is one of in_progress_labels() (computed once per query:
-- the ARRAY sub-select is an initplan), and its rows are kept when their
-- (entity, provider, status) is one of in_progress_statuses(); a document
-- also when its proposal has not settled it (document_settled(), as a join).
-- The entities on their way, kept as state rows are written (open.c):
-- in_progress_entities, stuck() and pending_documents read these few
-- thousand rows and each one's state row by its key, not every state row.
-- A superset of what they list (each report decides exactly, on the state
-- row): an entity is here while its status is open (open_statuses()).
-- Written by the pipeline where status_tally is counted and by the state
-- tables' statement triggers; computed again when a rule it depends on
-- changes (recount_open_entity()).  Not dumped: a restore's COPY into the
-- state tables fills it again.
CREATE TABLE onboarding.open_entity (
    entity      text NOT NULL,
    provider    onboarding.provider NOT NULL,
    entity_key  text NOT NULL,
    parent_key  text,
    orphan      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (entity, provider, entity_key)
);
CREATE INDEX open_entity_parent_idx ON onboarding.open_entity (provider, parent_key)
    WHERE parent_key IS NOT NULL;
CREATE INDEX open_entity_orphan_idx ON onboarding.open_entity (provider, parent_key)
    WHERE orphan;
COMMENT ON TABLE onboarding.open_entity IS
    'the entities whose status is open (open_statuses()), kept as state rows are written: what in_progress_entities, stuck() and pending_documents read; verify() checks it against the state tables';
COMMENT ON COLUMN onboarding.open_entity.entity IS
    'account, proposal, background_check, documentscopy, document or closure (as in entity_status), or proposal_document: a document of a provider of onboarding.settled_by_proposal';
COMMENT ON COLUMN onboarding.open_entity.parent_key IS
    'a document of a provider of onboarding.settled_by_proposal: its proposal''s key (the document key up to key_separator); else NULL';
COMMENT ON COLUMN onboarding.open_entity.orphan IS
    'that proposal had no row when the document was written (true may outlive the proposal''s creation by a transaction running at the same moment; the reports check)';
COMMENT ON INDEX onboarding.open_entity_parent_idx IS
    'the documents of a proposal, for the proposals that wait (pending_documents) and the proposals deleted';
COMMENT ON INDEX onboarding.open_entity_orphan_idx IS
    'the documents whose proposal had no row (pending_documents), and those a proposal created adopts';

-- What open_entity keeps: in_progress() (in_progress_statuses()), any
-- document status but validated (pending_documents lists them), and for
-- a proposal of a settled_by_proposal provider the statuses in which its
-- documents wait.  open.c compiles the same from the rule tables.
CREATE FUNCTION onboarding.open_statuses()
    RETURNS TABLE (entity text, provider onboarding.provider, status text)
    LANGUAGE sql STABLE PARALLEL SAFE ROWS 80
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT i.entity, i.provider, i.status FROM onboarding.in_progress_statuses() AS i
    UNION
    SELECT 'document', p.provider, s::text
      FROM unnest(enum_range(NULL::onboarding.document_status)) AS s,
           unnest(enum_range(NULL::onboarding.provider)) AS p (provider)
     WHERE s <> 'validated'
    UNION
    SELECT 'proposal', r.provider, w
      FROM onboarding.settled_by_proposal r, unnest(r.proposal_waiting) AS w
     WHERE r.entity = 'document'
    $$;
COMMENT ON FUNCTION onboarding.open_statuses() IS
    'every (entity, provider, status) kept in onboarding.open_entity: on its way (in_progress()), a document not validated, a proposal in a status in which its documents wait';

-- open_entity as it should be, computed from the state tables
CREATE FUNCTION onboarding.open_entity_expected()
    RETURNS TABLE (entity text, provider onboarding.provider, entity_key text, parent_key text,
                   orphan boolean)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE WHEN k.parent_key IS NOT NULL THEN 'proposal_document' ELSE e.entity END,
           e.provider, e.entity_key, k.parent_key,
           k.parent_key IS NOT NULL
           AND NOT EXISTS (SELECT FROM onboarding.proposal p
                            WHERE p.provider = e.provider AND p.proposal_key = k.parent_key)
      FROM onboarding.entity_status e
      JOIN onboarding.open_statuses() s
        ON s.entity = e.entity AND s.provider = e.provider AND s.status = e.status
      LEFT JOIN onboarding.settled_by_proposal r
        ON r.entity = 'document' AND e.entity = 'document' AND r.provider = e.provider
     CROSS JOIN LATERAL (SELECT split_part(e.entity_key, r.key_separator, 1) AS parent_key) k
    $$;
REVOKE ALL ON FUNCTION onboarding.open_entity_expected() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.open_entity_expected() IS
    'onboarding.open_entity as computed from the state tables (what recount_open_entity() writes and verify() compares)';

CREATE FUNCTION onboarding.recount_open_entity() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    counted bigint;
BEGIN
    -- as recount_status_tally(): no state row changes meanwhile
    LOCK TABLE onboarding.account, onboarding.proposal, onboarding.document,
               onboarding.closure IN SHARE MODE;
    LOCK TABLE onboarding.open_entity IN EXCLUSIVE MODE;
    DELETE FROM onboarding.open_entity;
    INSERT INTO onboarding.open_entity (entity, provider, entity_key, parent_key, orphan)
    SELECT x.entity, x.provider, x.entity_key, x.parent_key, x.orphan
      FROM onboarding.open_entity_expected() x;
    GET DIAGNOSTICS counted = ROW_COUNT;
    RETURN counted;
END
$$;
REVOKE ALL ON FUNCTION onboarding.recount_open_entity() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.recount_open_entity() IS
    'compute onboarding.open_entity again from the state tables (run by a change of transition, settled_status or settled_by_proposal; by hand after rows were written behind the triggers'' back); deliveries wait meanwhile; returns the rows written';

CREATE FUNCTION onboarding.open_rules_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'onboarding_open_rules_changed' LANGUAGE C;
COMMENT ON FUNCTION onboarding.open_rules_changed() IS
    'AFTER ... FOR EACH STATEMENT trigger of transition, settled_status and settled_by_proposal: what is open may have changed, so onboarding.open_entity is computed again';

-- The documents in open_entity that no proposal settles: those of a
-- provider whose proposals settle none (entity document), and of the
-- others (proposal_document) those whose proposal has no row and those of
-- a proposal that waits (each through an index of open_entity: a Celcoin
-- file whose proposal has moved on is never read)
CREATE VIEW onboarding.open_documents WITH (security_invoker = true) AS
SELECT o.provider, o.entity_key AS document_key
  FROM onboarding.open_entity o
 WHERE o.entity = 'document'
UNION ALL
SELECT o.provider, o.entity_key
  FROM onboarding.open_entity o
 WHERE o.orphan AND o.entity = 'proposal_document'
   AND NOT EXISTS (SELECT FROM onboarding.proposal p
                    WHERE p.provider = o.provider AND p.proposal_key = o.parent_key)
UNION ALL
SELECT o.provider, o.entity_key
  FROM onboarding.open_entity w
  JOIN onboarding.settled_by_proposal r ON r.entity = 'document' AND r.provider = w.provider
  JOIN onboarding.proposal p ON p.provider = w.provider AND p.proposal_key = w.entity_key
  JOIN onboarding.open_entity o
    ON o.provider = w.provider AND o.parent_key = w.entity_key AND o.entity = 'proposal_document'
 WHERE w.entity = 'proposal' AND p.status::text = ANY (r.proposal_waiting);
COMMENT ON VIEW onboarding.open_documents IS
    'the documents of onboarding.open_entity that their proposal does not settle (onboarding.settled_by_proposal): what pending_documents and in_progress_entities read';

CREATE VIEW onboarding.pending_documents WITH (security_invoker = true) AS
SELECT d.provider, d.document_key, d.tax_id, d.account_key, d.document_type, d.document_type_raw,
       d.signer, d.status,
       CASE WHEN d.status IN ('sent', 'awaiting_validation', 'resubmitted', 'typified')
            THEN 'provider' ELSE 'customer' END AS waiting_on,
       d.reason, coalesce(d.last_event_at, d.last_received_at) AS since
  FROM onboarding.open_documents o
  JOIN onboarding.document d ON d.provider = o.provider AND d.document_key = o.document_key
 WHERE d.status <> 'validated';
COMMENT ON VIEW onboarding.pending_documents IS
    'documents not validated: waiting on the provider (sent, in analysis) or on the customer (refused, expired)';

CREATE VIEW onboarding.in_progress_entities WITH (security_invoker = true) AS
SELECT s.provider, s.entity, s.entity_key, s.status, s.last_event_at, s.last_received_at
  FROM (SELECT a.provider, 'account'::text AS entity, a.account_key AS entity_key,
               a.status::text AS status, a.last_event_at, a.last_received_at
          FROM onboarding.open_entity o
          JOIN onboarding.account a ON a.provider = o.provider AND a.account_key = o.entity_key
         WHERE o.entity = 'account'
        UNION ALL
        SELECT p.provider, 'proposal', p.proposal_key, p.status::text, p.last_event_at,
               p.last_received_at
          FROM onboarding.open_entity o
          JOIN onboarding.proposal p ON p.provider = o.provider AND p.proposal_key = o.entity_key
         WHERE o.entity = 'proposal'
        UNION ALL
        SELECT p.provider, o.entity, p.proposal_key,
               CASE o.entity WHEN 'background_check' THEN p.background_check
                             ELSE p.documentscopy END::text,
               p.last_event_at, p.last_received_at
          FROM onboarding.open_entity o
          JOIN onboarding.proposal p ON p.provider = o.provider AND p.proposal_key = o.entity_key
         WHERE o.entity IN ('background_check', 'documentscopy')
        UNION ALL
        SELECT d.provider, 'document', d.document_key, d.status::text, d.last_event_at,
               d.last_received_at
          FROM onboarding.open_documents o
          JOIN onboarding.document d ON d.provider = o.provider AND d.document_key = o.document_key
        UNION ALL
        SELECT c.provider, 'closure', c.account_key, c.status::text, c.last_event_at,
               c.last_received_at
          FROM onboarding.open_entity o
          JOIN onboarding.closure c ON c.provider = o.provider AND c.account_key = o.entity_key
         WHERE o.entity = 'closure'
       ) s
 WHERE (s.entity, s.provider, s.status) IN (SELECT i.entity, i.provider, i.status
                                               FROM onboarding.in_progress_statuses() AS i);
COMMENT ON VIEW onboarding.in_progress_entities IS
    'entities still on their way: not in a final state of the graph, and not settled';

-- A thin SQL function over the view, so that it is inlined and the
-- caller's filters reach the indexes; its only operators are qualified.
CREATE FUNCTION onboarding.stuck(older_than interval)
    RETURNS TABLE (provider onboarding.provider, entity text, entity_key text, status text,
                   last_event_at timestamptz, idle interval, last_received_at timestamptz)
    LANGUAGE sql STABLE
    AS $$
    SELECT e.provider, e.entity, e.entity_key, e.status, e.last_event_at,
           pg_catalog.now() OPERATOR(pg_catalog.-) coalesce(e.last_event_at, e.last_received_at),
           e.last_received_at
      FROM onboarding.in_progress_entities e
     WHERE coalesce(e.last_event_at, e.last_received_at)
           OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) older_than)
    $$;
COMMENT ON FUNCTION onboarding.stuck(interval) IS
    'entities still on their way (not final, not settled) with no event for older_than (provider time, else time received)';

-- Everything about one taxpayer: each status change of their entities, and
-- each delivery about them that changed nothing, with why.
CREATE VIEW onboarding.person_timeline WITH (security_invoker = true) AS
WITH entities AS (
    SELECT a.tax_id, a.provider, 'account'::text AS entity, a.account_key AS entity_key
      FROM onboarding.account a
    UNION ALL
    SELECT a.tax_id, c.provider, 'closure', c.account_key
      FROM onboarding.account a
      JOIN onboarding.closure c ON c.provider = a.provider AND c.account_key = a.account_key
    UNION ALL
    SELECT p.tax_id, p.provider, e.entity, p.proposal_key
      FROM onboarding.proposal p
     CROSS JOIN (VALUES ('proposal'), ('background_check'), ('documentscopy')) e (entity)
    UNION ALL
    SELECT d.tax_id, d.provider, 'document', d.document_key
      FROM onboarding.document d
), subjects AS (
    SELECT a.tax_id, a.provider, a.account_key AS subject FROM onboarding.account a
    UNION
    SELECT p.tax_id, p.provider, p.proposal_key FROM onboarding.proposal p
    UNION
    SELECT d.tax_id, d.provider, d.document_key FROM onboarding.document d
)
SELECT k.tax_id, coalesce(h.event_at, i.received_at) AS at, h.provider, h.entity, h.entity_key,
       h.from_status, h.to_status, i.outcome, h.reason AS detail, h.inbox_id
  FROM entities k
  JOIN onboarding.history h ON h.provider = k.provider AND h.entity = k.entity
                           AND h.entity_key = k.entity_key
  JOIN onboarding.inbox i ON i.id = h.inbox_id
UNION ALL
SELECT s.tax_id, coalesce(i.event_at, i.received_at), i.provider, NULL, s.subject,
       NULL, NULL, i.outcome, i.detail, i.id
  FROM subjects s
  JOIN onboarding.inbox i ON i.provider = s.provider AND i.subject = s.subject
 WHERE i.outcome IN ('stale', 'illegal_transition', 'invalid', 'unrecognized')
    OR i.outcome::text = 'refused';
COMMENT ON VIEW onboarding.person_timeline IS
    'per taxpayer: every status change and every delivery that changed nothing; see timeline()';

-- (0.2.0: a SQL-standard body, parsed here, so that = is the taxid
-- extension's operator whatever the caller's search_path; still inlined.)
CREATE FUNCTION onboarding.timeline(tax_id onboarding.taxid)
    RETURNS TABLE (at timestamptz, provider onboarding.provider, entity text, entity_key text,
                   from_status text, to_status text, outcome onboarding.outcome, detail text,
                   inbox_id bigint)
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT t.at, t.provider, t.entity, t.entity_key, t.from_status, t.to_status, t.outcome,
           t.detail, t.inbox_id
      FROM onboarding.person_timeline t
     WHERE t.tax_id = timeline.tax_id
     ORDER BY t.at, t.inbox_id, t.entity;
END;
COMMENT ON FUNCTION onboarding.timeline(onboarding.taxid) IS
    'everything known about one person or company across providers, in time order';

-- ---------------------------------------------------------------------------
-- Every object of the extension has a comment (0.3.0), so that \d+, \dT+
-- and \df+ describe it; the suite `comments` checks that none is missing.
-- ---------------------------------------------------------------------------
COMMENT ON TABLE onboarding.account IS
    'current state of each account, one row per (provider, account_key), derived from the inbox; your columns, constraints and triggers bind the pipeline (README, "Your own columns")';
COMMENT ON TABLE onboarding.proposal IS
    'current state of each proposal with its background check and documentscopy, one row per (provider, proposal_key), derived from the inbox';
COMMENT ON TABLE onboarding.document IS
    'current state of each document, one row per (provider, document_key), derived from the inbox';
COMMENT ON TABLE onboarding.closure IS
    'current state of each account closure request, one row per (provider, account_key), derived from the inbox';
COMMENT ON TABLE onboarding.history IS
    'every status change of every entity, in event order per entity, with the delivery (inbox_id) that made it; rewritten by late deliveries and rebuild()';
COMMENT ON SEQUENCE onboarding.inbox_id_seq IS 'identity of onboarding.inbox.id: arrival order';
COMMENT ON SEQUENCE onboarding.history_id_seq IS 'identity of onboarding.history.id: the order rows were written (an entity''s event order is event_at, then id)';
COMMENT ON SEQUENCE onboarding.transition_id_seq IS 'identity of onboarding.transition.id';
COMMENT ON SEQUENCE onboarding.settled_status_id_seq IS 'identity of onboarding.settled_status.id';
COMMENT ON TYPE onboarding.provider IS 'a Banking-as-a-Service provider; a label added here, with its rule rows, teaches a new one';
COMMENT ON TYPE onboarding.outcome IS 'what became of a delivery: applied, duplicate, stale, illegal_transition, unrecognized, invalid, refused';
COMMENT ON TYPE onboarding.account_status IS 'status of an account (fixed vocabulary: labels cannot be added)';
COMMENT ON TYPE onboarding.proposal_status IS 'status of a proposal (fixed vocabulary: labels cannot be added)';
COMMENT ON TYPE onboarding.check_status IS 'status of a background check or documentscopy (fixed vocabulary: labels cannot be added)';
COMMENT ON TYPE onboarding.document_status IS 'status of a document (fixed vocabulary: labels cannot be added)';
COMMENT ON TYPE onboarding.document_type IS 'kind of a document (identity, proof of address, selfie, ...)';
COMMENT ON TYPE onboarding.closure_status IS 'status of an account closure request (fixed vocabulary: labels cannot be added)';
COMMENT ON FUNCTION onboarding.inbox_before_insert() IS
    'trigger inbox_pipeline (BEFORE INSERT FOR EACH ROW on onboarding.inbox): parse, classify, dedupe, derive state; fills the derived columns';
COMMENT ON FUNCTION onboarding.inbox_before_update() IS
    'trigger inbox_immutable (BEFORE UPDATE on onboarding.inbox): deliveries are evidence, never updated';
COMMENT ON FUNCTION onboarding.inbox_after_insert() IS
    'trigger inbox_settle (AFTER INSERT FOR EACH STATEMENT on onboarding.inbox): writes the state rows the statement kept in memory';
COMMENT ON FUNCTION onboarding.inbox_refuse_delete() IS
    'triggers on onboarding.inbox (BEFORE DELETE, BEFORE TRUNCATE): deliveries are kept forever';
COMMENT ON FUNCTION onboarding.state_before_update() IS
    'trigger on the state tables (BEFORE UPDATE): refuses illegal status changes, records a legal direct UPDATE as an operator''s delivery';
COMMENT ON FUNCTION onboarding.rules_changed() IS
    'statement trigger on the rule tables: every backend reloads its rule caches at its next command';
COMMENT ON FUNCTION onboarding.is_status(text, text) IS
    'is status a label of the status enum of entity (''check'' = background_check and documentscopy)? (rule tables'' CHECK constraints)';
COMMENT ON FUNCTION onboarding.are_statuses(text, text[]) IS
    'are all statuses labels of the status enum of entity? (rule tables'' CHECK constraints)';
COMMENT ON FUNCTION onboarding.is_json_path(text) IS
    'is path a path into a body the extraction rules accept (dot-separated keys; @. for the current element)? (rule tables'' CHECK constraints)';
COMMENT ON FUNCTION onboarding.are_json_paths(text[]) IS
    'are all paths JSON paths the extraction rules accept? (rule tables'' CHECK constraints)';
COMMENT ON FUNCTION onboarding.is_template(text) IS
    'is template a value template the extraction rules accept (literal text with {path|transform?default} placeholders)?';
COMMENT ON FUNCTION onboarding.force_status_record(text, onboarding.provider, text, text, text) IS
    'owner only: the half of force_status() that records the override as a delivery; call onboarding.force_status()';
COMMENT ON FUNCTION onboarding.derived_rows() IS
    'owner only: every state, history and derived inbox row as jsonb, the half of verify() that reads them';
COMMENT ON FUNCTION onboarding.in_progress(text, onboarding.provider, text) IS
    'is an entity in this status on its way (a legal move leaves it, and it is not settled)? read by stuck() and in_progress_entities';
COMMENT ON FUNCTION onboarding.in_progress_statuses() IS
    'every (entity, provider, status) in which an entity is on its way, as in_progress() decides (in_progress_entities joins it)';
COMMENT ON FUNCTION onboarding.in_progress_labels(text[], anyarray) IS
    'the labels in which an entity of one of entities is on its way for some provider (in_progress_entities reads those rows only)';

-- ---------------------------------------------------------------------------
-- check_rules() (0.3.0): the rules that cannot match or resolve, each with
-- the row to fix.  Rules alone: a value_rule of an event no event_rule
-- names, a status_map row under an event name no event_rule sends, a code
-- transform naming a code table with no rows.  Against the deliveries seen
-- (the latest 1,000 of each event rule, and of each provider): the paths of
-- subject, key, status and time that resolve in none of them (other fields
-- are optional: a body may lack them), and provider statuses that no
-- status_map row maps (deliveries stored unrecognized).
-- ---------------------------------------------------------------------------
CREATE FUNCTION onboarding.check_rules(provider onboarding.provider DEFAULT NULL)
    RETURNS TABLE (provider onboarding.provider, rule_table text, rule jsonb, problem text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    WITH events AS (     -- each event rule with its latest deliveries
        SELECT e.provider, e.event_type, e.match, coalesce(e.rule_event, e.event_type) AS rule_event
          FROM onboarding.event_rule e
         WHERE check_rules.provider IS NULL OR e.provider = check_rules.provider
    ), seen AS (
        SELECT ev.provider, ev.event_type, d.payload
          FROM events ev
          CROSS JOIN LATERAL (
                SELECT i.payload FROM onboarding.inbox i
                 WHERE i.provider = ev.provider AND i.payload IS NOT NULL
                   AND (CASE ev.match WHEN 'exact' THEN i.event_type = ev.event_type
                                      ELSE strpos(i.event_type, ev.event_type) > 0 END)
                 ORDER BY i.id DESC LIMIT 1000) d
    ), seen_provider AS (
        SELECT p.provider, d.payload
          FROM onboarding.provider_rule p
          CROSS JOIN LATERAL (
                SELECT i.payload FROM onboarding.inbox i
                 WHERE i.provider = p.provider AND i.payload IS NOT NULL
                 ORDER BY i.id DESC LIMIT 1000) d
         WHERE check_rules.provider IS NULL OR p.provider = check_rules.provider
    ), value_rules AS (
        SELECT v.*, jsonb_build_object('provider', v.provider, 'event_type', v.event_type,
                                       'entity', v.entity, 'field', v.field, 'position', v.position) AS k
          FROM onboarding.value_rule v
         WHERE check_rules.provider IS NULL OR v.provider = check_rules.provider
    )
    -- a value_rule of an event that no event_rule names: it never applies
    SELECT v.provider, 'value_rule', v.k,
           format('no event_rule of %s has event_type %L: this rule never applies', v.provider, v.event_type)
      FROM value_rules v
     WHERE v.event_type <> '*'
       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.provider = v.provider AND e.event_type = v.event_type)
    UNION ALL
    -- a status_map row under an event name that no event_rule sends
    SELECT m.provider, 'status_map',
           jsonb_build_object('provider', m.provider, 'event_type', m.event_type,
                              'status_raw', m.status_raw, 'entity', m.entity),
           format('no event_rule of %s has %L as its rule_event (or event_type): this row never maps a status',
                  m.provider, m.event_type)
      FROM onboarding.status_map m
     WHERE (check_rules.provider IS NULL OR m.provider = check_rules.provider)
       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.provider = m.provider AND e.rule_event = m.event_type)
    UNION ALL
    -- a code transform naming a code table that has no rows
    SELECT v.provider, 'value_rule', v.k,
           format('code table %L has no rows in onboarding.code_map', v.arg)
      FROM value_rules v
     WHERE v.transform = 'code'
       AND NOT EXISTS (SELECT 1 FROM onboarding.code_map c WHERE c.code_table = v.arg)
    UNION ALL
    -- subject, key and status: the rows of one (event, entity, field) are
    -- alternatives, tried in position order; reported when the paths of none
    -- of them resolve in any delivery seen of their event
    SELECT g.provider, 'value_rule',
           jsonb_build_object('provider', g.provider, 'event_type', g.event_type,
                              'entity', g.entity, 'field', g.field),
           format('none of the paths %s resolves in the %s latest deliveries of %s',
                  g.paths::text, n.deliveries,
                  CASE g.event_type WHEN '*' THEN 'provider ' || g.provider ELSE 'event ' || g.event_type END)
      FROM (SELECT v.provider, v.event_type, v.entity, v.field,
                   array_agg(p ORDER BY v.position, o) AS paths
              FROM value_rules v, unnest(v.paths) WITH ORDINALITY AS u (p, o)
             WHERE v.field IN ('subject', 'key', 'status')  -- what recognition needs; other fields are optional
               AND v.transform NOT IN ('template', 'const')
             GROUP BY 1, 2, 3, 4
            HAVING bool_and(p NOT LIKE '@%')) g
      CROSS JOIN LATERAL (
            SELECT count(*) AS deliveries,
                   count(*) FILTER (WHERE EXISTS (
                        SELECT 1 FROM unnest(g.paths) p
                         WHERE s.payload #> string_to_array(p, '.') IS NOT NULL)) AS resolved
              FROM (SELECT payload FROM seen s WHERE s.provider = g.provider AND s.event_type = g.event_type
                    UNION ALL
                    SELECT payload FROM seen_provider s WHERE g.event_type = '*' AND s.provider = g.provider) s
          ) n
     WHERE n.deliveries > 0 AND n.resolved = 0
    UNION ALL
    -- the provider's time paths, in none of its deliveries seen
    SELECT p.provider, 'provider_rule', jsonb_build_object('provider', p.provider),
           format('none of the time paths %s resolves in the %s latest deliveries of %s',
                  p.time_paths::text, n.deliveries, p.provider)
      FROM onboarding.provider_rule p
      CROSS JOIN LATERAL (
            SELECT count(*) AS deliveries,
                   count(*) FILTER (WHERE EXISTS (
                        SELECT 1 FROM unnest(p.time_paths) t
                         WHERE s.payload #> string_to_array(t, '.') IS NOT NULL)) AS resolved
              FROM seen_provider s WHERE s.provider = p.provider) n
     WHERE (check_rules.provider IS NULL OR p.provider = check_rules.provider)
       AND cardinality(p.time_paths) > 0 AND n.deliveries > 0 AND n.resolved = 0
    UNION ALL
    -- provider statuses that no status_map row maps, under the rule_event
    -- their row needs
    SELECT i.provider, 'status_map',
           jsonb_build_object('provider', i.provider, 'event_type', coalesce(ev.rule_event, i.event_type),
                              'status_raw', i.status_raw),
           format('%s %s of event %s with status %L stored unrecognized: no status_map row of event_type %L maps it',
                  count(*), CASE count(*) WHEN 1 THEN 'delivery' ELSE 'deliveries' END,
                  i.event_type, i.status_raw, coalesce(ev.rule_event, i.event_type))
      FROM onboarding.inbox i
      LEFT JOIN LATERAL (
            SELECT e.rule_event FROM events e
             WHERE e.provider = i.provider
               AND (CASE e.match WHEN 'exact' THEN i.event_type = e.event_type
                                 ELSE strpos(i.event_type, e.event_type) > 0 END)
             LIMIT 1) ev ON true
     WHERE i.outcome = 'unrecognized' AND i.provider IS NOT NULL AND i.status_raw IS NOT NULL
       AND (check_rules.provider IS NULL OR i.provider = check_rules.provider)
     GROUP BY i.provider, i.event_type, i.status_raw, ev.rule_event
    ORDER BY 1, 2, 3
    $$;
COMMENT ON FUNCTION onboarding.check_rules(onboarding.provider) IS
    'the rules of a provider (or of all) that cannot match or resolve, each with the row to fix: value rules of unknown events, status_map rows no event sends, missing code tables, paths absent from the deliveries seen, statuses no row maps';

-- Archive: a range partition of the inbox detached while state, verify()
-- and late deliveries keep working from per-entity checkpoints (checkpoint.c).
CREATE TABLE onboarding.archived_partition (
    partition     text PRIMARY KEY,
    relid         oid NOT NULL,
    bound         text NOT NULL,
    deliveries    bigint NOT NULL,
    checkpoints   bigint NOT NULL,
    covers        bigint NOT NULL,
    tally         jsonb NOT NULL DEFAULT '[]',
    archived_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    archived_by   text NOT NULL DEFAULT pg_catalog.session_user()
);
COMMENT ON TABLE onboarding.archived_partition IS
    'one row per partition archive_partition() detached from the inbox and restore_partition() has not attached again: its name, its bounds, how many deliveries it took away and how many state rows were checkpointed';
COMMENT ON COLUMN onboarding.archived_partition.tally IS
    'its deliveries counted by UTC day received, provider and outcome, as onboarding.daily counts them (verify() adds them to the inbox''s)';
COMMENT ON COLUMN onboarding.archived_partition.covers IS
    'the newest inbox id when it was archived: its checkpoints stand for every delivery of their groups up to it';
SELECT pg_catalog.pg_extension_config_dump('onboarding.archived_partition', '');

CREATE TABLE onboarding.checkpoint (
    provider      onboarding.provider NOT NULL,
    state_table   text NOT NULL,
    entity_key    text NOT NULL,
    subjects      text[] NOT NULL,
    state_row     jsonb NOT NULL,
    covers        bigint NOT NULL,
    archives      text[] NOT NULL,
    taken_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (provider, state_table, entity_key)
);
-- (no pending list: every group fold probes it, and a probe would read the
-- whole list of rows an archive just added)
CREATE INDEX checkpoint_subjects_idx ON onboarding.checkpoint USING gin (subjects)
    WITH (fastupdate = off);
COMMENT ON TABLE onboarding.checkpoint IS
    'per-entity checkpoints of archived deliveries: a state row as the fold of every delivery of its group up to covers left it, from which rebuild(), verify() and late deliveries fold the group''s later deliveries; dropped when every archive it stands for is restored';
COMMENT ON COLUMN onboarding.checkpoint.state_row IS 'the state row (to_jsonb) when it was taken';
COMMENT ON COLUMN onboarding.checkpoint.subjects IS 'the row''s subjects and its key: where its group is found';
COMMENT ON COLUMN onboarding.checkpoint.archives IS 'the archived partitions it stands for (onboarding.archived_partition)';
SELECT pg_catalog.pg_extension_config_dump('onboarding.checkpoint', '');

CREATE FUNCTION onboarding.checkpoint_take(part regclass, archive text, covers bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'onboarding_checkpoint_take'
    LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION onboarding.checkpoint_take(regclass, text, bigint) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.checkpoint_take(regclass, text, bigint) IS
    'for archive_partition(): checkpoint every state row of every group with a delivery in the partition; returns how many';

CREATE FUNCTION onboarding.checkpoint_release(archive text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'onboarding_checkpoint_release'
    LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION onboarding.checkpoint_release(text) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.checkpoint_release(text) IS
    'for restore_partition(): take the archive out of every checkpoint, drop those it leaves standing for nothing and fold their groups again from every delivery; returns how many deliveries that read';

CREATE FUNCTION onboarding.archive_partition(part regclass) RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    bound text;
    covers bigint;
    deliveries bigint;
    tally jsonb;
    rows bigint;
BEGIN
    SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) INTO bound
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) c.oid
     WHERE c.oid OPERATOR(pg_catalog.=) part
       AND i.inhparent OPERATOR(pg_catalog.=) 'onboarding.inbox'::pg_catalog.regclass;
    IF bound IS NULL THEN
        RAISE EXCEPTION 'table % is not a partition of onboarding.inbox', part
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Archive a range partition of the inbox (docs/partitioning.md).';
    END IF;
    IF bound OPERATOR(pg_catalog.=) 'DEFAULT' THEN
        RAISE EXCEPTION 'the default partition of onboarding.inbox cannot be archived'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'It belongs to the extension and takes every delivery no range partition takes.',
                  HINT = 'Add range partitions for the months to come, and archive those once they are old.';
    END IF;
    -- deliveries held off (and the state tables) until this transaction ends
    PERFORM onboarding.replay_lock();
    covers := (SELECT pg_catalog.max(i.id) FROM onboarding.inbox i);
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.count(*), COALESCE(pg_catalog.jsonb_agg(t), ''[]'')'
        '  FROM (SELECT (received_at AT TIME ZONE ''UTC'')::date::text AS day,'
        '               COALESCE(provider::text, '''') AS provider, outcome::text AS outcome,'
        '               pg_catalog.count(*) AS n'
        '          FROM %s GROUP BY 1, 2, 3) t', part) INTO deliveries, tally;
    SELECT COALESCE(pg_catalog.sum((x->>'n')::bigint), 0) INTO deliveries
      FROM pg_catalog.jsonb_array_elements(tally) x;
    rows := onboarding.checkpoint_take(part, part::pg_catalog.text, COALESCE(covers, 0));
    INSERT INTO onboarding.archived_partition (partition, relid, bound, deliveries, checkpoints, covers, tally)
    VALUES (part::pg_catalog.text, part, bound, deliveries, rows, COALESCE(covers, 0), tally);
    EXECUTE pg_catalog.format('ALTER TABLE onboarding.inbox DETACH PARTITION %s', part);
    RETURN rows;
END
$$;
REVOKE ALL ON FUNCTION onboarding.archive_partition(regclass) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.archive_partition(regclass) IS
    'archive a range partition of the inbox: checkpoint the state rows of every group with a delivery in it, then detach it (yours to dump and drop); state, verify(), rebuild() and late deliveries go on from the checkpoints; returns how many rows were checkpointed';

CREATE FUNCTION onboarding.restore_partition(part regclass) RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    a onboarding.archived_partition;
BEGIN
    SELECT * INTO a FROM onboarding.archived_partition x
     WHERE x.partition OPERATOR(pg_catalog.=) part::pg_catalog.text
        OR x.relid OPERATOR(pg_catalog.=) part::pg_catalog.oid
     ORDER BY x.relid OPERATOR(pg_catalog.=) part::pg_catalog.oid DESC
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not an archived partition of onboarding.inbox', part
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'onboarding.archived_partition lists the partitions archive_partition() detached.';
    END IF;
    PERFORM onboarding.replay_lock();
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i
                    WHERE i.inhrelid OPERATOR(pg_catalog.=) part
                      AND i.inhparent OPERATOR(pg_catalog.=) 'onboarding.inbox'::pg_catalog.regclass) THEN
        EXECUTE pg_catalog.format('ALTER TABLE onboarding.inbox ATTACH PARTITION %s %s', part, a.bound);
    END IF;
    DELETE FROM onboarding.archived_partition x WHERE x.partition OPERATOR(pg_catalog.=) a.partition;
    RETURN onboarding.checkpoint_release(a.partition);
END
$$;
REVOKE ALL ON FUNCTION onboarding.restore_partition(regclass) FROM PUBLIC;
COMMENT ON FUNCTION onboarding.restore_partition(regclass) IS
    'attach an archived partition to the inbox again (with the bounds it had); the checkpoints no other archive stands behind are dropped and their groups folded again from every delivery, each in its place; returns how many deliveries that read';

-- open_entity follows the rules that decide what is open (0.3.0)
CREATE TRIGGER transition_open_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.transition FOR EACH STATEMENT EXECUTE FUNCTION onboarding.open_rules_changed();
CREATE TRIGGER settled_status_open_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.settled_status FOR EACH STATEMENT EXECUTE FUNCTION onboarding.open_rules_changed();
CREATE TRIGGER settled_by_proposal_open_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON onboarding.settled_by_proposal FOR EACH STATEMENT EXECUTE FUNCTION onboarding.open_rules_changed();

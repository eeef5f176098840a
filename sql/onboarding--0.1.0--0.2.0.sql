/*
 * onboarding 0.1.0 -> 0.2.0 — upgrade script.
 *
 * Every change to the SQL surface made for 0.2.0 is written twice: in
 * onboarding--0.2.0.sql (a fresh install) and here (an installed 0.1.0),
 * and the upgrade test (test/scripts/upgrade.sh) proves that both give the
 * same schema.  Evidence in the inbox is never rewritten by this script.
 */

\echo Use "ALTER EXTENSION onboarding UPDATE TO '0.2.0'" to load this file. \quit

-- ===========================================================================
-- taxid: the base type moves to the extension taxid; onboarding.taxid
-- becomes a domain over it (see onboarding--0.2.0.sql)
--
-- Before this script runs, ALTER EXTENSION checks the requires of 0.2.0:
-- the extension taxid must exist already (CREATE EXTENSION taxid;
-- ALTER EXTENSION onboarding UPDATE), and search_path is then
-- "onboarding, <schema of taxid>".  The state tables keep their rows: the
-- tax_id columns are converted through their canonical text, which both
-- types read and write alike.  The inbox is not touched.
-- ===========================================================================

-- Objects outside the extension that use the 0.1.0 type (a column of a
-- table of yours, a function, a view) would have to go with it: refuse, and
-- name them, before anything is changed.
DO $$
DECLARE
    outside text;
BEGIN
    SELECT pg_catalog.string_agg(DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), '; ')
      INTO outside
      FROM pg_catalog.pg_depend d
      LEFT JOIN pg_catalog.pg_rewrite r
             ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND r.oid = d.objid
     WHERE d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
       AND d.refobjid IN ('onboarding.taxid'::pg_catalog.regtype, 'onboarding.taxid[]'::pg_catalog.regtype)
       AND d.deptype = 'n'
       AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_depend e
             WHERE e.deptype = 'e'
               AND e.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
               AND e.refobjid = (SELECT x.oid FROM pg_catalog.pg_extension x WHERE x.extname = 'onboarding')
               AND e.classid = CASE WHEN r.oid IS NULL THEN d.classid
                                    ELSE 'pg_catalog.pg_class'::pg_catalog.regclass END
               AND e.objid = coalesce(r.ev_class, d.objid));
    IF outside IS NOT NULL THEN
        RAISE EXCEPTION 'objects outside the extension use the type onboarding.taxid of 0.1.0: %', outside
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'In 0.2.0 onboarding.taxid is a domain over the type taxid of the extension taxid; the 0.1.0 type is dropped.',
                  HINT = 'Change them to text first (ALTER TABLE ... ALTER COLUMN ... TYPE text), update, then change them to onboarding.taxid.';
    END IF;
END
$$;

-- What reads the tax_id columns or names the 0.1.0 type goes; recreated
-- below exactly as onboarding--0.2.0.sql creates it.
DROP FUNCTION onboarding.timeline(onboarding.taxid);
DROP VIEW onboarding.person_timeline;
DROP VIEW onboarding.funnel;
DROP VIEW onboarding.entity_status;
DROP VIEW onboarding.pending_documents;
DROP FUNCTION onboarding.taxid_format(onboarding.taxid);
DROP FUNCTION onboarding.taxid_kind(onboarding.taxid);
DROP FUNCTION onboarding.taxid_normalize(text);

-- The 0.1.0 type steps aside for the domain that takes its name.
ALTER TYPE onboarding.taxid RENAME TO taxid_0_1_0;

-- The wrappers take the companion's type, named unqualified before the
-- domain exists (as in onboarding--0.2.0.sql).  taxid_is_valid(text) and
-- taxid_problem(text) stay as they are.
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

CREATE FUNCTION onboarding.taxid_normalize(text) RETURNS onboarding.taxid
    AS 'MODULE_PATHNAME', 'onboarding_taxid_normalize'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION onboarding.taxid_normalize(text) IS
    'the taxid, or NULL when the text is not a valid CPF or CNPJ';

-- The state tables' columns, through the canonical text (the rows are
-- rewritten and their tax_id indexes rebuilt with the companion's operator
-- class).
ALTER TABLE onboarding.account
    ALTER COLUMN tax_id TYPE onboarding.taxid USING tax_id::text::onboarding.taxid;
ALTER TABLE onboarding.proposal
    ALTER COLUMN tax_id TYPE onboarding.taxid USING tax_id::text::onboarding.taxid;
ALTER TABLE onboarding.document
    ALTER COLUMN tax_id TYPE onboarding.taxid USING tax_id::text::onboarding.taxid;

-- Nothing uses the 0.1.0 type any more: it goes, with its operator
-- classes, operators, casts and functions (its I/O functions go with the
-- type itself).
DROP OPERATOR FAMILY onboarding.taxid_ops USING btree;
DROP OPERATOR FAMILY onboarding.taxid_hash_ops USING hash;
DROP OPERATOR onboarding.= (onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP OPERATOR onboarding.<> (onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP OPERATOR onboarding.< (onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP OPERATOR onboarding.<= (onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP OPERATOR onboarding.> (onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP OPERATOR onboarding.>= (onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP CAST (text AS onboarding.taxid_0_1_0);
DROP CAST (onboarding.taxid_0_1_0 AS text);
DROP FUNCTION onboarding.taxid_eq(onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP FUNCTION onboarding.taxid_ne(onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP FUNCTION onboarding.taxid_lt(onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP FUNCTION onboarding.taxid_le(onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP FUNCTION onboarding.taxid_gt(onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP FUNCTION onboarding.taxid_ge(onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP FUNCTION onboarding.taxid_cmp(onboarding.taxid_0_1_0, onboarding.taxid_0_1_0);
DROP FUNCTION onboarding.taxid_hash(onboarding.taxid_0_1_0);
DROP FUNCTION onboarding.taxid_hash_extended(onboarding.taxid_0_1_0, bigint);
DROP TYPE onboarding.taxid_0_1_0 CASCADE;

-- The views and timeline(), as onboarding--0.2.0.sql creates them.
CREATE VIEW onboarding.entity_status AS
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

CREATE VIEW onboarding.funnel AS
SELECT provider, entity, status, count(*) AS how_many,
       round(count(*) * 100.0 / sum(count(*)) OVER (PARTITION BY provider, entity), 1) AS share
  FROM onboarding.entity_status
 GROUP BY provider, entity, status;
COMMENT ON VIEW onboarding.funnel IS
    'how many entities are in each status, and their share (percent) of the provider''s entities';

CREATE VIEW onboarding.pending_documents AS
SELECT provider, document_key, tax_id, account_key, document_type, document_type_raw, signer,
       status,
       CASE WHEN status IN ('sent', 'awaiting_validation', 'resubmitted', 'typified')
            THEN 'provider' ELSE 'customer' END AS waiting_on,
       reason, last_event_at AS since
  FROM onboarding.document
 WHERE status <> 'validated';
COMMENT ON VIEW onboarding.pending_documents IS
    'documents not validated: waiting on the provider (sent, in analysis) or on the customer (refused, expired)';

-- Everything about one taxpayer: each status change of their entities, and
-- each delivery about them that changed nothing, with why.
CREATE VIEW onboarding.person_timeline AS
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
 WHERE i.outcome IN ('stale', 'illegal_transition', 'invalid', 'unrecognized');
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

-- ===========================================================================
-- end of taxid
-- ===========================================================================

-- Time received, kept apart from the provider's time (stuck() and
-- pending_documents use it for deliveries that carry no time)
ALTER TABLE onboarding.account ADD COLUMN last_received_at timestamptz;
ALTER TABLE onboarding.proposal ADD COLUMN last_received_at timestamptz;
ALTER TABLE onboarding.document ADD COLUMN last_received_at timestamptz;
ALTER TABLE onboarding.closure ADD COLUMN last_received_at timestamptz;

-- The subjects of the deliveries that touched each row: a late delivery
-- folds again every delivery of them (derive.c)
ALTER TABLE onboarding.account ADD COLUMN subjects text[];
ALTER TABLE onboarding.proposal ADD COLUMN subjects text[];
ALTER TABLE onboarding.document ADD COLUMN subjects text[];
ALTER TABLE onboarding.closure ADD COLUMN subjects text[];

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

CREATE OR REPLACE FUNCTION onboarding.verify()
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
    RETURN QUERY
    SELECT e ->> 0, e ->> 1, e -> 2, e -> 3
      FROM jsonb_array_elements(coalesce(differences, '[]')) e
     ORDER BY 1, 2;
END
$$;
REVOKE ALL ON FUNCTION onboarding.verify() FROM PUBLIC;
COMMENT ON FUNCTION onboarding.verify() IS
    'rows where live state differs from a rebuild (rolled back); no rows means consistent';

-- State is the fold of each entity's deliveries in event order (SPEC §6):
-- a late delivery folds its group (provider, subject) again, found through
-- the inbox's one secondary index, which also serves timeline() and, with
-- body_hash, duplicate detection (the same body has the same provider and
-- subject)
-- A row without payload and raw is refused by inbox_pipeline on every path
-- (restores included): the CHECK saying it again cost every INSERT
-- statement the decoding of its expression
ALTER TABLE onboarding.inbox DROP CONSTRAINT inbox_has_body;

-- Room on each page for a row's next version, so that it is a HOT update
-- (see onboarding--0.2.0.sql); the setting places the rows inserted from
-- now on, the rows in place stay where they are
ALTER TABLE onboarding.account SET (fillfactor = 60);
ALTER TABLE onboarding.proposal SET (fillfactor = 60);
ALTER TABLE onboarding.document SET (fillfactor = 60);
ALTER TABLE onboarding.closure SET (fillfactor = 60);

DROP INDEX onboarding.inbox_subject_idx;
DROP INDEX onboarding.inbox_body_hash_idx;
CREATE INDEX inbox_group_idx ON onboarding.inbox (provider, subject, body_hash)
    WITH (deduplicate_items = off);

-- History is only appended to, and found by entity: its id keeps event
-- order within an entity, and needs no index of its own
ALTER TABLE onboarding.history DROP CONSTRAINT history_pkey;
-- ... and found by entity, by equality only: a hash index on entity_key,
-- the column that tells rows apart (provider and entity are compared row by
-- row), cheaper to insert into than a btree's three text columns
DROP INDEX onboarding.history_entity_idx;
CREATE INDEX history_entity_idx ON onboarding.history USING hash (entity_key);

-- No index predicate names a status, so that a state row's new version is
-- a HOT update whenever its page has room: in_progress_entities and stuck()
-- read the state tables whole (they are a fraction of the inbox's size)
DROP INDEX onboarding.account_in_progress_idx;
DROP INDEX onboarding.proposal_in_progress_idx;
DROP INDEX onboarding.proposal_check_in_progress_idx;
DROP INDEX onboarding.document_in_progress_idx;
DROP INDEX onboarding.closure_in_progress_idx;

-- The shipped graphs gain a retried creation and a proposal that goes back
-- to pending while it is analysed
INSERT INTO onboarding.transition (entity, provider, from_status, to_status, shipped)
VALUES ('account', NULL, 'failed', 'created', true),
       ('account', NULL, 'failed', 'active', true),
       ('proposal', NULL, 'in_analysis', 'pending', true),
       ('proposal', NULL, 'account_error', 'account_created', true)
    ON CONFLICT ON CONSTRAINT transition_unique DO UPDATE SET shipped = true;

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
    CONSTRAINT settled_status_is_label CHECK (onboarding.is_status(entity, status))
);
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

-- stuck() leaves settled statuses out by the table above
CREATE OR REPLACE FUNCTION onboarding.in_progress(entity text, provider onboarding.provider, status text)
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

-- What pending_documents and stuck() read, once the rule tables they read
-- (settled_status, settled_by_proposal) exist.

-- A document that waits on nobody because its proposal has moved on
-- (onboarding.settled_by_proposal): a provider that reports a file once,
-- as sent, and never again (Celcoin) settles it by analysing the proposal.
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

CREATE OR REPLACE VIEW onboarding.pending_documents AS
SELECT d.provider, d.document_key, d.tax_id, d.account_key, d.document_type, d.document_type_raw,
       d.signer, d.status,
       CASE WHEN d.status IN ('sent', 'awaiting_validation', 'resubmitted', 'typified')
            THEN 'provider' ELSE 'customer' END AS waiting_on,
       d.reason, coalesce(d.last_event_at, d.last_received_at) AS since
  FROM onboarding.document d
 WHERE d.status <> 'validated'
   AND NOT onboarding.document_settled(d.provider, d.document_key);

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
-- the ARRAY sub-select is an initplan), and in_progress() is asked of those
-- rows only.
CREATE OR REPLACE VIEW onboarding.in_progress_entities AS
SELECT s.provider, s.entity, s.entity_key, s.status, s.last_event_at, s.last_received_at
  FROM (SELECT a.provider, 'account'::text AS entity, a.account_key AS entity_key,
               a.status::text AS status, a.last_event_at, a.last_received_at
          FROM onboarding.account a
         WHERE a.status = ANY (ARRAY(SELECT onboarding.in_progress_labels('{account}',
                                           pg_catalog.enum_range(NULL::onboarding.account_status))))
        UNION ALL
        SELECT p.provider, 'proposal', p.proposal_key, p.status::text, p.last_event_at,
               p.last_received_at
          FROM onboarding.proposal p
         WHERE p.status = ANY (ARRAY(SELECT onboarding.in_progress_labels('{proposal}',
                                           pg_catalog.enum_range(NULL::onboarding.proposal_status))))
        UNION ALL
        SELECT p.provider, c.entity, p.proposal_key, c.status::text, p.last_event_at,
               p.last_received_at
          FROM onboarding.proposal p
         CROSS JOIN LATERAL (VALUES ('background_check', p.background_check),
                                    ('documentscopy', p.documentscopy)) c (entity, status)
         WHERE ARRAY[p.background_check, p.documentscopy]
               && ARRAY(SELECT onboarding.in_progress_labels('{background_check,documentscopy}',
                                   pg_catalog.enum_range(NULL::onboarding.check_status)))
           AND c.status = ANY (ARRAY(SELECT onboarding.in_progress_labels('{background_check,documentscopy}',
                                         pg_catalog.enum_range(NULL::onboarding.check_status))))
        UNION ALL
        SELECT d.provider, 'document', d.document_key, d.status::text, d.last_event_at,
               d.last_received_at
          FROM onboarding.document d
         WHERE d.status = ANY (ARRAY(SELECT onboarding.in_progress_labels('{document}',
                                           pg_catalog.enum_range(NULL::onboarding.document_status))))
           AND NOT onboarding.document_settled(d.provider, d.document_key)
        UNION ALL
        SELECT c.provider, 'closure', c.account_key, c.status::text, c.last_event_at,
               c.last_received_at
          FROM onboarding.closure c
         WHERE c.status = ANY (ARRAY(SELECT onboarding.in_progress_labels('{closure}',
                                           pg_catalog.enum_range(NULL::onboarding.closure_status))))
       ) s
 WHERE onboarding.in_progress(s.entity, s.provider, s.status);

DROP FUNCTION onboarding.stuck(interval);
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

-- ===========================================================================

-- Re-derive every delivery with 0.2.0's pipeline (the evidence is not
-- touched): fills last_received_at, and settles the outcomes the fixes of
-- this release change (see CHANGELOG.md).
SELECT onboarding.rebuild();

/*
 * onboarding 0.1.0 -> 0.2.0 — upgrade script.
 *
 * Every change to the SQL surface made for 0.2.0 is written twice: in
 * onboarding--0.2.0.sql (a fresh install) and here (an installed 0.1.0),
 * and the upgrade test (test/scripts/upgrade.sh) proves that both give the
 * same schema.  Evidence in the inbox is never rewritten by this script.
 */

\echo Use "ALTER EXTENSION onboarding UPDATE TO '0.2.0'" to load this file. \quit

-- Time received, kept apart from the provider's time (stuck() and
-- pending_documents use it for deliveries that carry no time)
ALTER TABLE onboarding.account ADD COLUMN last_received_at timestamptz;
ALTER TABLE onboarding.proposal ADD COLUMN last_received_at timestamptz;
ALTER TABLE onboarding.document ADD COLUMN last_received_at timestamptz;
ALTER TABLE onboarding.closure ADD COLUMN last_received_at timestamptz;

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

-- Celcoin reports a file once, as sent, and never again: its proposal's
-- analysis is what settles it.  Once the proposal has left analysis
-- (approved, rejected, expired, account created or failed) its files are
-- no longer waiting on anyone.
CREATE FUNCTION onboarding.document_settled(provider onboarding.provider, document_key text)
    RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT provider = 'celcoin'
       AND EXISTS (SELECT 1 FROM onboarding.proposal p
                    WHERE p.provider = 'celcoin'
                      AND p.proposal_key = split_part(document_settled.document_key, ':', 1)
                      AND p.status NOT IN ('created', 'pending', 'in_analysis', 'pending_data'))
    $$;
COMMENT ON FUNCTION onboarding.document_settled(onboarding.provider, text) IS
    'a Celcoin file whose proposal has left analysis: sent, and nothing more will come';

CREATE OR REPLACE VIEW onboarding.pending_documents AS
SELECT d.provider, d.document_key, d.tax_id, d.account_key, d.document_type, d.document_type_raw,
       d.signer, d.status,
       CASE WHEN d.status IN ('sent', 'awaiting_validation', 'resubmitted', 'typified')
            THEN 'provider' ELSE 'customer' END AS waiting_on,
       d.reason, coalesce(d.last_event_at, d.last_received_at) AS since
  FROM onboarding.document d
 WHERE d.status <> 'validated'
   AND NOT onboarding.document_settled(d.provider, d.document_key);
CREATE OR REPLACE VIEW onboarding.in_progress_entities AS
SELECT s.provider, s.entity, s.entity_key, s.status, s.last_event_at, s.last_received_at
  FROM (SELECT a.provider, 'account'::text AS entity, a.account_key AS entity_key,
               a.status::text AS status, a.last_event_at, a.last_received_at
          FROM onboarding.account a
         WHERE a.status IN ('requested', 'in_analysis', 'pending_data')
        UNION ALL
        SELECT p.provider, 'proposal', p.proposal_key, p.status::text, p.last_event_at,
               p.last_received_at
          FROM onboarding.proposal p
         WHERE p.status IN ('created', 'pending', 'in_analysis', 'pending_data', 'approved')
        UNION ALL
        SELECT p.provider, c.entity, p.proposal_key, c.status, p.last_event_at, p.last_received_at
          FROM onboarding.proposal p
         CROSS JOIN LATERAL (VALUES ('background_check', p.background_check::text),
                                    ('documentscopy', p.documentscopy::text)) c (entity, status)
         WHERE (p.background_check IN ('created', 'pending', 'processing')
                OR p.documentscopy IN ('created', 'pending', 'processing'))
           AND c.status IN ('created', 'pending', 'processing')
        UNION ALL
        SELECT d.provider, 'document', d.document_key, d.status::text, d.last_event_at,
               d.last_received_at
          FROM onboarding.document d
         WHERE d.status <> 'validated'
           AND NOT onboarding.document_settled(d.provider, d.document_key)
        UNION ALL
        SELECT c.provider, 'closure', c.account_key, c.status::text, c.last_event_at,
               c.last_received_at
          FROM onboarding.closure c
         WHERE c.status IN ('created', 'processing', 'pending', 'error', 'automatic')
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

-- Re-derive every delivery with 0.2.0's pipeline (the evidence is not
-- touched): fills last_received_at, and settles the outcomes the fixes of
-- this release change (see CHANGELOG.md).
SELECT onboarding.rebuild();

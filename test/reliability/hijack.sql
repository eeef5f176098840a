-- Run by test/scripts/privileges.sh as the ingest role, in a schema it owns
-- (evil): functions and operators with the names and argument types of the
-- built-ins (and of the extension's own functions) that ingestion could be
-- tempted to call unqualified.  Each one records the call in evil.calls
-- and returns a wrong answer, so that using one is seen twice: as a call,
-- and as a difference in the derived state.  Calls are counted by a
-- sequence and named in a WARNING, both of which survive the rollback of
-- the statement that made them.
CREATE SEQUENCE evil.calls;

CREATE FUNCTION evil.hit(fn text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF pg_catalog.int8le(pg_catalog.nextval('evil.calls'), 3) THEN
        RAISE WARNING 'planted function % called by %', fn, current_user;
    END IF;
END $$;

-- functions: text
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('lower'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.upper(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('upper'); RETURN 'HIJACKED'; END $$;
CREATE FUNCTION evil.btrim(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('btrim'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.length(text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('length'); RETURN -1; END $$;
CREATE FUNCTION evil.replace(text, text, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('replace'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.regexp_replace(text, text, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('regexp_replace'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.substr(text, int, int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('substr'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.textcat(text, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('textcat'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.quote_ident(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('quote_ident'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.quote_literal(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('quote_literal'); RETURN '''hijacked'''; END $$;
CREATE FUNCTION evil.hashtext(text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('hashtext'); RETURN 42; END $$;
CREATE FUNCTION evil.current_setting(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('current_setting'); RETURN 'UTC'; END $$;
CREATE FUNCTION evil.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('set_config'); RETURN $2; END $$;

-- functions: time, sequences, locks
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('now'); RETURN '2000-01-01 00:00:00+00'; END $$;
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('clock_timestamp'); RETURN '2000-01-01 00:00:00+00'; END $$;
CREATE FUNCTION evil.statement_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('statement_timestamp'); RETURN '2000-01-01 00:00:00+00'; END $$;
CREATE FUNCTION evil.to_timestamp(text, text) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('to_timestamp'); RETURN '2000-01-01 00:00:00+00'; END $$;
CREATE FUNCTION evil.timezone(text, timestamp) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('timezone'); RETURN '2000-01-01 00:00:00+00'; END $$;
CREATE FUNCTION evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('nextval'); RETURN 1; END $$;
CREATE FUNCTION evil.setval(regclass, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('setval'); RETURN 1; END $$;
CREATE FUNCTION evil.pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('pg_advisory_xact_lock'); END $$;

-- functions: jsonb
CREATE FUNCTION evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('jsonb_typeof'); RETURN 'string'; END $$;
CREATE FUNCTION evil.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('jsonb_build_object'); RETURN '{"hijacked": true}'; END $$;
CREATE FUNCTION evil.jsonb_build_object(VARIADIC text[]) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('jsonb_build_object'); RETURN '{"hijacked": true}'; END $$;
CREATE FUNCTION evil.to_jsonb(text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('to_jsonb'); RETURN '"hijacked"'; END $$;
CREATE FUNCTION evil.jsonb_hash(jsonb) RETURNS int LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('jsonb_hash'); RETURN 42; END $$;
CREATE FUNCTION evil.jsonb_hash_extended(jsonb, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('jsonb_hash_extended'); RETURN 42; END $$;
CREATE FUNCTION evil.jsonb_extract_path_text(jsonb, VARIADIC text[]) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('jsonb_extract_path_text'); RETURN 'hijacked'; END $$;
CREATE FUNCTION evil.jsonb_extract_path(jsonb, VARIADIC text[]) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('jsonb_extract_path'); RETURN '"hijacked"'; END $$;
CREATE FUNCTION evil.jsonb_object_keys(jsonb) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('jsonb_object_keys'); RETURN NEXT 'hijacked'; END $$;
CREATE FUNCTION evil.jsonb_array_elements(jsonb) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('jsonb_array_elements'); RETURN NEXT '"hijacked"'::jsonb; END $$;
CREATE FUNCTION evil.enum_range(anyenum) RETURNS anyarray LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('enum_range'); RETURN pg_catalog.enum_range($1); END $$;

-- the extension's own functions, ahead of schema onboarding
CREATE FUNCTION evil.taxid_normalize(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('taxid_normalize'); RETURN NULL; END $$;
CREATE FUNCTION evil.taxid_is_valid(text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('taxid_is_valid'); RETURN false; END $$;
CREATE FUNCTION evil.is_status(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('is_status'); RETURN true; END $$;
CREATE FUNCTION evil.rebuild() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('rebuild'); RETURN 0; END $$;

-- operators: each answers wrong
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('= text'); RETURN NOT pg_catalog.texteq($1, $2); END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE FUNCTION evil.text_ne(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('<> text'); RETURN pg_catalog.texteq($1, $2); END $$;
CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_ne);
CREATE FUNCTION evil.text_cat(text, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('|| text'); RETURN 'hijacked'; END $$;
CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_cat);
CREATE FUNCTION evil.text_like(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('~~ text'); RETURN true; END $$;
CREATE OPERATOR evil.~~ (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_like);
CREATE FUNCTION evil.text_re(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('~ text'); RETURN true; END $$;
CREATE OPERATOR evil.~ (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_re);

CREATE FUNCTION evil.jsonb_eq(jsonb, jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('= jsonb'); RETURN NOT pg_catalog.jsonb_eq($1, $2); END $$;
CREATE OPERATOR evil.= (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.jsonb_eq);
CREATE FUNCTION evil.jsonb_get(jsonb, text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('-> jsonb'); RETURN '"hijacked"'; END $$;
CREATE OPERATOR evil.-> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = evil.jsonb_get);
CREATE FUNCTION evil.jsonb_get_text(jsonb, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('->> jsonb'); RETURN 'hijacked'; END $$;
CREATE OPERATOR evil.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = evil.jsonb_get_text);
CREATE FUNCTION evil.jsonb_has(jsonb, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('? jsonb'); RETURN true; END $$;
CREATE OPERATOR evil.? (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = evil.jsonb_has);
CREATE FUNCTION evil.jsonb_contains(jsonb, jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('@> jsonb'); RETURN true; END $$;
CREATE OPERATOR evil.@> (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.jsonb_contains);
CREATE FUNCTION evil.jsonb_cat(jsonb, jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('|| jsonb'); RETURN '{"hijacked": true}'; END $$;
CREATE OPERATOR evil.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.jsonb_cat);

CREATE FUNCTION evil.int8_eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('= bigint'); RETURN NOT pg_catalog.int8eq($1, $2); END $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8_eq);
CREATE FUNCTION evil.int8_lt(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('< bigint'); RETURN NOT pg_catalog.int8lt($1, $2); END $$;
CREATE OPERATOR evil.< (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8_lt);
CREATE FUNCTION evil.int8_gt(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('> bigint'); RETURN NOT pg_catalog.int8gt($1, $2); END $$;
CREATE OPERATOR evil.> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8_gt);

CREATE FUNCTION evil.tstz_eq(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('= timestamptz'); RETURN NOT pg_catalog.timestamptz_eq($1, $2); END $$;
CREATE OPERATOR evil.= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.tstz_eq);
CREATE FUNCTION evil.tstz_lt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('< timestamptz'); RETURN NOT pg_catalog.timestamptz_lt($1, $2); END $$;
CREATE OPERATOR evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.tstz_lt);
CREATE FUNCTION evil.tstz_gt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('> timestamptz'); RETURN NOT pg_catalog.timestamptz_gt($1, $2); END $$;
CREATE OPERATOR evil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.tstz_gt);

CREATE FUNCTION evil.provider_eq(onboarding.provider, onboarding.provider) RETURNS boolean
    LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('= provider'); RETURN true; END $$;
CREATE OPERATOR evil.= (LEFTARG = onboarding.provider, RIGHTARG = onboarding.provider,
                        FUNCTION = evil.provider_eq);
CREATE FUNCTION evil.taxid_eq(onboarding.taxid, onboarding.taxid) RETURNS boolean
    LANGUAGE plpgsql AS $$
BEGIN PERFORM evil.hit('= taxid'); RETURN true; END $$;
CREATE OPERATOR evil.= (LEFTARG = onboarding.taxid, RIGHTARG = onboarding.taxid,
                        FUNCTION = evil.taxid_eq);

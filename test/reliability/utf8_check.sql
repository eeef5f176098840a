-- test/reliability/utf8_check.sql — is every text value the extension wrote
-- valid UTF-8?  A text value the C code built by cutting bytes (not
-- characters) is stored as it is: nothing checks it on the way into a table,
-- and it only shows later, when pg_restore's COPY refuses it.
-- convert_to(v, 'UTF8') verifies its argument and raises on an invalid byte
-- sequence, so a column is checked with one statement, and counted row by
-- row only when that statement raises.

-- true when v holds a byte sequence that is not valid UTF-8
CREATE FUNCTION public.utf8_bad(v text) RETURNS boolean
    LANGUAGE plpgsql STRICT
    AS $$
BEGIN
    PERFORM convert_to(v, 'UTF8');
    RETURN false;
EXCEPTION WHEN OTHERS THEN
    RETURN true;
END
$$;

-- the text columns of tables (by default: the inbox, every state table and
-- history) that hold invalid UTF-8, with how many rows do
CREATE FUNCTION public.utf8_bad_columns(tables regclass[] DEFAULT ARRAY[
        'onboarding.inbox', 'onboarding.account', 'onboarding.proposal', 'onboarding.document',
        'onboarding.closure', 'onboarding.history']::regclass[])
    RETURNS TABLE (col text, bad bigint)
    LANGUAGE plpgsql
    AS $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT a.attrelid::regclass::text AS tbl, a.attname
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = ANY (tables) AND a.attnum > 0 AND NOT a.attisdropped
                AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
              ORDER BY a.attrelid, a.attnum
    LOOP
        BEGIN
            EXECUTE format('SELECT count(convert_to(%I, ''UTF8'')) FROM %s', c.attname, c.tbl);
            CONTINUE;
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
        col := c.tbl || '.' || c.attname;
        EXECUTE format('SELECT count(*) FROM %s WHERE public.utf8_bad(%I)', c.tbl, c.attname) INTO bad;
        RETURN NEXT;
    END LOOP;
END
$$;

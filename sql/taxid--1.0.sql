/*
 * taxid 1.0 — install script.
 *
 * taxid: a Brazilian taxpayer number, a CPF (11 digits) or a CNPJ (14
 * characters, the alphanumeric CNPJ of IN RFB 2.229/2024 included), stored
 * as an int8 with its check digits verified on input.  The extension is
 * relocatable: every object is created in the schema CREATE EXTENSION
 * chose (normally public), so that sessions with the default search_path
 * find the operators and the index support of the type.  onboarding
 * requires it; onboarding.taxid is a domain over this type.
 *
 * Names are unqualified on purpose: during this script search_path is the
 * target schema, and pg_catalog is searched first.
 */

\echo Use "CREATE EXTENSION taxid" to load this file. \quit

CREATE TYPE taxid;

CREATE FUNCTION taxid_in(cstring) RETURNS taxid
    AS 'MODULE_PATHNAME', 'onboarding_taxid_in'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION taxid_out(taxid) RETURNS cstring
    AS 'MODULE_PATHNAME', 'onboarding_taxid_out'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION taxid_recv(internal) RETURNS taxid
    AS 'MODULE_PATHNAME', 'onboarding_taxid_recv'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION taxid_send(taxid) RETURNS bytea
    AS 'MODULE_PATHNAME', 'onboarding_taxid_send'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE taxid (
    INPUT = taxid_in,
    OUTPUT = taxid_out,
    RECEIVE = taxid_recv,
    SEND = taxid_send,
    LIKE = pg_catalog.int8
);

COMMENT ON TYPE taxid IS
    'Brazilian taxpayer number: CPF (11 digits) or CNPJ (14 characters, alphanumeric allowed)';

CREATE FUNCTION taxid_eq(taxid, taxid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_taxid_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION taxid_ne(taxid, taxid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_taxid_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION taxid_lt(taxid, taxid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_taxid_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION taxid_le(taxid, taxid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_taxid_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION taxid_gt(taxid, taxid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_taxid_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION taxid_ge(taxid, taxid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_taxid_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION taxid_cmp(taxid, taxid) RETURNS integer
    AS 'MODULE_PATHNAME', 'onboarding_taxid_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION taxid_hash(taxid) RETURNS integer
    AS 'MODULE_PATHNAME', 'onboarding_taxid_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION taxid_hash_extended(taxid, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'onboarding_taxid_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE OPERATOR = (
    LEFTARG = taxid, RIGHTARG = taxid, PROCEDURE = taxid_eq,
    COMMUTATOR = =, NEGATOR = <>,
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR <> (
    LEFTARG = taxid, RIGHTARG = taxid, PROCEDURE = taxid_ne,
    COMMUTATOR = <>, NEGATOR = =,
    RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR < (
    LEFTARG = taxid, RIGHTARG = taxid, PROCEDURE = taxid_lt,
    COMMUTATOR = >, NEGATOR = >=,
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR <= (
    LEFTARG = taxid, RIGHTARG = taxid, PROCEDURE = taxid_le,
    COMMUTATOR = >=, NEGATOR = >,
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR > (
    LEFTARG = taxid, RIGHTARG = taxid, PROCEDURE = taxid_gt,
    COMMUTATOR = <, NEGATOR = <=,
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR >= (
    LEFTARG = taxid, RIGHTARG = taxid, PROCEDURE = taxid_ge,
    COMMUTATOR = <=, NEGATOR = <,
    RESTRICT = scalargesel, JOIN = scalargejoinsel
);

CREATE OPERATOR CLASS taxid_ops
    DEFAULT FOR TYPE taxid USING btree AS
        OPERATOR 1 <,
        OPERATOR 2 <=,
        OPERATOR 3 =,
        OPERATOR 4 >=,
        OPERATOR 5 >,
        FUNCTION 1 taxid_cmp(taxid, taxid);

CREATE OPERATOR CLASS taxid_hash_ops
    DEFAULT FOR TYPE taxid USING hash AS
        OPERATOR 1 =,
        FUNCTION 1 taxid_hash(taxid),
        FUNCTION 2 taxid_hash_extended(taxid, bigint);

CREATE CAST (text AS taxid) WITH INOUT AS ASSIGNMENT;
CREATE CAST (taxid AS text) WITH INOUT AS ASSIGNMENT;

CREATE FUNCTION taxid_format(taxid) RETURNS text
    AS 'MODULE_PATHNAME', 'onboarding_taxid_format'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION taxid_format(taxid) IS
    'masked form: 000.000.000-00 or XX.XXX.XXX/XXXX-DD';

CREATE FUNCTION taxid_kind(taxid) RETURNS text
    AS 'MODULE_PATHNAME', 'onboarding_taxid_kind'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION taxid_kind(taxid) IS 'cpf or cnpj';

CREATE FUNCTION taxid_is_valid(text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'onboarding_taxid_is_valid'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION taxid_is_valid(text) IS
    'true when the text is a valid CPF or CNPJ; never raises';

CREATE FUNCTION taxid_normalize(text) RETURNS taxid
    AS 'MODULE_PATHNAME', 'onboarding_taxid_normalize'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION taxid_normalize(text) IS
    'the taxid, or NULL when the text is not a valid CPF or CNPJ';

CREATE FUNCTION taxid_problem(text) RETURNS text
    AS 'MODULE_PATHNAME', 'onboarding_taxid_problem'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION taxid_problem(text) IS
    'why the text is not a valid CPF or CNPJ, or NULL when it is';

--
-- onboarding.taxid in a session with the default search_path
--
-- onboarding.taxid is a domain over the type taxid of the extension taxid,
-- which lives in public.  A session that never names the schema onboarding
-- in its search_path compares, indexes and joins the state tables' tax_id
-- columns with the operators of the type, and uses the tax_id indexes.
--
-- (a fresh extension: the suites before this one leave deliveries behind;
-- dropping onboarding leaves taxid, which it requires, in place)
DROP EXTENSION onboarding;
CREATE EXTENSION onboarding;
SHOW search_path;
SET timezone = 'UTC';

-- where things live: the domain in onboarding, its base type in public
SELECT t.oid::regtype AS type, t.typtype, t.typbasetype::regtype AS base,
       b.typnamespace::regnamespace AS base_schema
  FROM pg_type t JOIN pg_type b ON b.oid = t.typbasetype
 WHERE t.oid = 'onboarding.taxid'::regtype;
SELECT x.extname, x.extnamespace::regnamespace AS schema, x.extrelocatable,
       (SELECT string_agg(r.extname, ', ') FROM pg_depend d JOIN pg_extension r ON r.oid = d.refobjid
         WHERE d.classid = 'pg_extension'::regclass AND d.objid = x.oid
           AND d.refclassid = 'pg_extension'::regclass) AS requires
  FROM pg_extension x WHERE x.extname IN ('onboarding', 'taxid') ORDER BY 1;
-- no operator of the schema onboarding takes a tax id any more
SELECT count(*) AS onboarding_taxid_operators
  FROM pg_operator
 WHERE oprnamespace = 'onboarding'::regnamespace
   AND 'taxid'::regtype IN (oprleft, oprright);

-- deliveries that carry tax ids: QI Tech and Fitbank accounts, Celcoin
-- proposals, Fitbank documents; one taxpayer on all of them
SELECT outcome FROM onboarding.ingest('{"webhook_type": "account_request.status_change",
    "key": "td-qi-1", "status": "pending_kyc_analysis", "event_datetime": "2026-06-01 09:05:00",
    "data": {"account_owner": {"name": "Ana Souza", "document_number": "615.120.612-63"}}}');
SELECT outcome FROM onboarding.ingest_text('{"Method": UpdateAccount, "AccountKey": "td-fb-1",
    "TaxNumber": "61512061263", "AccountConditionType": 2, "AccountStatus": 1,
    "SendDate": "2026-06-02T10:00:00"}');
SELECT outcome FROM onboarding.ingest('{"Method": "UpdatePersonDocument", "SendDate": "2026-06-02T10:05:00",
    "Document": {"DocumentKey": "td-doc-1", "DocumentType": 1, "TaxNumber": "615.120.612-63",
                 "DocumentStatus": 4}}');
SELECT outcome FROM onboarding.ingest('{"entity": "onboarding-proposal", "status": "CREATED",
    "createTimestamp": "2026-06-03T12:00:00Z",
    "body": {"proposalId": "td-cc-1", "documentNumber": "615.120.612-63", "proposalType": "PF"}}');
SELECT outcome FROM onboarding.ingest('{"entity": "onboarding-proposal", "status": "CREATED",
    "createTimestamp": "2026-06-03T12:00:00Z",
    "body": {"proposalId": "td-cc-2", "documentNumber": "12.ABC.345/01DE-35", "proposalType": "PJ"}}');
SELECT outcome, detail FROM onboarding.ingest('{"entity": "onboarding-proposal", "status": "CREATED",
    "createTimestamp": "2026-06-03T12:00:00Z",
    "body": {"proposalId": "td-cc-3", "documentNumber": "21985454222", "proposalType": "PF"}}');
-- and a few hundred other accounts, so that the tables are not trivial
INSERT INTO onboarding.inbox (payload)
SELECT jsonb_build_object('webhook_type', 'account_request.status_change', 'key', 'td-many-' || i,
                          'status', 'pending_bacen_validation',
                          'event_datetime', '2026-06-01 08:00:00',
                          'data', jsonb_build_object('account_owner', jsonb_build_object(
                              'document_number', lpad(b.base::text, 9, '0') || d1 || d2)))
  FROM generate_series(1, 400) i,
       LATERAL (SELECT 100000000 + i * 7919 AS base) b,
       LATERAL (SELECT sum(substr(lpad(b.base::text, 9, '0'), k, 1)::int * (11 - k)) % 11 AS r1
                  FROM generate_series(1, 9) k) s1,
       LATERAL (SELECT CASE WHEN s1.r1 < 2 THEN 0 ELSE 11 - s1.r1 END AS d1) c1,
       LATERAL (SELECT (sum(substr(lpad(b.base::text, 9, '0'), k, 1)::int * (12 - k)) + c1.d1 * 2) % 11 AS r2
                  FROM generate_series(1, 9) k) s2,
       LATERAL (SELECT CASE WHEN s2.r2 < 2 THEN 0 ELSE 11 - s2.r2 END AS d2) c2;
SELECT count(*) AS accounts, count(tax_id) AS with_tax_id FROM onboarding.account;
ANALYZE onboarding.account, onboarding.proposal, onboarding.document;

--
-- Equality with a literal, in any mask
--
SELECT provider, account_key, status, tax_id
  FROM onboarding.account WHERE tax_id = '615.120.612-63' ORDER BY 1, 2;
SELECT proposal_key, tax_id, taxid_kind(tax_id) AS kind, taxid_format(tax_id) AS formatted
  FROM onboarding.proposal WHERE tax_id IN ('61512061263', '12.abc.345/01de-35') ORDER BY 1;
-- the invalid number was kept raw, not as a tax id
SELECT proposal_key, tax_id, tax_id_raw FROM onboarding.proposal WHERE proposal_key = 'td-cc-3';
-- an invalid literal is an error, not a miss
SELECT account_key FROM onboarding.account WHERE tax_id = '615.120.612-64';

-- the operator the parser chose is the type's own, in public, and is the
-- equality of the btree and hash operator families of the type
CREATE TEMP VIEW td_by_literal AS
SELECT account_key FROM onboarding.account WHERE tax_id = '615.120.612-63';
SELECT d.refobjid::regoperator AS operator, o.oprnamespace::regnamespace AS schema,
       (SELECT string_agg(am.amname || ' ' || f.opfname, ', ' ORDER BY am.amname)
          FROM pg_amop a JOIN pg_opfamily f ON f.oid = a.amopfamily JOIN pg_am am ON am.oid = f.opfmethod
         WHERE a.amopopr = o.oid) AS families
  FROM pg_depend d JOIN pg_operator o ON o.oid = d.refobjid
 WHERE d.classid = 'pg_rewrite'::regclass
   AND d.objid = (SELECT oid FROM pg_rewrite WHERE ev_class = 'td_by_literal'::regclass)
   AND d.refclassid = 'pg_operator'::regclass;

-- and the index on the domain column is of the type's operator class
SELECT c.relname AS index, opc.opcname, opc.opcnamespace::regnamespace AS schema
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_opclass opc ON opc.oid = i.indclass[0]
 WHERE i.indrelid IN ('onboarding.account'::regclass, 'onboarding.proposal'::regclass,
                      'onboarding.document'::regclass)
   AND c.relname LIKE '%tax_id%'
 ORDER BY 1;

SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF)
SELECT provider, account_key FROM onboarding.account WHERE tax_id = '615.120.612-63';
EXPLAIN (COSTS OFF)
SELECT proposal_key FROM onboarding.proposal WHERE tax_id = '12.ABC.345/01DE-35';
EXPLAIN (COSTS OFF)
SELECT document_key FROM onboarding.document WHERE tax_id = '615.120.612-63';

--
-- Joins: between two domain columns, and with a table of the plain type
--
SELECT p.proposal_key, a.provider, a.account_key
  FROM onboarding.proposal p JOIN onboarding.account a ON a.tax_id = p.tax_id
 ORDER BY 1, 2, 3;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (COSTS OFF)
SELECT p.proposal_key, a.provider, a.account_key
  FROM onboarding.proposal p JOIN onboarding.account a ON a.tax_id = p.tax_id
 WHERE p.provider = 'celcoin';

CREATE TABLE td_customers (tax_id taxid PRIMARY KEY, segment text);
INSERT INTO td_customers VALUES ('615.120.612-63', 'retail'), ('12ABC34501DE35', 'business');
ANALYZE td_customers;
SELECT c.segment, a.provider, a.account_key
  FROM td_customers c JOIN onboarding.account a ON a.tax_id = c.tax_id
 ORDER BY 1, 2, 3;
EXPLAIN (COSTS OFF)
SELECT c.segment, a.provider, a.account_key
  FROM td_customers c JOIN onboarding.account a ON a.tax_id = c.tax_id;
EXPLAIN (COSTS OFF)
SELECT p.proposal_key, c.segment
  FROM onboarding.proposal p JOIN td_customers c ON c.tax_id = p.tax_id;
RESET enable_hashjoin;
RESET enable_mergejoin;

-- timeline() takes the domain and is inlined: the index, not a function scan
EXPLAIN (COSTS OFF)
SELECT count(*) FROM onboarding.timeline('615.120.612-63');
SELECT at, provider, entity, entity_key, to_status FROM onboarding.timeline('615.120.612-63');
RESET enable_bitmapscan;
RESET enable_seqscan;

--
-- The names of the specification keep working
--
SELECT onboarding.taxid_format('61512061263') AS cpf,
       onboarding.taxid_format('12abc34501de35') AS cnpj,
       onboarding.taxid_kind('61512061263') AS kind,
       onboarding.taxid_is_valid('615.120.612-64') AS valid,
       onboarding.taxid_normalize(' 615.120.612-63 ') AS normalized,
       pg_typeof(onboarding.taxid_normalize('61512061263')) AS normalized_type,
       onboarding.taxid_normalize('615.120.612-64') AS invalid_normalized,
       onboarding.taxid_problem('615.120.612-64') AS problem;
SELECT '615.120.612-63'::onboarding.taxid AS cast_to_domain,
       '615.120.612-63'::onboarding.taxid = '61512061263'::taxid AS domain_equals_base,
       onboarding.taxid_format(tax_id) AS wrapper_on_column
  FROM onboarding.account WHERE account_key = 'td-qi-1';
SELECT '21985454222'::onboarding.taxid;
-- the operators of 0.1.0 in the schema onboarding are gone: plain = does it
SELECT '61512061263'::onboarding.taxid OPERATOR(onboarding.=) '61512061263';

-- a search_path with onboarding as well (the old workaround) changes
-- nothing: no call is ambiguous, the same operator and index are used
SET search_path = "$user", public, onboarding;
SELECT taxid_format('61512061263') AS format, taxid_kind('12ABC34501DE35') AS kind,
       taxid_is_valid('61512061263') AS valid, taxid_normalize('61512061263') AS normalized;
SET search_path = onboarding, public;
SELECT taxid_format('61512061263') AS format, taxid_kind(tax_id) AS kind
  FROM account WHERE tax_id = '615.120.612-63' AND provider = 'qitech';
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF)
SELECT account_key FROM account WHERE tax_id = '615.120.612-63';
RESET enable_bitmapscan;
RESET enable_seqscan;
RESET search_path;

SELECT count(*) AS differences FROM onboarding.verify();
DROP TABLE td_customers;
DROP VIEW td_by_literal;

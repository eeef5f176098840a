--
-- taxid: CPF and CNPJ (numeric and alphanumeric) as a base type, the
-- extension taxid that onboarding requires
--
-- pg_regress loads it (--load-extension=taxid) into public, the schema of
-- the default search_path, which this suite never changes: every name of
-- the type is found unqualified.  The onboarding.taxid domain is the suite
-- taxid_domain.
--
\set VERBOSITY default

--
-- Vectors.  "expect" is the classification worked out by hand (and by an
-- independent checker) before the expected output was recorded; the query
-- after the table lists any vector where the type disagrees with it.
--
CREATE TEMP TABLE taxid_vectors (n int PRIMARY KEY, origin text, input text, expect boolean);
INSERT INTO taxid_vectors VALUES
    -- CPF, valid
    ( 1, 'seed 003 fitbank, sample fitbank', '615.120.612-63', true),
    ( 2, 'bare',                             '61512061263', true),
    ( 3, 'surrounding spaces',               '  615.120.612-63  ', true),
    ( 4, 'tab and newline around',           E'\t615.120.612-63\n', true),
    ( 5, 'mask in odd places',               '6151206126-3', true),
    ( 6, 'slashes and dots',                 '615/120/612.63', true),
    ( 7, 'seed 003 fitbank',                 '880.502.850-90', true),
    ( 8, 'seed 003 fitbank',                 '698.717.682-57', true),
    ( 9, 'seed 003 fitbank',                 '229.567.260-05', true),
    (10, 'seed 003 fitbank',                 '893.336.598-20', true),
    (11, 'seed 001 qitech, sample qitech',   '97564480084', true),
    (12, 'seed 001 qitech',                  '97634408077', true),
    (13, 'seed 003 fitbank',                 '05333581916', true),
    (14, 'seed 003 fitbank',                 '42922460843', true),
    (15, 'seed 003 fitbank',                 '08764039099', true),
    (16, 'smallest base',                    '000.000.001-91', true),
    (17, 'repeated nines',                   '999.999.999-99', false),
    (18, 'largest base, not repeated',       '999.999.998-08', true),
    -- CPF, invalid
    (19, 'seed 003 fitbank',                 '21985454222', false),
    (20, 'sample qitech',                    '12364480084', false),
    (21, 'last check digit changed',         '615.120.612-64', false),
    (22, 'check digits swapped',             '615.120.612-36', false),
    (23, 'a base digit changed',             '615.120.613-63', false),
    (24, 'repeated zeros',                   '00000000000', false),
    (25, 'repeated ones, masked',            '111.111.111-11', false),
    (26, 'repeated sevens',                  '77777777777', false),
    (27, 'letter in a CPF',                  '6151206126A', false),
    (28, 'letter O for zero',                '615.12O.612-63', false),
    (29, 'sample celcoin, lost leading zero', '1234567821', false),
    (30, 'sample celcoin, redacted',         '060***12', false),
    (31, 'sample celcoin, placeholder',      '<REDACTED_CPF>', false),
    (32, 'too short',                        '6151206126', false),
    (33, 'too long',                         '615.120.612-631', false),
    (34, 'blank inside',                     '615 120 612 63', false),
    (35, 'comma',                            '615,120,612-63', false),
    (36, 'country prefix',                   '+5561512061263', false),
    (37, 'quoted',                           '"615.120.612-63"', false),
    (38, 'control character',                E'615120612\x0163', false),
    (39, 'empty',                            '', false),
    (40, 'blanks only',                      E' \t\n ', false),
    (41, 'mask only',                        '..-/', false),
    (42, 'one digit',                        '7', false),
    -- CNPJ, numeric
    (43, 'seed 001 qitech, sample qitech',   '09080702000105', true),
    (44, 'masked',                           '09.080.702/0001-05', true),
    (45, 'sample celcoin',                   '48087438000185', true),
    (46, 'masked',                           '48.087.438/0001-85', true),
    (47, 'smallest base',                    '00.000.000/0001-91', true),
    (48, 'textbook example',                 '11.222.333/0001-81', true),
    (49, 'repeated ones (only zero is special)', '11.111.111/1111-80', true),
    (50, 'sample qitech',                    '12380702000105', false),
    (51, 'last check digit changed',         '09.080.702/0001-06', false),
    (52, 'check digits swapped',             '09.080.702/0001-50', false),
    (53, 'all zero',                         '00000000000000', false),
    (54, 'all zero, masked',                 '00.000.000/0000-00', false),
    (55, 'repeated ones',                    '11111111111111', false),
    (56, 'lost leading zero',                '9080702000105', false),
    (57, 'too long',                         '090807020001055', false),
    (58, 'letter O in check digits',         '09.080.702/0001-O5', false),
    -- CNPJ, alphanumeric
    (59, 'official example',                 '12.ABC.345/01DE-35', true),
    (60, 'bare',                             '12ABC34501DE35', true),
    (61, 'lower case',                       '12.abc.345/01de-35', true),
    (62, 'mixed case and blanks',            E' 12.AbC.345/01dE-35\r\n', true),
    (63, 'mask in odd places',               '1.2ABC3450.1DE-35', true),
    (64, 'another order position',           '12.ABC.345/01DF-16', true),
    (65, 'letters swapped',                  '12.ABC.345/01ED-26', true),
    (66, 'all letters',                      'AB.CDE.FGH/IJKL-80', true),
    (67, 'all A',                            'AA.AAA.AAA/AAAA-45', true),
    (68, 'largest base',                     'ZZ.ZZZ.ZZZ/ZZZZ-62', true),
    (69, 'official example, check digit changed', '12.ABC.345/01DE-36', false),
    (70, 'check digits swapped',             '12.ABC.345/01DE-53', false),
    (71, 'letters swapped, old digits',      '12.ABC.345/01ED-35', false),
    (72, 'letter in the last check digit',   '12.ABC.345/01DE-3A', false),
    (73, 'letter in the first check digit',  '12.abc.345/01de-a5', false),
    (74, 'too short',                        '12ABC34501DE3', false),
    (75, 'too long',                         '12ABC34501DE355', false),
    (76, 'underscore',                       '12.ABC.345/01DE_35', false),
    (77, 'blank inside',                     '12.ABC.345/01DE 35', false);

-- inputs are shown between single quotes, blanks and control characters escaped
SELECT n,
       '''' || replace(replace(replace(replace(input, E'\t', '\t'), E'\n', '\n'),
                               E'\r', '\r'), E'\x01', '\x01') || '''' AS input,
       taxid_is_valid(input) AS valid,
       taxid_normalize(input) AS normalized,
       taxid_kind(taxid_normalize(input)) AS kind,
       taxid_format(taxid_normalize(input)) AS formatted,
       taxid_problem(input) AS problem
  FROM taxid_vectors
 ORDER BY n;

-- vectors where the type disagrees with the hand classification: none
SELECT n, input, expect FROM taxid_vectors
 WHERE taxid_is_valid(input) IS DISTINCT FROM expect;

-- the three functions agree with each other on every vector
SELECT count(*) AS vectors,
       count(*) FILTER (WHERE taxid_is_valid(input)) AS valid,
       count(*) FILTER (WHERE taxid_is_valid(input)
                          <> (taxid_normalize(input) IS NOT NULL)
                       OR taxid_is_valid(input)
                          <> (taxid_problem(input) IS NULL)) AS disagreements
  FROM taxid_vectors;

-- the taxpayer numbers of the provider documents: one seed CPF is wrong
SELECT n, origin, input, taxid_problem(input) AS problem
  FROM taxid_vectors
 WHERE origin LIKE '%seed%' AND NOT taxid_is_valid(input)
 ORDER BY n;

-- every valid vector survives text output, the masked form and re-input
SELECT count(*) AS round_trips
  FROM taxid_vectors, taxid_normalize(input) AS t
 WHERE t IS NOT NULL
   AND t::text::taxid = t
   AND taxid_format(t)::taxid = t
   AND lower(taxid_format(t))::taxid = t;

-- a multibyte character (an en dash typed for the hyphen) is refused
SELECT taxid_is_valid('615.120.612–63') AS en_dash;

-- strict functions: NULL in, NULL out
SELECT taxid_is_valid(NULL) AS valid,
       taxid_normalize(NULL) AS normalized,
       taxid_problem(NULL) AS problem;

--
-- Input and output
--
SELECT '615.120.612-63'::taxid AS cpf,
       '12.abc.345/01de-35'::taxid AS cnpj,
       ' 09.080.702/0001-05 '::text::taxid AS from_text;

SELECT taxid_format('61512061263') AS cpf,
       taxid_format('12ABC34501DE35') AS cnpj,
       taxid_kind('61512061263') AS cpf_kind,
       taxid_kind('12ABC34501DE35') AS cnpj_kind;

-- invalid input raises invalid_text_representation, saying which rule failed
SELECT ''::taxid;
SELECT '615.120.612-64'::taxid;
SELECT '21985454222'::taxid;
SELECT '111.111.111-11'::taxid;
SELECT '6151206126A'::taxid;
SELECT '1234567821'::taxid;
SELECT '12ABC34501DE355'::taxid;
SELECT '060***12'::taxid;
SELECT '615 120 612 63'::taxid;
SELECT '12.ABC.345/01DE-36'::taxid;
SELECT '12.ABC.345/01DE-3A'::taxid;
SELECT '00.000.000/0000-00'::taxid;
SELECT 'not a number'::text::taxid;

-- the SQLSTATE
DO $$
BEGIN
    PERFORM '615.120.612-64'::taxid;
EXCEPTION WHEN invalid_text_representation THEN
    RAISE NOTICE 'caught %', SQLSTATE;
END
$$;

--
-- Comparison: every CPF before every CNPJ, each in canonical text order
--
SELECT a, b,
       a = b AS eq, a <> b AS ne,
       a < b AS lt, a <= b AS le,
       a > b AS gt, a >= b AS ge,
       taxid_cmp(a, b) AS cmp
  FROM (VALUES ('615.120.612-63'::taxid, '61512061263'::taxid),
               ('05333581916', '61512061263'),
               ('99999999808', '00000000191'),
               ('99999999808', '00000000000191'),
               ('12ABC34501DE35', '48087438000185'),
               ('12.abc.345/01de-35', '12ABC34501DE35')) AS v(a, b);

-- equal values hash alike, whatever mask they were written in
SELECT taxid_hash('615.120.612-63') = taxid_hash('61512061263') AS hash,
       taxid_hash_extended('12.abc.345/01de-35', 42)
         = taxid_hash_extended('12ABC34501DE35', 42) AS hash_extended,
       taxid_hash_extended('12ABC34501DE35', 0) & 4294967295
         = taxid_hash('12ABC34501DE35')::bigint & 4294967295 AS seed_zero_matches;

-- and exactly like the int8 they are stored as (a CPF as its 9 base digits,
-- a CNPJ as 10^9 plus its 12 base characters read in base 36)
SELECT taxid_hash('615.120.612-63') = hashint8(615120612) AS cpf_hash,
       taxid_hash_extended('12ABC34501DE35', 7)
         = hashint8extended(1000000000 + 139981599648639986, 7) AS cnpj_hash_extended;

--
-- As a column: keys, indexes, joins, sorting
--
-- (the default search_path: the type, its operators and classes are in public)
SHOW search_path;

CREATE TABLE taxid_people (tax_id taxid PRIMARY KEY, name text);
INSERT INTO taxid_people
SELECT taxid_normalize(input), 'vector ' || n
  FROM taxid_vectors
 WHERE taxid_is_valid(input)
   AND n IN (1, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 43, 45, 47, 48, 49,
             59, 64, 65, 66, 67, 68);

-- the same number in another mask is the same key
INSERT INTO taxid_people VALUES ('61512061263', 'duplicate');
INSERT INTO taxid_people VALUES ('12.abc.345/01de-35', 'duplicate');

-- a column of type taxid refuses what the type refuses
INSERT INTO taxid_people VALUES ('21985454222', 'seed with wrong check digits');

SELECT tax_id, taxid_kind(tax_id) AS kind, taxid_format(tax_id) AS formatted
  FROM taxid_people
 ORDER BY tax_id;

SELECT tax_id FROM taxid_people ORDER BY tax_id DESC LIMIT 3;

SELECT count(*) AS cpfs_before_first_cnpj
  FROM taxid_people
 WHERE tax_id < '00.000.000/0001-91';

ANALYZE taxid_people;

-- btree: equality and range lookups use the primary key
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT name FROM taxid_people WHERE tax_id = '615.120.612-63';
SELECT name FROM taxid_people WHERE tax_id = '615.120.612-63';
SELECT name FROM taxid_people WHERE tax_id = '12.abc.345/01de-35';
EXPLAIN (COSTS OFF)
SELECT tax_id, name FROM taxid_people WHERE tax_id >= '11.222.333/0001-81' ORDER BY tax_id;
SELECT tax_id, name FROM taxid_people WHERE tax_id >= '11.222.333/0001-81' ORDER BY tax_id;

-- hash index
CREATE INDEX taxid_people_hash ON taxid_people USING hash (tax_id);
SET enable_bitmapscan = off;
ALTER TABLE taxid_people DROP CONSTRAINT taxid_people_pkey;
EXPLAIN (COSTS OFF)
SELECT name FROM taxid_people WHERE tax_id = '09.080.702/0001-05';
SELECT name FROM taxid_people WHERE tax_id = '09.080.702/0001-05';
SELECT name FROM taxid_people WHERE tax_id = '12.ABC.345/0001-88';
-- an invalid literal is an error, not a miss
SELECT name FROM taxid_people WHERE tax_id = '09.080.702/0001-06';
RESET enable_bitmapscan;
RESET enable_seqscan;

-- hash join
CREATE TABLE taxid_accounts (account int PRIMARY KEY, owner taxid);
INSERT INTO taxid_accounts VALUES
    (1, '615.120.612-63'), (2, '12.ABC.345/01DE-35'), (3, '48087438000185'),
    (4, '97564480084'), (5, '09080702000105'), (6, '12.abc.345/01de-35'),
    (7, '11.222.333/0001-81');
ANALYZE taxid_accounts;
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF)
SELECT a.account, p.tax_id
  FROM taxid_accounts a JOIN taxid_people p ON p.tax_id = a.owner;
SELECT a.account, p.tax_id, p.name
  FROM taxid_accounts a JOIN taxid_people p ON p.tax_id = a.owner
 ORDER BY a.account;
RESET enable_mergejoin;
RESET enable_nestloop;

-- grouping: the two spellings of the official example are one group
SELECT owner, count(*) FROM taxid_accounts GROUP BY owner ORDER BY owner;

--
-- Binary send and receive: COPY a taxid column out and back in
--
-- (through a file named after the backend, read back by a program that
-- removes it, so parallel runs do not collide and nothing is left behind)
SELECT '/tmp/onboarding_taxid_' || pg_backend_pid() || '.bin' AS copy_file \gset
SELECT format('cat %1$s; rm -f %1$s', :'copy_file') AS copy_read \gset
COPY taxid_accounts TO :'copy_file' WITH (FORMAT binary);
CREATE TABLE taxid_accounts_copy (LIKE taxid_accounts);
COPY taxid_accounts_copy FROM PROGRAM :'copy_read' WITH (FORMAT binary);
SELECT count(*) AS copied,
       count(*) FILTER (WHERE a.owner = c.owner) AS identical
  FROM taxid_accounts a JOIN taxid_accounts_copy c USING (account);
SELECT * FROM taxid_accounts_copy ORDER BY account;

-- receive validates like input: binary text from a text column is read as a
-- taxid, masks accepted, wrong check digits refused
CREATE TABLE taxid_raw (account int, owner text);
INSERT INTO taxid_raw VALUES (8, ' 880.502.850-90 '), (9, '12.abc.345/01df-16');
COPY taxid_raw TO :'copy_file' WITH (FORMAT binary);
COPY taxid_accounts_copy FROM PROGRAM :'copy_read' WITH (FORMAT binary);
SELECT * FROM taxid_accounts_copy WHERE account > 7 ORDER BY account;
TRUNCATE taxid_raw;
INSERT INTO taxid_raw VALUES (10, '21985454222');
COPY taxid_raw TO :'copy_file' WITH (FORMAT binary);
COPY taxid_accounts_copy FROM PROGRAM :'copy_read' WITH (FORMAT binary);

-- the binary form is the canonical text
SELECT taxid_send('615.120.612-63') AS cpf,
       taxid_send('12.abc.345/01de-35') AS cnpj;

DROP TABLE taxid_accounts, taxid_accounts_copy, taxid_people, taxid_raw;

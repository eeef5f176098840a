-- Every object of the extension has a comment (0.3.0): \d+, \dT+ and \df+
-- describe it.  Lists the members of the extension without one: none.
-- (The row type of a table or view and the array type of a type are made
-- with it and described by it; from PostgreSQL 17 they are listed as
-- members too, so they are left out here.)
CREATE TEMP VIEW members AS
SELECT d.classid, d.objid, d.objsubid,
       pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS object
  FROM pg_catalog.pg_depend d
 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'onboarding')
   AND d.deptype = 'e'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t
                    WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = d.objid
                      AND (t.typrelid <> 0 OR t.typcategory = 'A'));
SELECT object AS without_comment
  FROM members
 WHERE pg_catalog.obj_description(objid, classid::pg_catalog.regclass::text) IS NULL
 ORDER BY 1;
-- ... and how many members that is, by kind (a new object must bring its comment)
SELECT pg_catalog.split_part(object, ' ', 1) AS kind, pg_catalog.count(*) AS members
  FROM members GROUP BY 1 ORDER BY 1;

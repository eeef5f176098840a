-- Every object of the extension has a comment (0.3.0): \d+, \dT+ and \df+
-- describe it.  Lists the members of the extension without one: none.
SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS without_comment
  FROM pg_catalog.pg_depend d
 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'onboarding')
   AND d.deptype = 'e'
   AND pg_catalog.obj_description(d.objid, d.classid::pg_catalog.regclass::text) IS NULL
 ORDER BY 1;
-- ... and how many members that is, by kind (a new object must bring its comment)
SELECT pg_catalog.split_part(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), ' ', 1) AS kind,
       pg_catalog.count(*) AS members
  FROM pg_catalog.pg_depend d
 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'onboarding')
   AND d.deptype = 'e'
 GROUP BY 1 ORDER BY 1;

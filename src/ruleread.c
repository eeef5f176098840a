/*-------------------------------------------------------------------------
 *
 * ruleread.c
 *		The rule tables read without SQL: a heap scan, sorted in memory.
 *
 * Every backend compiles the rule tables (rules.c, extract.c) the first
 * time it derives a delivery.  Through SPI each of the eight reads is a
 * query parsed, analysed and planned in a backend whose catalog caches are
 * still cold (operators, statistics, indexes of every table it names): in
 * 0.2.0 they were most of a connection's first delivery (18-21 ms against
 * 1.1-1.3 ms for its second).  The tables are small and read whole, so a
 * sequential scan under the active snapshot, a sort on the columns the
 * loader needs its rows in, and tuples of just the columns it asked for do
 * the same for the price of opening the relation (through the table access
 * method, whichever the table has).
 *
 * As the SPI reads did (they ran as the inbox's owner, without row-level
 * security), this reads every row whatever the caller's privileges: the
 * rules are the same for every role that delivers.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

/* One row, as read: the values of every attribute the caller named */
typedef struct RuleRow
{
	Datum	   *values;
	bool	   *nulls;
} RuleRow;

/*
 * What the sort compares: positions in RuleRow and each key's type.  The
 * comparisons are written out for the few types the rule tables sort on
 * (integers, booleans, text in byte order, enums in label order), so that
 * a cold backend does not look up operator classes to sort a few hundred
 * rows.
 */
typedef struct RuleSort
{
	int			nkeys;
	int		   *pos;
	Oid		   *type;
	TypeCacheEntry **enums;		/* by key: the enum's type cache entry, or NULL */
} RuleSort;

/* Compare two non-null values of one of the types above. */
static int
rule_value_cmp(Oid type, TypeCacheEntry *tc, Datum a, Datum b)
{
	switch (type)
	{
		case INT2OID:
			return (int) DatumGetInt16(a) - (int) DatumGetInt16(b);
		case INT4OID:
			return DatumGetInt32(a) < DatumGetInt32(b) ? -1 : DatumGetInt32(a) > DatumGetInt32(b);
		case INT8OID:
			return DatumGetInt64(a) < DatumGetInt64(b) ? -1 : DatumGetInt64(a) > DatumGetInt64(b);
		case BOOLOID:
			return (int) DatumGetBool(a) - (int) DatumGetBool(b);
		case TEXTOID:
			{
				text	   *x = DatumGetTextPP(a);
				text	   *y = DatumGetTextPP(b);
				int			lx = VARSIZE_ANY_EXHDR(x);
				int			ly = VARSIZE_ANY_EXHDR(y);
				int			c = memcmp(VARDATA_ANY(x), VARDATA_ANY(y), Min(lx, ly));

				return c != 0 ? c : (lx > ly) - (lx < ly);
			}
		default:
			return compare_values_of_enum(tc, DatumGetObjectId(a), DatumGetObjectId(b));
	}
}

/* Compare two rows on the sort keys; NULLs last, as ORDER BY puts them. */
static int
rule_row_cmp(const void *a, const void *b, void *arg)
{
	const RuleRow *x = (const RuleRow *) a;
	const RuleRow *y = (const RuleRow *) b;
	const RuleSort *s = (const RuleSort *) arg;

	for (int k = 0; k < s->nkeys; k++)
	{
		int			p = s->pos[k];
		int			c;

		if (x->nulls[p] || y->nulls[p])
		{
			if (x->nulls[p] != y->nulls[p])
				return x->nulls[p] ? 1 : -1;
			continue;
		}
		c = rule_value_cmp(s->type[k], s->enums[k], x->values[p], y->values[p]);
		if (c != 0)
			return c;
	}
	return 0;
}

/* Position of a name in names[0 .. n-1], appending it when absent. */
static int
rule_name_pos(const char **names, int *n, const char *name)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	names[*n] = name;
	return (*n)++;
}

/*
 * The rows of onboarding.<table>, in the order of the columns order[0 ..
 * norder-1] (text in byte order, as under the C collation; enums in label
 * order), as tuples of the columns columns[0 .. ncols-1]: *desc describes
 * them, and a column is
 * read with SPI_getvalue / SPI_getbinval by its 1-based position in
 * columns, as in a query's result.  Allocated in the current memory
 * context.  Returns the number of rows; *rows is NULL when there are none.
 */
int
onboarding_rule_rows(const char *table, const char *const *columns, int ncols,
					 const char *const *order, int norder, TupleDesc *desc, HeapTuple **rows)
{
	Relation	rel = table_open(onboarding_relation_oid(table), AccessShareLock);
	TupleDesc	reldesc = RelationGetDescr(rel);
	int			nnames = 0;
	const char **names = palloc(sizeof(char *) * (ncols + norder));
	AttrNumber *attnums;
	RuleSort	sort;
	RuleRow    *read = NULL;
	int			nread = 0;
	int			room = 0;
	Snapshot	snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
	TableScanDesc scan;
	TupleTableSlot *slot;

	/* every attribute named, once: the columns, then the sort keys */
	for (int i = 0; i < ncols; i++)
		(void) rule_name_pos(names, &nnames, columns[i]);
	sort.nkeys = norder;
	sort.pos = palloc(sizeof(int) * Max(norder, 1));
	sort.type = palloc(sizeof(Oid) * Max(norder, 1));
	sort.enums = palloc0(sizeof(TypeCacheEntry *) * Max(norder, 1));
	for (int k = 0; k < norder; k++)
		sort.pos[k] = rule_name_pos(names, &nnames, order[k]);
	attnums = palloc(sizeof(AttrNumber) * nnames);
	for (int i = 0; i < nnames; i++)
	{
		attnums[i] = attnameAttNum(rel, names[i], false);
		if (attnums[i] <= 0)
			elog(ERROR, "onboarding.%s has no column \"%s\"", table, names[i]);
	}
	for (int k = 0; k < norder; k++)
	{
		Oid			typid = TupleDescAttr(reldesc, attnums[sort.pos[k]] - 1)->atttypid;

		sort.type[k] = typid;
		if (typid != INT2OID && typid != INT4OID && typid != INT8OID && typid != BOOLOID &&
			typid != TEXTOID)
		{
			if (!type_is_enum(typid))
				elog(ERROR, "column \"%s\" of onboarding.%s is not sorted here", order[k], table);
			sort.enums[k] = lookup_type_cache(typid, 0);
		}
	}

	/* read */
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		RuleRow    *r;

		if (nread == room)
		{
			room = room == 0 ? 64 : room * 2;
			read = read == NULL ? palloc(sizeof(RuleRow) * room) :
				repalloc(read, sizeof(RuleRow) * room);
		}
		r = &read[nread++];
		slot_getallattrs(slot);
		r->values = palloc(sizeof(Datum) * nnames);
		r->nulls = palloc(sizeof(bool) * nnames);
		for (int i = 0; i < nnames; i++)
		{
			Form_pg_attribute att = TupleDescAttr(reldesc, attnums[i] - 1);

			r->nulls[i] = slot->tts_isnull[attnums[i] - 1];
			r->values[i] = r->nulls[i] ? (Datum) 0 :
				datumCopy(slot->tts_values[attnums[i] - 1], att->attbyval, att->attlen);
		}
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);

	if (nread > 1 && norder > 0)
		qsort_arg(read, nread, sizeof(RuleRow), rule_row_cmp, &sort);

	/* the result: tuples of the columns asked for */
	*desc = CreateTemplateTupleDesc(ncols);
	for (int i = 0; i < ncols; i++)
		TupleDescCopyEntry(*desc, i + 1, reldesc, attnums[i]);
	*rows = nread > 0 ? palloc(sizeof(HeapTuple) * nread) : NULL;
	for (int r = 0; r < nread; r++)
		(*rows)[r] = heap_form_tuple(*desc, read[r].values, read[r].nulls);

	table_close(rel, AccessShareLock);
	return nread;
}

/*
 * Is a column's type an enum?  The rule tables' are text, arrays, integers,
 * booleans and the enum onboarding.provider: those are told without a
 * catalog lookup, and the enum met last is remembered.
 */
static bool
rule_type_is_enum(Oid type)
{
	static Oid	enum_type = InvalidOid;

	if (type == enum_type)
		return true;
	if (type == TEXTOID || type == TEXTARRAYOID || type == BOOLOID || type == INT4OID ||
		!type_is_enum(type))
		return false;
	enum_type = type;
	return true;
}

/*
 * Column col (1-based) of a row onboarding_rule_rows returned, as text (a
 * palloc'd string), or NULL: what SPI_getvalue gives, without looking up
 * and calling an output function for the types the rule tables mostly
 * have (text, enums), which a backend's first delivery would pay for each
 * of their few hundred rows.
 */
char *
onboarding_rule_text(HeapTuple tup, TupleDesc desc, int col)
{
	Oid			type = TupleDescAttr(desc, col - 1)->atttypid;
	bool		isnull;
	Datum		v = heap_getattr(tup, col, desc, &isnull);

	if (isnull)
		return NULL;
	if (type == TEXTOID)
		return TextDatumGetCString(v);
	if (rule_type_is_enum(type))
		return onboarding_enum_label(DatumGetObjectId(v));
	return SPI_getvalue(tup, desc, col);
}

/*
 * A hash of one row as onboarding_rule_rows returns it, from column first
 * (1-based) on, mixed into seed:
 * each column's null flag and bytes (a varlena's content, detoasted, so
 * that the same values hash alike however they are stored; an enum's
 * label, so that they hash alike in every database).  Kept
 * extractions (extraction.c) are told apart by the hash of the rules that
 * read them.
 */
uint64
onboarding_rule_row_hash(HeapTuple tup, TupleDesc desc, int first, uint64 seed)
{
	for (int i = first - 1; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		isnull;
		Datum		v = heap_getattr(tup, i + 1, desc, &isnull);

		if (isnull)
			seed = hash_bytes_uint32_extended(0x6e756c6c, seed);
		else if (rule_type_is_enum(att->atttypid))
		{
			/* by label: an enum's OIDs differ from one database to another */
			char	   *label = onboarding_enum_label(DatumGetObjectId(v));

			seed = hash_bytes_extended((const unsigned char *) label, strlen(label), seed);
			pfree(label);
		}
		else if (att->attbyval)
		{
			int64		bytes = 0;

			store_att_byval(&bytes, v, att->attlen);
			seed = hash_bytes_extended((const unsigned char *) &bytes, att->attlen, seed);
		}
		else if (att->attlen == -1)
		{
			struct varlena *p = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(v));

			seed = hash_bytes_extended((const unsigned char *) VARDATA_ANY(p),
									   VARSIZE_ANY_EXHDR(p), seed);
		}
		else
			seed = hash_bytes_extended((const unsigned char *) DatumGetPointer(v),
									   att->attlen > 0 ? att->attlen :
									   (int) strlen(DatumGetCString(v)), seed);
	}
	return seed;
}

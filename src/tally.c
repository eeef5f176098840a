/*-------------------------------------------------------------------------
 *
 * tally.c
 *		The counts behind onboarding.daily and onboarding.funnel, kept as
 *		deliveries are stored and state is written, so that the reports
 *		read a few rows instead of the whole inbox or every state table.
 *
 * Two tables of counts, written the same way:
 *
 *	- onboarding.daily_tally: per UTC day of arrival, provider and outcome,
 *	  how many deliveries there are.  Every change goes through here: a
 *	  delivery stored (inbox.c, restores included), a delivery's provider or
 *	  outcome rewritten by a late delivery, rebuild(), erase() (store.c, on
 *	  the version it replaces).
 *	- onboarding.status_tally (0.3.0): per provider, entity and status, how
 *	  many entities are in it (a proposal counts once as a proposal and once
 *	  per check it has).  store.c counts every state row it creates, updates
 *	  or deletes, from the version on disk and the version written; a user's
 *	  own INSERT, UPDATE, DELETE, COPY or TRUNCATE of a state table is counted
 *	  by the tables' statement triggers (onboarding_state_counted,
 *	  onboarding_state_truncated, from their transition tables).
 *
 * Each backend adds to rows of its own (slot: its backend number, which no
 * other live backend has), so that two transactions delivering at once
 * never wait for each other on a count; a row another transaction holds
 * (a merge by compact_daily_tally() or compact_status_tally(), a prepared
 * transaction of the same backend) is passed over for one of the backend's
 * spare slots, so that a delivery never waits on a count at all.  Changes
 * are gathered in memory and written when the inbox's statement ends, when
 * rebuild() ends a unit of work, and before commit (after store.c has
 * written its window): row by row through the table access method and the
 * executor's index maintenance (as store.c writes state), or, when a user
 * has added a trigger, a rule, a column or an index to the table, with one
 * INSERT ... ON CONFLICT, so that what they added takes part.
 * Subtransactions: what was gathered when one began is remembered and given
 * back if it rolls back (what it wrote itself is undone by the rollback);
 * a transaction that aborts forgets everything.  store.c registers its
 * callbacks first, so that ours run before its own: a subtransaction's
 * start is remembered here before store.c writes its window into it.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "compat.h"

/* The two tables of counts */
typedef enum TallyKind
{
	TALLY_DAILY = 0,			/* onboarding.daily_tally */
	TALLY_STATUS,				/* onboarding.status_tally */
	TALLY_SPAN,					/* onboarding.stage_tally (span.c) */
	TALLY_NKINDS
} TallyKind;

/*
 * A count: daily (day, provider, outcome), status (provider, entity,
 * status) or span (provider, entity, status, bucket: the status a name of
 * tally_status_names); the fields of the other kinds stay zero.
 */
typedef struct TallyKey
{
	int32		kind;			/* TallyKind */
	DateADT		day;			/* daily */
	int32		provider;		/* daily: ObProvider; OB_PROVIDER_NONE: none */
	int32		outcome;		/* daily: ObOutcome */
	Oid			provider_label; /* status: the provider's enum label */
	int32		entity;			/* status: index in onboarding_tally_entities;
								 * span: in tally_status_names */
	Oid			status_label;	/* status: the status's enum label */
	int32		status_name;	/* span: index in tally_status_names */
	int32		bucket;			/* span: onboarding.span_bucket() of the time spent */
} TallyKey;

typedef struct TallyEntry
{
	TallyKey	k;
	int64		n;
} TallyEntry;

/*
 * Where this backend's row of a count was last written (its latest version,
 * as far as we know): the next change goes there at once instead of
 * descending the primary key and walking the row's chain of versions (one
 * per change since the page was last pruned).  Checked before use: the
 * version must still be there, be the latest, hold the same key and be
 * held by nobody; else the key is looked up as before.
 */
typedef struct TallyPlace
{
	TallyKey	k;
	Oid			relid;			/* the table it is in */
	ItemPointerData tid;
	int			spare;			/* which of the backend's slots */
} TallyPlace;

static HTAB *tally_places = NULL;	/* TallyPlace, for the backend's life */

/* status_tally's entity names (a proposal's checks are entities of their own) */
const char *const onboarding_tally_entities[OB_TALLY_NENTITIES] = {
	"account", "proposal", "background_check", "documentscopy", "document", "closure"
};

/* What was gathered when a subtransaction began */
typedef struct TallySave
{
	SubTransactionId subid;
	int			n;
	TallyEntry *entries;
} TallySave;

static MemoryContext tally_cxt = NULL;	/* the gathered changes */
static HTAB *tally = NULL;
static List *tally_saves = NIL;	/* TallySave *, innermost first */
static SPIPlanPtr tally_plans[TALLY_NKINDS];

static void tally_xact(XactEvent event, void *arg);
static void tally_subxact(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg);

/* The UTC day of a time (the day of 'infinity' is infinity). */
static DateADT
tally_day(TimestampTz at)
{
	if (TIMESTAMP_IS_NOBEGIN(at))
		return DATEVAL_NOBEGIN;
	if (TIMESTAMP_IS_NOEND(at))
		return DATEVAL_NOEND;
	/* floor division: before 2000-01-01 the quotient rounds the other way */
	return (DateADT) ((at - (at < 0 ? USECS_PER_DAY - 1 : 0)) / USECS_PER_DAY);
}

/* Forget everything gathered. */
static void
tally_forget(void)
{
	if (tally_cxt != NULL)
		MemoryContextDelete(tally_cxt);
	tally_cxt = NULL;
	tally = NULL;
	tally_saves = NIL;			/* in TopTransactionContext: gone with it */
}

/* At load: follow every transaction and subtransaction from the start. */
void
onboarding_tally_init(void)
{
	RegisterXactCallback(tally_xact, NULL);
	RegisterSubXactCallback(tally_subxact, NULL);
}

/* Are changes gathered? */
static bool
tally_pending(void)
{
	return tally != NULL && hash_get_num_entries(tally) > 0;
}

/* Forget what is gathered, keeping the table. */
static void
tally_clear(void)
{
	HASH_SEQ_STATUS seq;
	TallyEntry *e;

	if (tally == NULL)
		return;
	/* dynahash lets a scan remove the entry it just returned */
	hash_seq_init(&seq, tally);
	while ((e = (TallyEntry *) hash_seq_search(&seq)) != NULL)
		(void) hash_search(tally, &e->k, HASH_REMOVE, NULL);
}

/* One-dimensional array of n elements of a built-in type. */
static Datum
tally_array(Datum *elems, bool *nulls, int n, Oid type)
{
	int16		len;
	bool		byval;
	char		align;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &len, &byval, &align);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type, len, byval, align));
}

/* The table of gathered changes, created on first use. */
static HTAB *
tally_table(void)
{
	if (tally == NULL)
	{
		HASHCTL		ctl;

		tally_cxt = AllocSetContextCreate(TopMemoryContext, "onboarding tally",
										  ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(TallyKey);
		ctl.entrysize = sizeof(TallyEntry);
		ctl.hcxt = tally_cxt;
		tally = hash_create("onboarding tally", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return tally;
}

/*
 * Count delta deliveries received at received_at with this provider and
 * outcome (a delivery stored: +1; rewritten: -1 as it was, +1 as it is).
 */
void
onboarding_tally_delivery(TimestampTz received_at, ObProvider provider, ObOutcome outcome,
						  int delta)
{
	TallyKey	k;
	TallyEntry *e;
	bool		found;

	memset(&k, 0, sizeof(k));
	k.kind = TALLY_DAILY;
	k.day = tally_day(received_at);
	k.provider = (int32) provider;
	k.outcome = (int32) outcome;
	e = hash_search(tally_table(), &k, HASH_ENTER, &found);
	if (!found)
		e->n = 0;
	e->n += delta;
}

/*
 * Count delta entities of a provider and entity in a status (labels: the
 * enum values' OIDs as stored; entity: an index in
 * onboarding_tally_entities).  A row created: +1; updated: -1 as it was,
 * +1 as it is; deleted: -1.
 */
void
onboarding_tally_status(Oid provider_label, int entity, Oid status_label, int delta)
{
	TallyKey	k;
	TallyEntry *e;
	bool		found;

	Assert(entity >= 0 && entity < OB_TALLY_NENTITIES);
	memset(&k, 0, sizeof(k));
	k.kind = TALLY_STATUS;
	k.provider_label = provider_label;
	k.entity = entity;
	k.status_label = status_label;
	e = hash_search(tally_table(), &k, HASH_ENTER, &found);
	if (!found)
		e->n = 0;
	e->n += delta;
}

/*
 * The entities and statuses history names (text, and a count's key is
 * fixed-size): each name once, for the backend's life.  They are few, the
 * entities and statuses of the rule tables.
 */
static char **tally_status_names = NULL;
static int	tally_nstatus_names = 0;
static int	tally_status_names_size = 0;

/* The index of a status name in tally_status_names, added when new. */
static int32
tally_status_name(const char *status)
{
	for (int i = 0; i < tally_nstatus_names; i++)
		if (strcmp(tally_status_names[i], status) == 0)
			return i;
	if (tally_nstatus_names == tally_status_names_size)
	{
		tally_status_names_size = Max(16, 2 * tally_status_names_size);
		tally_status_names = tally_status_names == NULL ?
			MemoryContextAlloc(TopMemoryContext, tally_status_names_size * sizeof(char *)) :
			repalloc(tally_status_names, tally_status_names_size * sizeof(char *));
	}
	tally_status_names[tally_nstatus_names] = MemoryContextStrdup(TopMemoryContext, status);
	return tally_nstatus_names++;
}

/*
 * Count delta spans of history (span.c) of a provider and entity spent in
 * a status, in a bucket of onboarding.span_bucket().
 */
void
onboarding_tally_span(Oid provider_label, const char *entity, const char *status, int32 bucket,
					  int delta)
{
	TallyKey	k;
	TallyEntry *e;
	bool		found;

	memset(&k, 0, sizeof(k));
	k.kind = TALLY_SPAN;
	k.provider_label = provider_label;
	k.entity = tally_status_name(entity);
	k.status_name = tally_status_name(status);
	k.bucket = bucket;
	e = hash_search(tally_table(), &k, HASH_ENTER, &found);
	if (!found)
		e->n = 0;
	e->n += delta;
}

/*
 * The status columns of a state table (table: OB_S_ACCOUNT ..
 * OB_S_CLOSURE), found by name in desc, and the entity each one counts.
 */
void
onboarding_tally_cols(int table, TupleDesc desc, ObTallyCols *cols)
{
	static const struct
	{
		int			table;
		const char *column;
		int			entity;
	}			status_columns[] = {
		{OB_S_ACCOUNT, "status", 0},
		{OB_S_PROPOSAL, "status", 1},
		{OB_S_PROPOSAL, "background_check", 2},
		{OB_S_PROPOSAL, "documentscopy", 3},
		{OB_S_DOCUMENT, "status", 4},
		{OB_S_CLOSURE, "status", 5},
	};

	memset(cols, 0, sizeof(*cols));
	cols->table = table;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped)
			continue;
		if (strcmp(NameStr(a->attname), "provider") == 0)
			cols->provider = a->attnum;
		if (strcmp(NameStr(a->attname), onboarding_state_tables[table].keycol) == 0 &&
			a->atttypid == TEXTOID)
			cols->key = a->attnum;
		if (strcmp(NameStr(a->attname), "reason") == 0 && a->atttypid == TEXTOID)
			cols->reason = a->attnum;
		if (strcmp(NameStr(a->attname), "provider_status") == 0 && a->atttypid == TEXTOID)
			cols->provider_status = a->attnum;
		if (strcmp(NameStr(a->attname), "message") == 0 && a->atttypid == TEXTOID)
			cols->message = a->attnum;
		if (strcmp(NameStr(a->attname), "last_event_at") == 0 && a->atttypid == TIMESTAMPTZOID)
			cols->last_event_at = a->attnum;
		for (int c = 0; c < lengthof(status_columns); c++)
			if (status_columns[c].table == table &&
				strcmp(NameStr(a->attname), status_columns[c].column) == 0)
			{
				cols->att[cols->n] = a->attnum;
				cols->entity[cols->n] = status_columns[c].entity;
				cols->n++;
			}
	}
	if (cols->provider == InvalidAttrNumber)
		cols->n = 0;
}

/* Count a state row of these values (a table's whole row) sign times. */
void
onboarding_tally_values(const ObTallyCols *cols, const Datum *values, const bool *nulls, int sign)
{
	if (cols->n == 0 || nulls[cols->provider - 1])
		return;
	for (int c = 0; c < cols->n; c++)
		if (!nulls[cols->att[c] - 1])
			onboarding_tally_status(DatumGetObjectId(values[cols->provider - 1]), cols->entity[c],
									DatumGetObjectId(values[cols->att[c] - 1]), sign);
	onboarding_open_values(cols, values, nulls, sign);
}

/* Count the state row a slot holds sign times (none: not a state table). */
void
onboarding_tally_slot(const ObTallyCols *cols, TupleTableSlot *slot, int sign)
{
	if (cols->n == 0)
		return;
	slot_getallattrs(slot);
	onboarding_tally_values(cols, slot->tts_values, slot->tts_isnull, sign);
}

/*
 * Each table's columns: its primary key's, in order (slot last), then the
 * count.  At most TALLY_MAXCOLS of them.
 */
#define TALLY_MAXCOLS 6
#define TALLY_MAXKEYS (TALLY_MAXCOLS - 1)

typedef struct TallyDef
{
	const char *relname;
	const char *compact;		/* the function that merges its slots */
	int			ncols;			/* the key's columns, and the count */
	const char *colnames[TALLY_MAXCOLS];
	Oid			types[TALLY_MAXCOLS];	/* InvalidOid: the outcome enum, looked up */
	RegProcedure eq[TALLY_MAXKEYS];
	const char *insert;			/* the statement path's INSERT ... ON CONFLICT */
} TallyDef;

#define TALLY_NKEYS(def) ((def)->ncols - 1) /* the key's columns, slot last */

static const TallyDef tally_defs[TALLY_NKINDS] = {
	[TALLY_DAILY] = {
		"daily_tally", "compact_daily_tally()", 5,
		{"day", "provider", "outcome", "slot", "n"},
		{DATEOID, TEXTOID, InvalidOid, INT4OID, INT8OID},
		{F_DATE_EQ, F_TEXTEQ, F_ENUM_EQ, F_INT4EQ},
		"INSERT INTO onboarding.daily_tally AS t (day, provider, outcome, slot, n)"
		" SELECT u.day, u.provider, u.outcome::onboarding.outcome, $4, u.n"
		"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
		"                   pg_catalog.unnest($3), pg_catalog.unnest($5))"
		"        AS u (day, provider, outcome, n)"
		" ON CONFLICT (day, provider, outcome, slot)"
		" DO UPDATE SET n = t.n OPERATOR(pg_catalog.+) excluded.n"
	},
	[TALLY_STATUS] = {
		"status_tally", "compact_status_tally()", 5,
		{"provider", "entity", "status", "slot", "n"},
		{TEXTOID, TEXTOID, TEXTOID, INT4OID, INT8OID},
		{F_TEXTEQ, F_TEXTEQ, F_TEXTEQ, F_INT4EQ},
		"INSERT INTO onboarding.status_tally AS t (provider, entity, status, slot, n)"
		" SELECT u.provider, u.entity, u.status, $4, u.n"
		"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
		"                   pg_catalog.unnest($3), pg_catalog.unnest($5))"
		"        AS u (provider, entity, status, n)"
		" ON CONFLICT (provider, entity, status, slot)"
		" DO UPDATE SET n = t.n OPERATOR(pg_catalog.+) excluded.n"
	},
	[TALLY_SPAN] = {
		"stage_tally", "compact_stage_tally()", 6,
		{"provider", "entity", "status", "bucket", "slot", "n"},
		{TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT8OID},
		{F_TEXTEQ, F_TEXTEQ, F_TEXTEQ, F_INT4EQ, F_INT4EQ},
		"INSERT INTO onboarding.stage_tally AS t (provider, entity, status, bucket, slot, n)"
		" SELECT u.provider, u.entity, u.status, u.bucket, $4, u.n"
		"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
		"                   pg_catalog.unnest($3), pg_catalog.unnest($6), pg_catalog.unnest($5))"
		"        AS u (provider, entity, status, bucket, n)"
		" ON CONFLICT (provider, entity, status, bucket, slot)"
		" DO UPDATE SET n = t.n OPERATOR(pg_catalog.+) excluded.n"
	},
};

/* What writing counts row by row needs, opened as it is needed */
typedef struct TallyWriter
{
	const TallyDef *def;
	Relation	rel;
	Relation	pk;				/* its primary key, its only index */
	AttrNumber	atts[TALLY_MAXCOLS];	/* the columns, in def->colnames' order */
	TupleTableSlot *found;		/* the row as found */
	TupleTableSlot *next;		/* the row as written */
	CommandId	cid;
	EState	   *estate;			/* for index entries: only when a write needs them */
	ResultRelInfo *rri;
} TallyWriter;

/*
 * Is the table as the extension made it, so that its rows can be written
 * without a statement?  A heap of the five columns, of their types, its
 * primary key on the first four its only index, no trigger and no rule.
 * When it is, w->atts has the columns' numbers and w->pk the key, open.
 */
static bool
tally_direct(TallyWriter *w)
{
	Relation	rel = w->rel;
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *indexes;
	Oid			pkey;
	Oid			types[TALLY_MAXCOLS];
	int			ncols = w->def->ncols;
	bool		ok;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rules != NULL || desc->natts != ncols)
		return false;
	for (int c = 0; c < ncols; c++)
	{
		w->atts[c] = InvalidAttrNumber;
		types[c] = w->def->types[c];
		if (!OidIsValid(types[c]))
			types[c] = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("outcome"),
									   ObjectIdGetDatum(onboarding_schema_oid()));
	}
	for (int i = 0; i < ncols; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || a->attgenerated)
			return false;
		for (int c = 0; c < ncols; c++)
			if (strcmp(NameStr(a->attname), w->def->colnames[c]) == 0)
				w->atts[c] = a->attnum;
	}
	for (int c = 0; c < ncols; c++)
		if (w->atts[c] == InvalidAttrNumber ||
			TupleDescAttr(desc, w->atts[c] - 1)->atttypid != types[c])
			return false;		/* (a column whose type was altered: the statement casts) */
	indexes = RelationGetIndexList(rel);
	pkey = ob_relation_get_primary_key_index(rel);
	ok = list_length(indexes) == 1 && OidIsValid(pkey) && linitial_oid(indexes) == pkey;
	list_free(indexes);
	if (!ok)
		return false;
	w->pk = index_open(pkey, RowExclusiveLock);
	ok = w->pk->rd_index->indnatts == TALLY_NKEYS(w->def) &&
		RelationGetIndexExpressions(w->pk) == NIL && RelationGetIndexPredicate(w->pk) == NIL;
	for (int c = 0; ok && c < TALLY_NKEYS(w->def); c++)
		ok = w->pk->rd_index->indkey.values[c] == w->atts[c];
	if (!ok)
	{
		index_close(w->pk, RowExclusiveLock);
		w->pk = NULL;
	}
	return ok;
}

/* Make the index entries of the row version w->next (update: of an updated row). */
static void
tally_index(TallyWriter *w, bool update, bool only_summarizing)
{
	if (w->estate == NULL)
	{
		w->estate = CreateExecutorState();
		w->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(w->rri, w->rel, 0, NULL, 0);
		ExecOpenIndices(w->rri, false);
	}
	list_free(ob_exec_insert_index_tuples(w->rri, w->next, w->estate, update, false, NULL, NIL,
										  only_summarizing));
	ResetPerTupleExprContext(w->estate);
}

/*
 * A backend's rows are those of its slot (its backend number) and of its
 * spare slots, the same plus a multiple of this: above any backend number
 * (backends, auxiliary processes and prepared transactions are each fewer
 * than MAX_BACKENDS, 2^18), so that no two backends share one.
 */
#define TALLY_SLOT_STRIDE	(1 << 20)
#define TALLY_SLOT_SPARES	64

/* The places known, created on first use. */
static HTAB *
tally_place_table(void)
{
	if (tally_places == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(TallyKey);
		ctl.entrysize = sizeof(TallyPlace);
		ctl.hcxt = TopMemoryContext;
		tally_places = hash_create("onboarding tally places", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return tally_places;
}

/* The row for key (slot included) counting n, in w->next. */
static void
tally_fill_next(TallyWriter *w, Datum *key, int64 n)
{
	TupleTableSlot *next = w->next;
	AttrNumber	natt = w->atts[w->def->ncols - 1];

	ExecClearTuple(next);
	for (int c = 0; c < TALLY_NKEYS(w->def); c++)
	{
		next->tts_values[w->atts[c] - 1] = key[c];
		next->tts_isnull[w->atts[c] - 1] = false;
	}
	next->tts_values[natt - 1] = Int64GetDatum(n);
	next->tts_isnull[natt - 1] = false;
	ExecStoreVirtualTuple(next);
}

/*
 * Replace the version in w->found (the backend's row for key, held by
 * nobody) with one counting delta more; the new version's place in *tid.
 * TM_Ok, or what stopped it (another transaction took the row meanwhile).
 */
static TM_Result
tally_update_found(TallyWriter *w, Datum *key, int64 delta, ItemPointer tid)
{
	TupleTableSlot *found = w->found;
	TupleTableSlot *next = w->next;
	bool		isnull;
	Datum		n = slot_getattr(found, w->atts[w->def->ncols - 1], &isnull);
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
	bool		only_summarizing;
	TM_Result	res;

	tally_fill_next(w, key, (isnull ? 0 : DatumGetInt64(n)) + delta);
	res = ob_table_tuple_update(w->rel, &found->tts_tid, next, w->cid, InvalidSnapshot,
								InvalidSnapshot, false, &tmfd, &lockmode,
								&update_indexes, &only_summarizing);
	ExecClearTuple(found);
	if (res == TM_Ok)
	{
		*tid = next->tts_tid;
		if (update_indexes)
			tally_index(w, true, only_summarizing);
	}
	else if (res != TM_BeingModified && res != TM_Updated && res != TM_Deleted)
		elog(ERROR, "could not update a row of onboarding.%s (result %d)",
			 w->def->relname, (int) res);
	ExecClearTuple(next);
	return res;
}

/*
 * Is the version at place->tid still the backend's row for key (its
 * latest version, held by nobody)?  Then it is in w->found.
 */
static bool
tally_place_holds(TallyWriter *w, TallyPlace *place, Datum *key)
{
	SnapshotData dirty;

	/* (a table rewritten, or its empty end cut off by VACUUM, may be shorter) */
	if (place->relid != RelationGetRelid(w->rel) ||
		ItemPointerGetBlockNumber(&place->tid) >= RelationGetNumberOfBlocks(w->rel))
		return false;
	InitDirtySnapshot(dirty);
	if (!table_tuple_fetch_row_version(w->rel, &place->tid, &dirty, w->found))
		return false;
	if (!TransactionIdIsValid(dirty.xmin) && !TransactionIdIsValid(dirty.xmax))
	{
		bool		same = true;

		/* (the page may have been pruned and the slot reused, or the table rewritten) */
		for (int c = 0; same && c < TALLY_NKEYS(w->def); c++)
		{
			bool		isnull;
			Datum		v = slot_getattr(w->found, w->atts[c], &isnull);

			same = !isnull && DatumGetBool(OidFunctionCall2Coll(w->def->eq[c],
																w->pk->rd_indcollation[c],
																v, key[c]));
		}
		if (same)
			return true;
	}
	ExecClearTuple(w->found);
	return false;
}

/*
 * Add delta to this backend's row for key (the values of the first three
 * columns; tk: the count's key in memory), or create it.  Where the row was
 * last written is tried first (tally_places).  Else the row is found through
 * the primary key with a dirty snapshot; when another transaction holds it
 * (a compaction merging it, a transaction of this backend's that is
 * prepared and not yet committed), the count goes to the backend's next
 * spare slot instead: a delivery never waits on a count.  An update that
 * stays on its page (HOT, as a rule: no indexed column changes) makes no
 * index entry.
 */
static void
tally_add_row(TallyWriter *w, Datum *key, int64 delta, const TallyKey *tk)
{
	TupleTableSlot *found = w->found;
	TallyPlace *place = hash_search(tally_place_table(), tk, HASH_FIND, NULL);
	int			nkeys = TALLY_NKEYS(w->def);
	ItemPointerData tid;

	if (place != NULL)
	{
		key[nkeys - 1] = Int32GetDatum(ob_backend_slot() + place->spare * TALLY_SLOT_STRIDE);
		if (tally_place_holds(w, place, key) &&
			tally_update_found(w, key, delta, &tid) == TM_Ok)
		{
			place->tid = tid;
			return;
		}
		hash_search(tally_places, tk, HASH_REMOVE, NULL);
	}
	for (int spare = 0; spare <= TALLY_SLOT_SPARES; spare++)
	{
		SnapshotData dirty;
		ScanKeyData sk[TALLY_MAXKEYS];
		IndexScanDesc scan;
		bool		have;
		bool		busy = false;

		key[nkeys - 1] = Int32GetDatum(ob_backend_slot() + spare * TALLY_SLOT_STRIDE);
		InitDirtySnapshot(dirty);
		for (int c = 0; c < nkeys; c++)
			ScanKeyEntryInitialize(&sk[c], 0, c + 1, BTEqualStrategyNumber, InvalidOid,
								   w->pk->rd_indcollation[c], w->def->eq[c], key[c]);
		scan = ob_index_beginscan(w->rel, w->pk, &dirty, nkeys, 0);
		index_rescan(scan, sk, nkeys, NULL, 0);
		have = index_getnext_slot(scan, ForwardScanDirection, found);
		if (have)
			busy = TransactionIdIsValid(dirty.xmin) || TransactionIdIsValid(dirty.xmax);
		index_endscan(scan);
		if (busy)
		{
			ExecClearTuple(found);
			continue;
		}
		if (have)
		{
			if (tally_update_found(w, key, delta, &tid) != TM_Ok)
				continue;		/* taken since it was found: the next spare slot */
		}
		else
		{
			tally_fill_next(w, key, delta);
			table_tuple_insert(w->rel, w->next, w->cid, 0, NULL);
			tid = w->next->tts_tid;
			tally_index(w, false, false);
			ExecClearTuple(w->next);
		}
		place = hash_search(tally_places, tk, HASH_ENTER, NULL);
		place->relid = RelationGetRelid(w->rel);
		place->tid = tid;
		place->spare = spare;
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("every row of this session's counts in onboarding.%s is held by another transaction",
					w->def->relname),
			 errdetail("%d prepared transactions of this session, or merges by %s, hold them.",
					   TALLY_SLOT_SPARES + 1, w->def->compact),
			 errhint("Commit or roll back the prepared transactions (pg_prepared_xacts), then deliver again.")));
}

/*
 * Write n counts (cols: arrays of the key's columns' values but the slot,
 * then the counts; keys: the counts' keys in memory) row by row, without a
 * statement.
 */
static void
tally_write_direct(TallyWriter *w, Datum **cols, const TallyKey *keys, int n)
{
	int			nkeys = TALLY_NKEYS(w->def);

	w->found = table_slot_create(w->rel, NULL);
	w->next = table_slot_create(w->rel, NULL);
	/* rows this transaction wrote before are seen, and updated, from a new command */
	CommandCounterIncrement();
	w->cid = GetCurrentCommandId(true);
	for (int i = 0; i < n; i++)
	{
		Datum		key[TALLY_MAXKEYS];

		for (int c = 0; c < nkeys - 1; c++)
			key[c] = cols[c][i];
		key[nkeys - 1] = (Datum) 0; /* the slot: tally_add_row's */
		tally_add_row(w, key, DatumGetInt64(cols[nkeys - 1][i]), &keys[i]);
	}
	ExecDropSingleTupleTableSlot(w->found);
	ExecDropSingleTupleTableSlot(w->next);
	if (w->estate != NULL)
	{
		ExecCloseIndices(w->rri);
		FreeExecutorState(w->estate);
	}
	index_close(w->pk, RowExclusiveLock);
	CommandCounterIncrement();
}

/* Write n counts with one INSERT ... ON CONFLICT, as the extension's owner. */
static void
tally_write_statement(TallyKind kind, Datum **cols, int n)
{
	Datum		args[6];
	int			nkeys = TALLY_NKEYS(&tally_defs[kind]);
	ObSpiFrame	spi;
	/* before commit (tally_xact) no statement may be running: take a snapshot */
	bool		pushed = !ActiveSnapshotSet();

	if (kind == TALLY_DAILY)
	{
		Datum	   *labels = palloc(n * sizeof(Datum));

		/* the outcome, an enum of the extension's, as its label */
		for (int i = 0; i < n; i++)
			labels[i] = CStringGetTextDatum(onboarding_outcome_names[onboarding_outcome_from_oid(DatumGetObjectId(cols[2][i]))]);
		args[0] = tally_array(cols[0], NULL, n, DATEOID);
		args[2] = tally_array(labels, NULL, n, TEXTOID);
	}
	else
	{
		args[0] = tally_array(cols[0], NULL, n, TEXTOID);
		args[2] = tally_array(cols[2], NULL, n, TEXTOID);
	}
	args[1] = tally_array(cols[1], NULL, n, TEXTOID);
	args[3] = Int32GetDatum(ob_backend_slot());
	args[4] = tally_array(cols[nkeys - 1], NULL, n, INT8OID);
	/* (span: the bucket, last, so that the others keep their numbers) */
	if (kind == TALLY_SPAN)
		args[5] = tally_array(cols[3], NULL, n, INT4OID);
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	onboarding_spi_connect(&spi);
	if (tally_plans[kind] == NULL)
		tally_plans[kind] = onboarding_spi_prepare(tally_defs[kind].insert, kind == TALLY_SPAN ? 6 : 5,
												   (Oid[]) {kind == TALLY_DAILY ? DATEARRAYOID : TEXTARRAYOID,
													   TEXTARRAYOID, TEXTARRAYOID, INT4OID, INT8ARRAYOID,
												   INT4ARRAYOID});
	if (SPI_execute_plan(tally_plans[kind], args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write onboarding.%s", tally_defs[kind].relname);
	onboarding_spi_finish(&spi);
	if (pushed)
		PopActiveSnapshot();
}

/* Write the gathered counts of one kind to its table (when it exists). */
static void
tally_write(TallyKind kind)
{
	HASH_SEQ_STATUS seq;
	TallyEntry *e;
	int			n = 0;
	int			size = hash_get_num_entries(tally);
	Oid			relid;
	int			nkeys = TALLY_NKEYS(&tally_defs[kind]);
	Datum	   *cols[TALLY_MAXKEYS];
	TallyKey   *keys;

	/* a schema not updated to 0.3.0 yet has no counts: its update fills them */
	relid = get_relname_relid(tally_defs[kind].relname, onboarding_schema_oid());
	if (!OidIsValid(relid))
		return;
	for (int c = 0; c < nkeys; c++)
		cols[c] = palloc(size * sizeof(Datum));
	keys = palloc(size * sizeof(TallyKey));
	hash_seq_init(&seq, tally);
	while ((e = (TallyEntry *) hash_seq_search(&seq)) != NULL)
	{
		if (e->k.kind != (int32) kind || e->n == 0)
			continue;
		if (kind == TALLY_DAILY)
		{
			cols[0][n] = DateADTGetDatum(e->k.day);
			cols[1][n] = CStringGetTextDatum(e->k.provider == OB_PROVIDER_NONE ? "" :
											 onboarding_provider_name((ObProvider) e->k.provider));
			cols[2][n] = ObjectIdGetDatum(onboarding_outcome_oid((ObOutcome) e->k.outcome));
		}
		else
		{
			cols[0][n] = CStringGetTextDatum(onboarding_enum_label(e->k.provider_label));
			cols[1][n] = CStringGetTextDatum(kind == TALLY_SPAN ?
											 tally_status_names[e->k.entity] :
											 onboarding_tally_entities[e->k.entity]);
			cols[2][n] = kind == TALLY_SPAN ?
				CStringGetTextDatum(tally_status_names[e->k.status_name]) :
				CStringGetTextDatum(onboarding_enum_label(e->k.status_label));
			if (kind == TALLY_SPAN)
				cols[3][n] = Int32GetDatum(e->k.bucket);
		}
		cols[nkeys - 1][n] = Int64GetDatum(e->n);
		keys[n] = e->k;
		n++;
	}
	if (n > 0)
	{
		TallyWriter w = {0};

		w.def = &tally_defs[kind];
		w.rel = table_open(relid, RowExclusiveLock);
		if (tally_direct(&w))
			tally_write_direct(&w, cols, keys, n);
		else
			tally_write_statement(kind, cols, n);
		table_close(w.rel, NoLock);
	}
}

/*
 * Write what was gathered to onboarding.daily_tally and
 * onboarding.status_tally, into this backend's rows, and start again from
 * nothing.
 */
void
onboarding_tally_flush(void)
{
	MemoryContext scratch;
	MemoryContext old;

	do
	{
		/* the spans of the history written: what they change is counted here */
		onboarding_span_flush();
		if (tally_pending())
		{
			scratch = AllocSetContextCreate(CurrentMemoryContext, "onboarding tally flush",
											ALLOCSET_SMALL_SIZES);
			old = MemoryContextSwitchTo(scratch);
			for (int kind = 0; kind < TALLY_NKINDS; kind++)
				tally_write((TallyKind) kind);
			MemoryContextSwitchTo(old);
			MemoryContextDelete(scratch);
			/* written: start again from nothing (the saves of open subtransactions stay) */
			tally_clear();
		}
		/* the entities on their way and the refused ones, from the same row versions */
		onboarding_open_flush();
		/* (their statements may have had store.c write rows it held: count those too) */
	} while (onboarding_span_pending() || tally_pending());
}

/* Before commit, what is still gathered is written; an abort forgets it. */
static void
tally_xact(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			onboarding_tally_flush();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			tally_forget();
			break;
		default:
			break;
	}
}

/*
 * Subtransactions: a copy of what is gathered when one begins (none when
 * nothing is), given back when it rolls back; a subtransaction that began
 * with nothing gathered leaves nothing when it rolls back.  A flush inside
 * it wrote changes gathered before it began too: its rollback undoes that
 * write, and the copy has them again.
 */
static void
tally_subxact(SubXactEvent event, SubTransactionId mySubid,
			  SubTransactionId parentSubid, void *arg)
{
	TallySave  *save = tally_saves ? (TallySave *) linitial(tally_saves) : NULL;

	if (save != NULL && save->subid != mySubid)
		save = NULL;
	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (tally_pending())
			{
				MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
				HASH_SEQ_STATUS seq;
				TallyEntry *e;

				save = palloc(sizeof(TallySave));
				save->subid = mySubid;
				save->n = 0;
				save->entries = palloc(hash_get_num_entries(tally) * sizeof(TallyEntry));
				hash_seq_init(&seq, tally);
				while ((e = (TallyEntry *) hash_seq_search(&seq)) != NULL)
					save->entries[save->n++] = *e;
				tally_saves = lcons(save, tally_saves);
				MemoryContextSwitchTo(old);
			}
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			tally_clear();
			if (save != NULL)
				for (int i = 0; i < save->n; i++)
				{
					TallyEntry *back = hash_search(tally_table(), &save->entries[i].k,
												   HASH_ENTER, NULL);

					back->n = save->entries[i].n;
				}
			/* FALLTHROUGH */
		case SUBXACT_EVENT_COMMIT_SUB:
			if (save != NULL)
			{
				tally_saves = list_delete_first(tally_saves);
				pfree(save->entries);
				pfree(save);
			}
			break;
		default:
			break;
	}
}

/* The state table a trigger of ours was created for (its argument). */
static int
tally_trigger_table(TriggerData *td, const char *name)
{
	static const char *const tables[] = {"account", "proposal", "document", "closure"};

	if (td->tg_trigger->tgnargs == 1)
		for (int t = 0; t < lengthof(tables); t++)
			if (strcmp(td->tg_trigger->tgargs[0], tables[t]) == 0)
				return t;
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("%s() must be given the state table it counts", name),
			 errhint("Reinstall the extension: its triggers on the state tables are damaged.")));
	return -1;					/* keep the compiler quiet */
}

/*
 * Call fn(slot, arg, sign) for each row of a trigger's transition table,
 * read through a read pointer of our own (another trigger may read the
 * table too); desc: the table's descriptor.  status_tally's and
 * stage_span's statement triggers read their rows this way.
 */
void
onboarding_transition_rows(Tuplestorestate *rows, TupleDesc desc,
						   void (*fn) (TupleTableSlot *slot, void *arg, int sign),
						   void *arg, int sign)
{
	TupleTableSlot *slot;
	int			ptr;

	ptr = tuplestore_alloc_read_pointer(rows, 0);
	tuplestore_select_read_pointer(rows, ptr);
	tuplestore_rescan(rows);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		fn(slot, arg, sign);
		ExecClearTuple(slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_select_read_pointer(rows, 0);
}

/* One row of a state table's transition table, counted (tally_transition()). */
static void
tally_transition_row(TupleTableSlot *slot, void *arg, int sign)
{
	onboarding_tally_slot((const ObTallyCols *) arg, slot, sign);
}

/* Count every row of a transition table sign times. */
static void
tally_transition(Tuplestorestate *rows, const ObTallyCols *cols, TupleDesc desc, int sign)
{
	if (rows == NULL || cols->n == 0)
		return;
	onboarding_transition_rows(rows, desc, tally_transition_row, (void *) cols, sign);
}

/*
 * AFTER INSERT, UPDATE or DELETE of a state table, for each statement, with
 * its transition tables: the rows a user's statement (or COPY, or a
 * restore) removed and added, counted in status_tally.  The pipeline's own
 * writes are counted where it makes them (store.c): when it writes through
 * the executor (bind.c) it fires this trigger without transition tables,
 * and nothing is counted twice.
 */
PG_FUNCTION_INFO_V1(onboarding_state_counted);
Datum
onboarding_state_counted(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	ObTallyCols cols;
	TupleDesc	desc;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("state_counted() must be an AFTER ... FOR EACH STATEMENT trigger")));
	desc = RelationGetDescr(td->tg_relation);
	onboarding_tally_cols(tally_trigger_table(td, "state_counted"), desc, &cols);
	tally_transition(td->tg_oldtable, &cols, desc, -1);
	tally_transition(td->tg_newtable, &cols, desc, +1);
	/* the statement's entities on their way are seen by the next one */
	onboarding_open_flush();
	return PointerGetDatum(NULL);
}

/*
 * AFTER TRUNCATE of a state table: its entities are counted nowhere any
 * more.  What this transaction gathered is written first, then the
 * table's rows of status_tally are deleted, every backend's (the TRUNCATE
 * holds the state table against every other writer until it commits).
 */
PG_FUNCTION_INFO_V1(onboarding_state_truncated);
Datum
onboarding_state_truncated(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const char *const entities[][3] = {
		{"account"}, {"proposal", "background_check", "documentscopy"}, {"document"}, {"closure"}
	};
	TriggerData *td = (TriggerData *) fcinfo->context;
	Datum		names[3];
	int			n = 0;
	int			table;
	ObSpiFrame	spi;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("state_truncated() must be an AFTER TRUNCATE trigger")));
	table = tally_trigger_table(td, "state_truncated");
	for (int i = 0; i < 3 && entities[table][i] != NULL; i++)
		names[n++] = CStringGetTextDatum(entities[table][i]);
	onboarding_tally_flush();
	onboarding_spi_connect(&spi);
	if (plan == NULL)
		plan = onboarding_spi_prepare("DELETE FROM onboarding.status_tally"
									  " WHERE entity OPERATOR(pg_catalog.=) ANY ($1)",
									  1, (Oid[]) {TEXTARRAYOID});
	if (SPI_execute_plan(plan, (Datum[]) {tally_array(names, NULL, n, TEXTOID)}, NULL, false, 0)
		!= SPI_OK_DELETE)
		elog(ERROR, "could not delete from onboarding.status_tally");
	onboarding_spi_finish(&spi);
	onboarding_open_truncated(table);
	return PointerGetDatum(NULL);
}

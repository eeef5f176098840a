/*-------------------------------------------------------------------------
 *
 * span.c
 *		onboarding.stage_span: how long each history row's status lasted,
 *		kept as history is written, so that onboarding.stage_durations
 *		reads a few index entries instead of ordering all of history.
 *
 * A span is what stage_durations has always measured: for a history row,
 * the time from its event to the event of the entity's next history row
 * (in the order of event_at, then id), spent in its to_status.  A row
 * without a time, or followed by one, has none.  stage_span holds one row
 * per span, keyed by the history row's id, with its bucket
 * (onboarding.span_bucket(): 45 per factor e of the seconds spent); the
 * bucket's counts are kept in onboarding.stage_tally by tally.c, in rows
 * of each backend's own.  The report finds the bucket that holds a rank
 * from the counts, and the value in it through stage_span's index on
 * (provider, entity, status, bucket, spent).
 *
 * Every history row version written is gathered here, as its entity and
 * its event time: store.c's appends and deletions (deliveries, late ones,
 * rebuild()), and a user's or the extension's own statements on history
 * (force_status(), a direct update's history, DML) through the statement
 * triggers below, from their transition tables.  When the statement ends
 * (or a unit of rebuild(), or before commit, or between deliveries once
 * many entities are gathered: onboarding_span_bound()), the spans that the
 * gathered versions may have changed are recomputed: at each event time,
 * those of the rows there and of the rows at the latest time before it,
 * read through history's index on (entity_key, event_at) (store.c: one
 * descent for a delivery in order, three for a late one); an entity that
 * has a history row without a time is done whole (such a row sits after
 * the latest time before it by id: its neighbours are not found by time).
 * The old spans are deleted through stage_span's primary key and the new
 * ones inserted row by row (by statements when a user has put a trigger or
 * rule on the table), and what changed is counted.  So a delivery costs
 * the same whatever its entity's history.
 *
 * Subtransactions: what is gathered when one begins is kept, and gathered
 * again if it rolls back (recomputing an entity that did not change
 * changes nothing); an abort forgets everything, as the spans written in
 * it are undone with the history rows.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include <math.h>

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"

/* Gathered entities beyond which onboarding_span_bound() writes */
#define SPAN_MAX_PENDING 4096

/* An entity of history: provider label, entity name, key */
typedef struct SpanKey
{
	Oid			provider;
	const char *entity;
	const char *key;
} SpanKey;

/* What was gathered of one entity */
typedef struct SpanEntry
{
	SpanKey		k;
	bool		whole;			/* a version without a time: recompute all */
	bool		removed;		/* a version of one of its rows was removed */
	int			n;
	int			size;
	TimestampTz *at;			/* the event times of its versions */
	int			nfresh;
	int			freshsize;
	int64	   *fresh;			/* ids of the rows appended: they have no span yet */
} SpanEntry;

/* The entities gathered, and the ids of the history row versions removed */
typedef struct SpanSet
{
	MemoryContext cxt;
	HTAB	   *entities;
	int64	   *ids;
	int			nids;
	int			idsize;
} SpanSet;

/* What was gathered when a subtransaction began */
typedef struct SpanSave
{
	SubTransactionId subid;
	SpanSet		set;
} SpanSave;

static SpanSet pending;			/* cxt NULL: nothing gathered */
static List *span_saves = NIL;	/* SpanSave *, innermost first; TopTransactionContext */
static SPIPlanPtr span_delete_plan = NULL;
static SPIPlanPtr span_insert_plan = NULL;

/* History's columns, as found in the relation last seen */
static Oid	cols_relid = InvalidOid;
static AttrNumber col_id,
			col_provider,
			col_entity,
			col_key,
			col_at;

/*
 * Replace spans by statements (when a user has put a trigger or rule on
 * stage_span): the old ones of the history rows in $1 are deleted (and
 * returned, to be counted out); the new ones, $1 .. $6 of the second
 * statement (owner, provider, entity, status, bucket, time spent), are
 * inserted (counted in from what was sent).
 */
static const char span_delete_sql[] =
	"DELETE FROM onboarding.stage_span s WHERE s.owner_id = ANY ($1)"
	" RETURNING s.provider, s.entity, s.status, s.bucket";
static const char span_insert_sql[] =
	"INSERT INTO onboarding.stage_span (owner_id, provider, entity, status, bucket, spent)"
	" SELECT u.id, u.provider::onboarding.provider, u.entity, u.status, u.bucket, u.spent"
	"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
	"                   pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6))"
	"        AS u (id, provider, entity, status, bucket, spent)";

/* The spans recomputed in one flush, as the statement's arrays */
typedef struct SpanOut
{
	int			n;
	int			size;
	Datum	   *id;
	Datum	   *provider;
	Datum	   *entity;
	Datum	   *status;
	Datum	   *bucket;
	Datum	   *spent;
	Oid		   *provider_oid;	/* the same, for their counts */
	const char **entity_name;
	const char **status_name;
	int			ndoomed;
	int			doomedsize;
	Datum	   *doomed;			/* ids whose spans are replaced */
	HTAB	   *made;			/* int64: the owners of the spans above */
} SpanOut;

static void span_xact(XactEvent event, void *arg);
static void span_subxact(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg);

/* dynahash: the hash of a SpanKey (its strings by content) */
static uint32
span_key_hash(const void *key, Size keysize)
{
	const SpanKey *k = (const SpanKey *) key;

	return hash_combine(hash_combine(murmurhash32(k->provider),
									 hash_bytes((const unsigned char *) k->entity, strlen(k->entity))),
						hash_bytes((const unsigned char *) k->key, strlen(k->key)));
}

/* dynahash: 0 when two SpanKeys are equal */
static int
span_key_match(const void *a, const void *b, Size keysize)
{
	const SpanKey *x = (const SpanKey *) a;
	const SpanKey *y = (const SpanKey *) b;

	if (x->provider != y->provider || strcmp(x->entity, y->entity) != 0)
		return 1;
	return strcmp(x->key, y->key);
}

/* An empty set of gathered changes, in a context of its own under parent. */
static void
span_set_init(SpanSet *set, MemoryContext parent)
{
	HASHCTL		ctl;

	set->cxt = AllocSetContextCreate(parent, "onboarding spans", ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(SpanKey);
	ctl.entrysize = sizeof(SpanEntry);
	ctl.hash = span_key_hash;
	ctl.match = span_key_match;
	ctl.hcxt = set->cxt;
	set->entities = hash_create("onboarding spans", 64, &ctl,
								HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	set->ids = NULL;
	set->nids = set->idsize = 0;
}

/* Forget a set (its memory with it). */
static void
span_set_free(SpanSet *set)
{
	if (set->cxt != NULL)
		MemoryContextDelete(set->cxt);
	memset(set, 0, sizeof(*set));
}

/* Append an id to an array of ids in cxt. */
static void
span_ids_add(MemoryContext cxt, int64 **ids, int *n, int *size, int64 id)
{
	if (*n == *size)
	{
		*size = Max(16, 2 * *size);
		*ids = *ids == NULL ? MemoryContextAlloc(cxt, *size * sizeof(int64)) :
			repalloc(*ids, *size * sizeof(int64));
	}
	(*ids)[(*n)++] = id;
}

/* The gathered entry of an entity (created empty). */
static SpanEntry *
span_set_entry(SpanSet *set, Oid provider, const char *entity, const char *key)
{
	SpanKey		k = {provider, entity, key};
	SpanEntry  *e;
	bool		found;

	e = hash_search(set->entities, &k, HASH_ENTER, &found);
	if (!found)
	{
		e->k.entity = MemoryContextStrdup(set->cxt, entity);
		e->k.key = MemoryContextStrdup(set->cxt, key);
		e->whole = e->removed = false;
		e->n = e->size = 0;
		e->at = NULL;
		e->nfresh = e->freshsize = 0;
		e->fresh = NULL;
	}
	return e;
}

/* Gather a time of an entity (at_null: a version without one). */
static void
span_set_time(SpanSet *set, SpanEntry *e, bool at_null, TimestampTz at)
{
	if (at_null)
		e->whole = true;
	if (at_null || e->whole)
		return;
	for (int i = 0; i < e->n; i++)
		if (e->at[i] == at)
			return;
	if (e->n == e->size)
	{
		e->size = Max(4, 2 * e->size);
		e->at = e->at == NULL ? MemoryContextAlloc(set->cxt, e->size * sizeof(TimestampTz)) :
			repalloc(e->at, e->size * sizeof(TimestampTz));
	}
	e->at[e->n++] = at;
}

/*
 * Gather into set a version of history row id of an entity at a time
 * (at_null: without one): appended (sign +1, a new row: it has no span
 * yet) or removed (-1, its span goes; and its neighbours' spans, and the
 * spans of the rows before it, are no longer known to be absent).
 */
static void
span_set_add(SpanSet *set, Oid provider, const char *entity, const char *key,
			 bool at_null, TimestampTz at, int64 id, int sign)
{
	SpanEntry  *e = span_set_entry(set, provider, entity, key);

	span_set_time(set, e, at_null, at);
	if (sign > 0)
		span_ids_add(set->cxt, &e->fresh, &e->nfresh, &e->freshsize, id);
	else
	{
		e->removed = true;
		span_ids_add(set->cxt, &set->ids, &set->nids, &set->idsize, id);
	}
}

/* Gather every entity and id of from into to. */
static void
span_set_merge(SpanSet *to, const SpanSet *from)
{
	HASH_SEQ_STATUS seq;
	SpanEntry  *e;

	hash_seq_init(&seq, from->entities);
	while ((e = (SpanEntry *) hash_seq_search(&seq)) != NULL)
	{
		SpanEntry  *t = span_set_entry(to, e->k.provider, e->k.entity, e->k.key);

		if (e->whole)
			span_set_time(to, t, true, 0);
		for (int i = 0; i < e->n; i++)
			span_set_time(to, t, false, e->at[i]);
		t->removed = t->removed || e->removed;
		for (int i = 0; i < e->nfresh; i++)
			span_ids_add(to->cxt, &t->fresh, &t->nfresh, &t->freshsize, e->fresh[i]);
	}
	for (int i = 0; i < from->nids; i++)
		span_ids_add(to->cxt, &to->ids, &to->nids, &to->idsize, from->ids[i]);
}

/* Relcache callback: history's columns are found again. */
static void
span_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cols_relid)
		cols_relid = InvalidOid;
}

/* Find history's columns in rel (false: one is missing, nothing is gathered). */
static bool
span_cols(Relation rel)
{
	static bool registered = false;
	TupleDesc	desc = RelationGetDescr(rel);

	if (cols_relid == RelationGetRelid(rel))
		return true;
	if (!registered)
	{
		CacheRegisterRelcacheCallback(span_invalidate, (Datum) 0);
		registered = true;
	}
	col_id = col_provider = col_entity = col_key = col_at = InvalidAttrNumber;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);
		const char *name = NameStr(a->attname);

		if (a->attisdropped)
			continue;
		if (strcmp(name, "id") == 0 && a->atttypid == INT8OID)
			col_id = a->attnum;
		else if (strcmp(name, "provider") == 0)
			col_provider = a->attnum;
		else if (strcmp(name, "entity") == 0 && a->atttypid == TEXTOID)
			col_entity = a->attnum;
		else if (strcmp(name, "entity_key") == 0 && a->atttypid == TEXTOID)
			col_key = a->attnum;
		else if (strcmp(name, "event_at") == 0 && a->atttypid == TIMESTAMPTZOID)
			col_at = a->attnum;
	}
	if (col_id == InvalidAttrNumber || col_provider == InvalidAttrNumber ||
		col_entity == InvalidAttrNumber || col_key == InvalidAttrNumber ||
		col_at == InvalidAttrNumber)
		return false;
	cols_relid = RelationGetRelid(rel);
	return true;
}

/*
 * A version of a history row (values and nulls: the whole row of rel,
 * onboarding.history) appended (sign +1) or removed (-1): its entity's
 * spans are recomputed around its time when the statement ends.
 */
void
onboarding_span_row(Relation rel, const Datum *values, const bool *nulls, int sign)
{
	MemoryContext old;
	char	   *entity;
	char	   *key;

	if (!span_cols(rel) || nulls[col_provider - 1] || nulls[col_entity - 1] ||
		nulls[col_key - 1])
		return;
	if (pending.cxt == NULL)
		span_set_init(&pending, TopMemoryContext);
	old = MemoryContextSwitchTo(pending.cxt);
	entity = TextDatumGetCString(values[col_entity - 1]);
	key = TextDatumGetCString(values[col_key - 1]);
	span_set_add(&pending, DatumGetObjectId(values[col_provider - 1]), entity, key,
				 nulls[col_at - 1], nulls[col_at - 1] ? 0 : DatumGetTimestampTz(values[col_at - 1]),
				 nulls[col_id - 1] ? 0 : DatumGetInt64(values[col_id - 1]), sign);
	pfree(entity);
	pfree(key);
	MemoryContextSwitchTo(old);
}

/* Gather the history row version a slot of rel holds (sign: appended +1, removed -1). */
void
onboarding_span_slot(Relation rel, TupleTableSlot *slot, int sign)
{
	slot_getallattrs(slot);
	onboarding_span_row(rel, slot->tts_values, slot->tts_isnull, sign);
}

/* Is anything gathered? */
bool
onboarding_span_pending(void)
{
	return pending.cxt != NULL && hash_get_num_entries(pending.entities) > 0;
}

/* An array of size elements of elem bytes, a (NULL: none yet) grown to it. */
static void *
span_resize(void *a, int size, Size elem)
{
	return a == NULL ? palloc(size * elem) : repalloc(a, size * elem);
}

/* A history row's span is replaced. */
static void
span_doom(SpanOut *out, int64 id)
{
	if (out->ndoomed == out->doomedsize)
	{
		out->doomedsize = Max(64, 2 * out->doomedsize);
		out->doomed = span_resize(out->doomed, out->doomedsize, sizeof(Datum));
	}
	out->doomed[out->ndoomed++] = Int64GetDatum(id);
}

/*
 * The bucket of a time spent (onboarding.span_bucket()): 0 for none, else
 * 1 + floor(45 ln(1 + seconds)).  One function for C and SQL, so that the
 * counts and stage_span agree.
 */
static int32
span_bucket_of(const Interval *spent)
{
	double		secs = (double) spent->time / USECS_PER_SEC +
		(double) spent->day * SECS_PER_DAY +
		(double) spent->month * DAYS_PER_MONTH * SECS_PER_DAY;

	if (!(secs > 0))
		return 0;
	/* (an infinite or absurd time: the last bucket) */
	return (int32) Min(1.0 + floor(45.0 * log1p(secs)), 100000.0);
}

/* A new span: history row r spent until time next in its status. */
static void
span_add(SpanOut *out, const SpanEntry *e, Datum provider, Datum entity, const ObHistoryRow *r,
		 TimestampTz next)
{
	Oid			provider_oid = e->k.provider;
	const char *entity_name = e->k.entity;
	Datum		spent;
	bool		found;

	if (r->status == NULL)
		return;
	/* a row read around two of the times written: its span is computed once */
	if (out->made == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(int64);
		ctl.hcxt = CurrentMemoryContext;
		out->made = hash_create("onboarding spans made", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	(void) hash_search(out->made, &r->id, HASH_ENTER, &found);
	if (found)
		return;
	spent = DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(next),
								TimestampTzGetDatum(r->at));
	if (out->n == out->size)
	{
		out->size = Max(64, 2 * out->size);
		out->id = span_resize(out->id, out->size, sizeof(Datum));
		out->provider = span_resize(out->provider, out->size, sizeof(Datum));
		out->entity = span_resize(out->entity, out->size, sizeof(Datum));
		out->status = span_resize(out->status, out->size, sizeof(Datum));
		out->bucket = span_resize(out->bucket, out->size, sizeof(Datum));
		out->spent = span_resize(out->spent, out->size, sizeof(Datum));
		out->provider_oid = span_resize(out->provider_oid, out->size, sizeof(Oid));
		out->entity_name = span_resize(out->entity_name, out->size, sizeof(char *));
		out->status_name = span_resize(out->status_name, out->size, sizeof(char *));
	}
	out->provider_oid[out->n] = provider_oid;
	out->entity_name[out->n] = entity_name;
	out->status_name[out->n] = r->status;
	out->id[out->n] = Int64GetDatum(r->id);
	out->provider[out->n] = provider;
	out->entity[out->n] = entity;
	out->status[out->n] = CStringGetTextDatum(r->status);
	out->bucket[out->n] = Int32GetDatum(span_bucket_of(DatumGetIntervalP(spent)));
	out->spent[out->n] = spent;
	out->n++;
}

/* Event order of one entity's rows of a time: id. */
static int
span_id_cmp(const ListCell *a, const ListCell *b)
{
	int64		x = ((const ObHistoryRow *) lfirst(a))->id;
	int64		y = ((const ObHistoryRow *) lfirst(b))->id;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Event order of rows whose place is set (in at): place, then id. */
static int
span_place_cmp(const ListCell *a, const ListCell *b)
{
	const ObHistoryRow *x = (const ObHistoryRow *) lfirst(a);
	const ObHistoryRow *y = (const ObHistoryRow *) lfirst(b);

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->id < y->id ? -1 : (x->id > y->id ? 1 : 0);
}

/*
 * Every span of an entity from all its rows, as 0.2.0's stage_durations
 * computed it: a row without a time sits right after the latest time
 * before it by id; a span joins two neighbours that both have a time.
 */
static void
span_whole(SpanOut *out, const SpanEntry *e, Datum provider, Datum entity, List *rows)
{
	ListCell   *lc;
	bool		have_max = false;
	TimestampTz max = 0;
	const ObHistoryRow *prev = NULL;

	list_sort(rows, span_id_cmp);
	foreach(lc, rows)
	{
		ObHistoryRow *r = (ObHistoryRow *) lfirst(lc);

		span_doom(out, r->id);
		if (!r->at_null && (!have_max || r->at > max))
		{
			max = r->at;
			have_max = true;
		}
		/* its place, in at (at_null stays: it has no time of its own) */
		if (r->at_null)
			r->at = have_max ? max : DT_NOBEGIN;
	}
	list_sort(rows, span_place_cmp);
	foreach(lc, rows)
	{
		const ObHistoryRow *r = (const ObHistoryRow *) lfirst(lc);

		if (prev != NULL && !prev->at_null && !r->at_null)
			span_add(out, e, provider, entity, prev, r->at);
		prev = r;
	}
}

/* Was history row id appended since the last flush (it has no span yet)? */
static bool
span_fresh(const SpanEntry *e, int64 id)
{
	for (int i = 0; i < e->nfresh; i++)
		if (e->fresh[i] == id)
			return true;
	return false;
}


/*
 * The spans of rows read in one piece (latest first, as the reads give
 * them: every row between two times, and those at the latest time before
 * them), whose last is followed by the time next (has_next) or by nothing.
 * Their old spans are removed, but where none can be: a row appended since
 * the last flush has none, and (tail) nor has a row that only such rows
 * follow, unless a row of the entity was removed.
 */
static void
span_piece(SpanOut *out, const SpanEntry *e, Datum provider, Datum entity, List *rows,
		   bool tail, bool has_next, TimestampTz next)
{
	int			n = list_length(rows);
	bool	   *followed = palloc(Max(n, 1) * sizeof(bool));
	bool		only_fresh = true;
	ListCell   *lc;
	int			i;

	list_sort(rows, span_place_cmp);
	/* followed[i]: does a row older than this flush follow row i? */
	for (i = n - 1; i >= 0; i--)
	{
		const ObHistoryRow *r = (const ObHistoryRow *) list_nth(rows, i);

		followed[i] = !tail || !only_fresh;
		only_fresh = only_fresh && span_fresh(e, r->id);
	}
	i = 0;
	foreach(lc, rows)
	{
		const ObHistoryRow *r = (const ObHistoryRow *) lfirst(lc);
		ListCell   *after = lnext(rows, lc);

		if (e->removed || (followed[i] && !span_fresh(e, r->id)))
			span_doom(out, r->id);
		if (after != NULL)
			span_add(out, e, provider, entity, r, ((const ObHistoryRow *) lfirst(after))->at);
		else if (has_next)
			span_add(out, e, provider, entity, r, next);
		i++;
	}
	pfree(followed);
}

/*
 * Rows read in one piece beyond those appended since the last flush,
 * before the entity is read around each time instead (a late delivery
 * reads no more than SPAN_TAIL_SLACK in vain from the end)
 */
#define SPAN_TAIL_SLACK 4
#define SPAN_PIECE_MAX 64

/*
 * The spans of an entity that versions written at its gathered times may
 * have changed: at each time, those of the rows there and of the rows at
 * the latest time before it (the rest of its history keeps its spans).
 * Read in one descent of history's index when the times are near the end
 * of its history (a delivery in order: back from its last row); else in
 * two when they lie together (a late delivery and the rows it rewrote:
 * back from the latest time, and the time after it); else around each
 * time; an entity with a row without a time, whole.
 */
static void
span_entity(SpanOut *out, const SpanEntry *e)
{
	Datum		provider = CStringGetTextDatum(onboarding_enum_label(e->k.provider));
	Datum		entity = CStringGetTextDatum(e->k.entity);
	bool		untimed = false;
	bool		complete = false;
	bool		has_next;
	TimestampTz next;
	List	   *rows;

	if (!e->whole && e->n > 0)
	{
		TimestampTz earliest = e->at[0];
		TimestampTz latest = e->at[0];

		for (int p = 1; p < e->n; p++)
		{
			earliest = Min(earliest, e->at[p]);
			latest = Max(latest, e->at[p]);
		}
		rows = onboarding_store_history_tail(e->k.provider, e->k.entity, e->k.key, false, 0,
											 earliest,
											 Min(e->nfresh + SPAN_TAIL_SLACK, SPAN_PIECE_MAX),
											 &untimed, &complete);
		if (complete && !untimed)
		{
			span_piece(out, e, provider, entity, rows, true, false, 0);
			return;
		}
		if (!untimed)
		{
			rows = onboarding_store_history_tail(e->k.provider, e->k.entity, e->k.key, true,
												 latest, earliest, SPAN_PIECE_MAX, &untimed,
												 &complete);
			if (complete)
			{
				has_next = onboarding_store_history_next(e->k.provider, e->k.entity, e->k.key,
														 latest, &next);
				span_piece(out, e, provider, entity, rows, false, has_next, next);
				return;
			}
		}
	}
	for (int p = 0; !e->whole && !untimed && p < e->n; p++)
	{
		ListCell   *lc;

		rows = onboarding_store_history_around(e->k.provider, e->k.entity, e->k.key, false,
											   e->at[p], &untimed, &has_next, &next);
		if (untimed)
			break;
		list_sort(rows, span_place_cmp);
		foreach(lc, rows)
		{
			const ObHistoryRow *r = (const ObHistoryRow *) lfirst(lc);
			ListCell   *after = lnext(rows, lc);

			if (!span_fresh(e, r->id))
				span_doom(out, r->id);
			if (after != NULL)
				span_add(out, e, provider, entity, r, ((const ObHistoryRow *) lfirst(after))->at);
			else if (has_next)
				span_add(out, e, provider, entity, r, next);
		}
	}
	if (e->whole || untimed)
	{
		/* (spans of the times already done are replaced by these) */
		rows = onboarding_store_history_around(e->k.provider, e->k.entity, e->k.key, true, 0,
											   &untimed, &has_next, &next);
		span_whole(out, e, provider, entity, rows);
	}
}

/* stage_span's columns, in the order of span_insert_sql's values */
static const char *const span_columns[6] = {
	"owner_id", "provider", "entity", "status", "bucket", "spent"
};

/*
 * stage_span opened for writes without a statement, when it is as the
 * extension made it: a heap of its six columns, no trigger, no rule (an
 * index of a user's is maintained too).  atts: the columns' numbers in
 * span_columns' order.  NULL, the table closed, otherwise.
 */
static Relation
span_open_direct(AttrNumber *atts)
{
	Relation	rel = table_open(get_relname_relid("stage_span", onboarding_schema_oid()),
								 RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			types[6] = {INT8OID, InvalidOid, TEXTOID, TEXTOID, INT4OID, INTERVALOID};
	bool		ok = rel->rd_rel->relkind == RELKIND_RELATION && rel->trigdesc == NULL &&
		rel->rd_rules == NULL && desc->natts == 6;

	for (int c = 0; c < 6; c++)
		atts[c] = InvalidAttrNumber;
	for (int i = 0; ok && i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || a->attgenerated)
			ok = false;
		for (int c = 0; ok && c < 6; c++)
			if (strcmp(NameStr(a->attname), span_columns[c]) == 0 &&
				(OidIsValid(types[c]) ? a->atttypid == types[c] : true))
				atts[c] = a->attnum;
	}
	for (int c = 0; ok && c < 6; c++)
		ok = atts[c] != InvalidAttrNumber;
	if (!ok)
	{
		table_close(rel, RowExclusiveLock);
		return NULL;
	}
	return rel;
}

/* Id order, for the ids of the spans to delete. */
static int
span_datum_id_cmp(const void *a, const void *b)
{
	int64		x = DatumGetInt64(*(const Datum *) a);
	int64		y = DatumGetInt64(*(const Datum *) b);

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * Delete the old spans of out's doomed rows without a statement: each
 * found through the primary key and deleted, and counted out.  A late
 * delivery deletes a few; a statement's executor start would cost more
 * than they.  Returns false, having deleted nothing, when stage_span is not
 * as the extension made it (span_open_direct()).
 */
static bool
span_delete_direct(SpanOut *out)
{
	AttrNumber	atts[6];
	Relation	rel = span_open_direct(atts);
	Relation	pk;
	Oid			pkoid;
	TupleTableSlot *slot;
	CommandId	cid;
	int			n = 0;

	if (rel == NULL)
		return false;
	pkoid = ob_relation_get_primary_key_index(rel);
	if (!OidIsValid(pkoid))
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}
	pk = index_open(pkoid, RowExclusiveLock);
	if (pk->rd_index->indnatts != 1 || pk->rd_index->indkey.values[0] != atts[0])
	{
		index_close(pk, RowExclusiveLock);
		table_close(rel, RowExclusiveLock);
		return false;
	}
	/* each id once */
	qsort(out->doomed, out->ndoomed, sizeof(Datum), span_datum_id_cmp);
	for (int k = 0; k < out->ndoomed; k++)
		if (n == 0 || DatumGetInt64(out->doomed[k]) != DatumGetInt64(out->doomed[n - 1]))
			out->doomed[n++] = out->doomed[k];
	out->ndoomed = n;

	slot = table_slot_create(rel, NULL);
	/* spans written by this transaction before are seen */
	CommandCounterIncrement();
	cid = GetCurrentCommandId(true);
	for (int k = 0; k < out->ndoomed; k++)
	{
		SnapshotData dirty;
		ScanKeyData key;
		IndexScanDesc scan;
		bool		found;

		InitDirtySnapshot(dirty);
		ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid, InvalidOid,
							   F_INT8EQ, out->doomed[k]);
		scan = ob_index_beginscan(rel, pk, &dirty, 1, 0);
		index_rescan(scan, &key, 1, NULL, 0);
		found = index_getnext_slot(scan, ForwardScanDirection, slot);
		index_endscan(scan);
		if (found)
		{
			TM_FailureData tmfd;
			TM_Result	res;
			bool		isnull;
			char	   *entity;
			char	   *status;

			slot_getallattrs(slot);
			res = table_tuple_delete(rel, &slot->tts_tid, cid, InvalidSnapshot, InvalidSnapshot,
									 true, &tmfd, false);
			if (res == TM_Ok)
			{
				entity = TextDatumGetCString(slot_getattr(slot, atts[2], &isnull));
				status = TextDatumGetCString(slot_getattr(slot, atts[3], &isnull));
				onboarding_tally_span(DatumGetObjectId(slot_getattr(slot, atts[1], &isnull)),
									  entity, status,
									  DatumGetInt32(slot_getattr(slot, atts[4], &isnull)), -1);
				pfree(entity);
				pfree(status);
			}
			else if (res != TM_Deleted)
				elog(ERROR, "could not delete a row of onboarding.stage_span (result %d)",
					 (int) res);
		}
		ExecClearTuple(slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(pk, RowExclusiveLock);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	return true;
}

/*
 * Insert the new spans without a statement, through the table access
 * method and the executor's index maintenance (as tally.c writes counts):
 * a delivery in order writes one span, and a statement's executor start
 * costs more than the span.  Returns false, having written nothing, when
 * stage_span is not as the extension made it (span_open_direct()).
 */
static bool
span_insert_direct(SpanOut *out)
{
	AttrNumber	atts[6];
	Relation	rel = span_open_direct(atts);
	TupleTableSlot *slot;
	EState	   *estate;
	ResultRelInfo *rri;
	CommandId	cid;

	if (rel == NULL)
		return false;
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 0, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = table_slot_create(rel, NULL);
	/* spans deleted before are seen as deleted */
	CommandCounterIncrement();
	cid = GetCurrentCommandId(true);
	for (int k = 0; k < out->n; k++)
	{
		Datum		values[6] = {out->id[k], ObjectIdGetDatum(out->provider_oid[k]),
		out->entity[k], out->status[k], out->bucket[k], out->spent[k]};

		ExecClearTuple(slot);
		for (int c = 0; c < 6; c++)
		{
			slot->tts_values[atts[c] - 1] = values[c];
			slot->tts_isnull[atts[c] - 1] = false;
		}
		ExecStoreVirtualTuple(slot);
		table_tuple_insert(rel, slot, cid, 0, NULL);
		list_free(ob_exec_insert_index_tuples(rri, slot, estate, false, false, NULL, NIL, false));
		ResetPerTupleExprContext(estate);
	}
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	return true;
}

/* Recompute the spans of one set's entities, write them, and count what changed. */
static void
span_write(SpanSet *set)
{
	HASH_SEQ_STATUS seq;
	SpanEntry  *e;
	SpanOut		out = {0};
	Datum		args[6];
	ObSpiFrame	spi;
	bool		pushed;
	int			rc;

	hash_seq_init(&seq, set->entities);
	while ((e = (SpanEntry *) hash_seq_search(&seq)) != NULL)
		span_entity(&out, e);
	for (int i = 0; i < set->nids; i++)
		span_doom(&out, set->ids[i]);
	if (out.ndoomed == 0 && out.n == 0)
		return;

	/* before commit no statement is running: take a snapshot */
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	onboarding_spi_connect(&spi);
	if (out.ndoomed > 0 && !span_delete_direct(&out))
	{
		/*
		 * By primary key, whatever the table's size when the plan was made
		 * (stage_span grows from nothing inside the first long COPY, and a
		 * plan kept from then would read it whole).
		 */
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		if (span_delete_plan == NULL)
			span_delete_plan = onboarding_spi_prepare(span_delete_sql, 1, (Oid[]) {INT8ARRAYOID});
		args[0] = PointerGetDatum(construct_array(out.doomed, out.ndoomed, INT8OID, sizeof(int64),
												  true, TYPALIGN_DOUBLE));
		rc = SPI_execute_plan(span_delete_plan, args, NULL, false, 0);
		if (rc != SPI_OK_DELETE_RETURNING)
			elog(ERROR, "could not delete from onboarding.stage_span: %s",
				 SPI_result_code_string(rc));
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Oid			provider = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
			char	   *en = SPI_getvalue(tup, desc, 2);
			char	   *st = SPI_getvalue(tup, desc, 3);
			int32		bucket = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));

			onboarding_tally_span(provider, en, st, bucket, -1);
		}
	}
	if (out.n > 0 && !span_insert_direct(&out))
	{
		if (span_insert_plan == NULL)
			span_insert_plan = onboarding_spi_prepare(span_insert_sql, 6,
													  (Oid[]) {INT8ARRAYOID, TEXTARRAYOID,
														  TEXTARRAYOID, TEXTARRAYOID,
													  INT4ARRAYOID, INTERVALARRAYOID});
		args[0] = PointerGetDatum(construct_array(out.id, out.n, INT8OID, sizeof(int64), true,
												  TYPALIGN_DOUBLE));
		args[1] = PointerGetDatum(construct_array(out.provider, out.n, TEXTOID, -1, false,
												  TYPALIGN_INT));
		args[2] = PointerGetDatum(construct_array(out.entity, out.n, TEXTOID, -1, false,
												  TYPALIGN_INT));
		args[3] = PointerGetDatum(construct_array(out.status, out.n, TEXTOID, -1, false,
												  TYPALIGN_INT));
		args[4] = PointerGetDatum(construct_array(out.bucket, out.n, INT4OID, sizeof(int32), true,
												  TYPALIGN_INT));
		args[5] = PointerGetDatum(construct_array(out.spent, out.n, INTERVALOID, sizeof(Interval),
												  false, TYPALIGN_DOUBLE));
		rc = SPI_execute_plan(span_insert_plan, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not insert into onboarding.stage_span: %s",
				 SPI_result_code_string(rc));
	}
	for (int k = 0; k < out.n; k++)
		onboarding_tally_span(out.provider_oid[k], out.entity_name[k], out.status_name[k],
							  DatumGetInt32(out.bucket[k]), +1);
	onboarding_spi_finish(&spi);
	if (pushed)
		PopActiveSnapshot();
}

/*
 * onboarding.span_bucket(interval) → integer: the bucket stage_span keeps
 * beside a time spent (span_bucket_of()).
 */
PG_FUNCTION_INFO_V1(onboarding_span_bucket);
Datum
onboarding_span_bucket(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(span_bucket_of(PG_GETARG_INTERVAL_P(0)));
}

/*
 * Recompute the spans of what was gathered, and start again from nothing.
 * Called by tally.c before it writes its counts (the spans' counts are
 * among them).  The statement reads history, which has store.c write the
 * rows it holds first: what that gathers is written in turn.
 */
void
onboarding_span_flush(void)
{
	while (onboarding_span_pending())
	{
		SpanSet		set = pending;
		MemoryContext old;

		memset(&pending, 0, sizeof(pending));
		if (!OidIsValid(get_relname_relid("stage_span", onboarding_schema_oid())))
		{
			/* (a schema not updated to 0.3.0 yet: its update fills the spans) */
			span_set_free(&set);
			continue;
		}
		old = MemoryContextSwitchTo(set.cxt);
		span_write(&set);
		MemoryContextSwitchTo(old);
		span_set_free(&set);
	}
}

/*
 * Between two deliveries of a statement: what was gathered is written
 * once it is many entities, so that a long COPY does not gather one per
 * entity it touches.
 */
void
onboarding_span_bound(void)
{
	if (onboarding_span_pending() && hash_get_num_entries(pending.entities) >= SPAN_MAX_PENDING)
		onboarding_tally_flush();
}

/* Forget everything gathered. */
static void
span_forget(void)
{
	span_set_free(&pending);
	span_saves = NIL;			/* in TopTransactionContext: gone with it */
}

/* Before commit tally.c writes (and calls us); commit and abort forget. */
static void
span_xact(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			span_forget();
			break;
		default:
			break;
	}
}

/*
 * Subtransactions: a copy of what is gathered when one begins, gathered
 * again when it rolls back (a flush inside it that wrote the spans of
 * changes made before it is undone with it).  What was gathered inside it
 * stays: recomputing an entity whose rows the rollback put back changes
 * nothing.
 */
static void
span_subxact(SubXactEvent event, SubTransactionId mySubid,
			 SubTransactionId parentSubid, void *arg)
{
	SpanSave   *save = span_saves ? (SpanSave *) linitial(span_saves) : NULL;

	if (save != NULL && save->subid != mySubid)
		save = NULL;
	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (onboarding_span_pending())
			{
				MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

				save = palloc(sizeof(SpanSave));
				save->subid = mySubid;
				span_set_init(&save->set, TopTransactionContext);
				span_set_merge(&save->set, &pending);
				span_saves = lcons(save, span_saves);
				MemoryContextSwitchTo(old);
			}
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			if (save != NULL)
			{
				if (pending.cxt == NULL)
					span_set_init(&pending, TopMemoryContext);
				span_set_merge(&pending, &save->set);
			}
			/* FALLTHROUGH */
		case SUBXACT_EVENT_COMMIT_SUB:
			if (save != NULL)
			{
				span_saves = list_delete_first(span_saves);
				span_set_free(&save->set);
				pfree(save);
			}
			break;
		default:
			break;
	}
}

/* At load, right after tally.c's (so in the same order against store.c's). */
void
onboarding_span_init(void)
{
	RegisterXactCallback(span_xact, NULL);
	RegisterSubXactCallback(span_subxact, NULL);
}

/* One row of history's transition table, gathered (span_transition()). */
static void
span_transition_row(TupleTableSlot *slot, void *arg, int sign)
{
	onboarding_span_slot((Relation) arg, slot, sign);
}

/* Gather every row of a transition table of history. */
static void
span_transition(Relation rel, Tuplestorestate *rows, int sign)
{
	if (rows == NULL)
		return;
	onboarding_transition_rows(rows, RelationGetDescr(rel), span_transition_row, rel, sign);
}

/*
 * AFTER INSERT, UPDATE or DELETE of history, for each statement, with its
 * transition tables: the rows a statement removed and added (a user's, or
 * the extension's own: force_status(), a direct update's history, the
 * rows rebuild() deletes).  The pipeline's own row writes are gathered
 * where it makes them (store.c); through the executor (bind.c) they fire
 * no statement trigger.  The spans are written before the next statement.
 */
PG_FUNCTION_INFO_V1(onboarding_history_spanned);
Datum
onboarding_history_spanned(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("history_spanned() must be an AFTER ... FOR EACH STATEMENT trigger")));
	/* (an UPDATE's new versions keep their ids: their old ones mark them removed) */
	span_transition(td->tg_relation, td->tg_oldtable, -1);
	span_transition(td->tg_relation, td->tg_newtable, +1);
	onboarding_tally_flush();
	return PointerGetDatum(NULL);
}

/*
 * AFTER TRUNCATE of history: no span is left.  What was gathered is
 * forgotten, and stage_span and stage_tally are emptied (the TRUNCATE
 * holds history against every writer until it commits).  Of one partition
 * of history: the spans of the rows left are computed again.
 */
PG_FUNCTION_INFO_V1(onboarding_history_truncated);
Datum
onboarding_history_truncated(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	ObSpiFrame	spi;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("history_truncated() must be an AFTER TRUNCATE trigger")));
	onboarding_tally_flush();
	span_set_free(&pending);
	onboarding_spi_connect(&spi);
	if (RelationGetRelid(td->tg_relation) != onboarding_relation_oid("history"))
	{
		/* one partition of history: the spans of the rows left */
		if (SPI_execute("SELECT onboarding.recount_stage_span()", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not compute onboarding.stage_span again");
	}
	else if (SPI_execute("TRUNCATE onboarding.stage_span, onboarding.stage_tally", false, 0)
			 != SPI_OK_UTILITY)
		elog(ERROR, "could not empty onboarding.stage_span");
	onboarding_spi_finish(&spi);
	return PointerGetDatum(NULL);
}

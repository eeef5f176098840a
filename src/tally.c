/*-------------------------------------------------------------------------
 *
 * tally.c
 *		The counts behind onboarding.daily, kept as deliveries are stored
 *		and their outcomes rewritten, so that the report reads a few rows
 *		instead of the whole inbox.
 *
 * onboarding.daily_tally holds, per UTC day of arrival, provider and
 * outcome, how many deliveries there are; the view sums its rows.  Every
 * change to those counts goes through here: a delivery stored (inbox.c,
 * restores included), a delivery's provider or outcome rewritten by a
 * late delivery, rebuild(), erase() (store.c, on the version it replaces).
 *
 * Each backend adds to rows of its own (slot: its backend number, which no
 * other live backend has), so that two transactions delivering at once
 * never wait for each other on a count; a row another transaction holds
 * (a merge by compact_daily_tally(), a prepared transaction of the same
 * backend) is passed over for one of the backend's spare slots, so that a
 * delivery never waits on a count at all.  Changes are gathered in memory
 * and written when the inbox's statement ends, when rebuild() ends a unit
 * of work, and before commit: row by row through the table access method
 * and the executor's index maintenance (as store.c writes state), or, when
 * a user has added a trigger, a rule, a column or an index to the table,
 * with one INSERT ... ON CONFLICT, so that what they added takes part.  Subtransactions: what
 * was gathered when one began is remembered and given back if it rolls
 * back (what it wrote itself is undone by the rollback); a transaction
 * that aborts forgets everything.
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
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
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

#include "compat.h"

/* A count: (day, provider, outcome) */
typedef struct TallyKey
{
	DateADT		day;
	int32		provider;		/* ObProvider; OB_PROVIDER_NONE: none */
	int32		outcome;		/* ObOutcome */
} TallyKey;

typedef struct TallyEntry
{
	TallyKey	k;
	int64		n;
} TallyEntry;

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
static SPIPlanPtr tally_plan = NULL;

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
	k.day = tally_day(received_at);
	k.provider = (int32) provider;
	k.outcome = (int32) outcome;
	e = hash_search(tally_table(), &k, HASH_ENTER, &found);
	if (!found)
		e->n = 0;
	e->n += delta;
}

/* daily_tally's columns: its primary key's, in order, then the count */
#define TALLY_NCOLS 5
static const char *const tally_colnames[TALLY_NCOLS] = {"day", "provider", "outcome", "slot", "n"};

/* What writing counts row by row needs, opened as it is needed */
typedef struct TallyWriter
{
	Relation	rel;
	Relation	pk;				/* its primary key, its only index */
	AttrNumber	atts[TALLY_NCOLS];	/* the columns, in tally_colnames' order */
	TupleTableSlot *found;		/* the row as found */
	TupleTableSlot *next;		/* the row as written */
	CommandId	cid;
	EState	   *estate;			/* for index entries: only when a write needs them */
	ResultRelInfo *rri;
} TallyWriter;

/*
 * Is daily_tally as the extension made it, so that its rows can be written
 * without a statement?  A heap of the five columns, of their types, its primary key on the
 * first four its only index, no trigger and no rule.  When it is, w->atts
 * has the columns' numbers and w->pk the key, open.
 */
static bool
tally_direct(TallyWriter *w)
{
	Relation	rel = w->rel;
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *indexes;
	Oid			pkey;
	Oid			types[TALLY_NCOLS] = {DATEOID, TEXTOID, InvalidOid, INT4OID, INT8OID};
	bool		ok;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rules != NULL || desc->natts != TALLY_NCOLS)
		return false;
	for (int c = 0; c < TALLY_NCOLS; c++)
		w->atts[c] = InvalidAttrNumber;
	for (int i = 0; i < TALLY_NCOLS; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || a->attgenerated)
			return false;
		for (int c = 0; c < TALLY_NCOLS; c++)
			if (strcmp(NameStr(a->attname), tally_colnames[c]) == 0)
				w->atts[c] = a->attnum;
	}
	types[2] = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("outcome"),
							   ObjectIdGetDatum(onboarding_schema_oid()));
	for (int c = 0; c < TALLY_NCOLS; c++)
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
	ok = w->pk->rd_index->indnatts == TALLY_NCOLS - 1 &&
		RelationGetIndexExpressions(w->pk) == NIL && RelationGetIndexPredicate(w->pk) == NIL;
	for (int c = 0; ok && c < TALLY_NCOLS - 1; c++)
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

/*
 * Add delta to this backend's row of daily_tally for key (the values of
 * its first three columns), or create it.  The row is found through the
 * primary key with a dirty snapshot; when another transaction holds it
 * (compact_daily_tally() merging it, a transaction of this backend's that
 * is prepared and not yet committed), the count goes to the backend's next
 * spare slot instead: a delivery never waits on a count.  An update that
 * stays on its page (HOT, as a rule: no indexed column changes) makes no
 * index entry.
 */
static void
tally_add_row(TallyWriter *w, Datum *key, int64 delta)
{
	static const RegProcedure eq[TALLY_NCOLS - 1] = {F_DATE_EQ, F_TEXTEQ, F_ENUM_EQ, F_INT4EQ};
	TupleTableSlot *found = w->found;
	TupleTableSlot *next = w->next;
	AttrNumber	natt = w->atts[TALLY_NCOLS - 1];

	for (int spare = 0; spare <= TALLY_SLOT_SPARES; spare++)
	{
		SnapshotData dirty;
		ScanKeyData sk[TALLY_NCOLS - 1];
		IndexScanDesc scan;
		bool		have;
		bool		busy = false;

		key[3] = Int32GetDatum(ob_backend_slot() + spare * TALLY_SLOT_STRIDE);
		InitDirtySnapshot(dirty);
		for (int c = 0; c < TALLY_NCOLS - 1; c++)
			ScanKeyEntryInitialize(&sk[c], 0, c + 1, BTEqualStrategyNumber, InvalidOid,
								   w->pk->rd_indcollation[c], eq[c], key[c]);
		scan = ob_index_beginscan(w->rel, w->pk, &dirty, TALLY_NCOLS - 1, 0);
		index_rescan(scan, sk, TALLY_NCOLS - 1, NULL, 0);
		have = index_getnext_slot(scan, ForwardScanDirection, found);
		if (have)
			busy = TransactionIdIsValid(dirty.xmin) || TransactionIdIsValid(dirty.xmax);
		index_endscan(scan);
		if (busy)
		{
			ExecClearTuple(found);
			continue;
		}

		ExecClearTuple(next);
		for (int c = 0; c < TALLY_NCOLS - 1; c++)
		{
			next->tts_values[w->atts[c] - 1] = key[c];
			next->tts_isnull[w->atts[c] - 1] = false;
		}
		next->tts_isnull[natt - 1] = false;
		if (have)
		{
			bool		isnull;
			Datum		n = slot_getattr(found, natt, &isnull);
			TM_FailureData tmfd;
			LockTupleMode lockmode;
			bool		update_indexes;
			bool		only_summarizing;
			TM_Result	res;

			next->tts_values[natt - 1] = Int64GetDatum((isnull ? 0 : DatumGetInt64(n)) + delta);
			ExecStoreVirtualTuple(next);
			res = ob_table_tuple_update(w->rel, &found->tts_tid, next, w->cid, InvalidSnapshot,
										InvalidSnapshot, false, &tmfd, &lockmode,
										&update_indexes, &only_summarizing);
			ExecClearTuple(found);
			if (res == TM_BeingModified || res == TM_Updated || res == TM_Deleted)
				continue;		/* taken since it was found: the next spare slot */
			if (res != TM_Ok)
				elog(ERROR, "could not update a row of onboarding.daily_tally (result %d)", (int) res);
			if (update_indexes)
				tally_index(w, true, only_summarizing);
		}
		else
		{
			next->tts_values[natt - 1] = Int64GetDatum(delta);
			ExecStoreVirtualTuple(next);
			table_tuple_insert(w->rel, next, w->cid, 0, NULL);
			tally_index(w, false, false);
		}
		ExecClearTuple(next);
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("every row of this session's counts in onboarding.daily_tally is held by another transaction"),
			 errdetail("%d prepared transactions of this session, or merges by compact_daily_tally(), hold them.",
					   TALLY_SLOT_SPARES + 1),
			 errhint("Commit or roll back the prepared transactions (pg_prepared_xacts), then deliver again.")));
}

/* Write n counts (arrays of their columns) row by row, without a statement. */
static void
tally_write_direct(TallyWriter *w, Datum *days, Datum *providers, Datum *outcomes, Datum *counts,
				   int n)
{
	w->found = table_slot_create(w->rel, NULL);
	w->next = table_slot_create(w->rel, NULL);
	/* rows this transaction wrote before are seen, and updated, from a new command */
	CommandCounterIncrement();
	w->cid = GetCurrentCommandId(true);
	for (int i = 0; i < n; i++)
	{
		Datum		key[TALLY_NCOLS - 1] = {days[i], providers[i], outcomes[i], (Datum) 0};

		tally_add_row(w, key, DatumGetInt64(counts[i]));
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
tally_write_statement(Datum *days, Datum *providers, Datum *outcomes, Datum *counts, int n)
{
	Datum		args[5];
	ObSpiFrame	spi;
	Datum	   *labels = palloc(n * sizeof(Datum));
	/* before commit (tally_xact) no statement may be running: take a snapshot */
	bool		pushed = !ActiveSnapshotSet();

	for (int i = 0; i < n; i++)
		labels[i] = CStringGetTextDatum(onboarding_outcome_names[onboarding_outcome_from_oid(DatumGetObjectId(outcomes[i]))]);
	args[0] = tally_array(days, NULL, n, DATEOID);
	args[1] = tally_array(providers, NULL, n, TEXTOID);
	args[2] = tally_array(labels, NULL, n, TEXTOID);
	args[3] = Int32GetDatum(ob_backend_slot());
	args[4] = tally_array(counts, NULL, n, INT8OID);
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	onboarding_spi_connect(&spi);
	if (tally_plan == NULL)
		tally_plan = onboarding_spi_prepare(
			"INSERT INTO onboarding.daily_tally AS t (day, provider, outcome, slot, n)"
			" SELECT u.day, u.provider, u.outcome::onboarding.outcome, $4, u.n"
			"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
			"                   pg_catalog.unnest($3), pg_catalog.unnest($5))"
			"        AS u (day, provider, outcome, n)"
			" ON CONFLICT (day, provider, outcome, slot)"
			" DO UPDATE SET n = t.n OPERATOR(pg_catalog.+) excluded.n",
			5, (Oid[]) {DATEARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4OID, INT8ARRAYOID});
	if (SPI_execute_plan(tally_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write onboarding.daily_tally");
	onboarding_spi_finish(&spi);
	if (pushed)
		PopActiveSnapshot();
}

/*
 * Write what was gathered to onboarding.daily_tally, into this backend's
 * rows, and start again from nothing.
 */
void
onboarding_tally_flush(void)
{
	HASH_SEQ_STATUS seq;
	TallyEntry *e;
	int			n = 0;
	int			size;
	Oid			relid;
	Datum	   *days;
	Datum	   *providers;
	Datum	   *outcomes;
	Datum	   *counts;
	MemoryContext scratch;
	MemoryContext old;

	if (!tally_pending())
		return;
	/* a schema not updated to 0.3.0 yet has no counts: its update fills them */
	relid = get_relname_relid("daily_tally", onboarding_schema_oid());
	if (!OidIsValid(relid))
	{
		tally_clear();
		return;
	}
	size = hash_get_num_entries(tally);
	scratch = AllocSetContextCreate(CurrentMemoryContext, "onboarding tally flush",
									ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(scratch);
	days = palloc(size * sizeof(Datum));
	providers = palloc(size * sizeof(Datum));
	outcomes = palloc(size * sizeof(Datum));
	counts = palloc(size * sizeof(Datum));
	hash_seq_init(&seq, tally);
	while ((e = (TallyEntry *) hash_seq_search(&seq)) != NULL)
	{
		if (e->n == 0)
			continue;
		days[n] = DateADTGetDatum(e->k.day);
		providers[n] = CStringGetTextDatum(e->k.provider == OB_PROVIDER_NONE ? "" :
										   onboarding_provider_name((ObProvider) e->k.provider));
		outcomes[n] = ObjectIdGetDatum(onboarding_outcome_oid((ObOutcome) e->k.outcome));
		counts[n] = Int64GetDatum(e->n);
		n++;
	}
	if (n > 0)
	{
		TallyWriter w = {0};

		w.rel = table_open(relid, RowExclusiveLock);
		if (tally_direct(&w))
			tally_write_direct(&w, days, providers, outcomes, counts, n);
		else
			tally_write_statement(days, providers, outcomes, counts, n);
		table_close(w.rel, NoLock);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);
	/* written: start again from nothing (the saves of open subtransactions stay) */
	tally_clear();
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

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
 * never wait for each other on a count.  Changes are gathered in memory
 * and written with one statement when the inbox's statement ends, when
 * rebuild() ends a unit of work, and before commit.  Subtransactions: what
 * was gathered when one began is remembered and given back if it rolls
 * back (what it wrote itself is undone by the rollback); a transaction
 * that aborts forgets everything.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

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

/*
 * Write what was gathered to onboarding.daily_tally: one INSERT ... ON
 * CONFLICT for all of it, as the extension's owner, into this backend's
 * rows.
 */
void
onboarding_tally_flush(void)
{
	HASH_SEQ_STATUS seq;
	TallyEntry *e;
	int			n = 0;
	int			size;
	Datum	   *days;
	Datum	   *providers;
	Datum	   *outcomes;
	Datum	   *counts;
	Datum		args[5];
	ObSpiFrame	spi;
	MemoryContext scratch;
	MemoryContext old;

	if (!tally_pending())
		return;
	/* a schema not updated to 0.3.0 yet has no counts: its update fills them */
	if (!OidIsValid(get_relname_relid("daily_tally", onboarding_schema_oid())))
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
		outcomes[n] = CStringGetTextDatum(onboarding_outcome_names[e->k.outcome]);
		counts[n] = Int64GetDatum(e->n);
		n++;
	}
	if (n > 0)
	{
		args[0] = tally_array(days, NULL, n, DATEOID);
		args[1] = tally_array(providers, NULL, n, TEXTOID);
		args[2] = tally_array(outcomes, NULL, n, TEXTOID);
		args[3] = Int32GetDatum(ob_backend_slot());
		args[4] = tally_array(counts, NULL, n, INT8OID);
	}
	MemoryContextSwitchTo(old);
	if (n > 0)
	{
		/* before commit (tally_xact) no statement may be running: take a snapshot */
		bool		pushed = !ActiveSnapshotSet();

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

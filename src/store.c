/*-------------------------------------------------------------------------
 *
 * store.c
 *		The pipeline's own access to the state tables and history: rows
 *		found, locked, inserted, updated and deleted through the table
 *		access method and the executor's index helpers, without SQL.
 *
 * A delivery writes a row or two and a history row.  Through SPI each of
 * those writes is a whole statement (executor start-up, a plan check, a
 * projection, a command-counter increment), which cost five times the
 * write itself.  Here a state table is opened once per transaction, with
 * its indexes, and a row is reached through its primary key:
 *
 *	- find: an index scan of (provider, key) under a dirty snapshot, waiting
 *	  for a transaction that is inserting or deleting the row, then a row
 *	  lock (FOR UPDATE strength).  A row this transaction wrote itself needs
 *	  no lock: nobody else can touch it before we commit.
 *	- create: a speculative insertion, as INSERT ... ON CONFLICT DO NOTHING
 *	  does it; when another session created the key first, the caller finds
 *	  and locks that row instead.
 *	- update, delete: of a row found or created, with its index entries.
 *	- append: a history row, with its identity taken from its sequence.
 *
 * Visibility inside the transaction.  A row written by the current command
 * cannot be written again by it; the command counter is advanced only when
 * that is about to happen, not after every write, so a long COPY uses few
 * command ids and keeps few combo command ids in memory.
 *
 * Triggers, rules and constraints a user adds to these tables do not run
 * for the pipeline's writes (README, "Writing to state tables").  Relations
 * are opened under the top transaction's resource owner and closed before
 * commit; a change to one of them (DDL in the same transaction) makes the
 * next delivery open them again.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "parser/parse_relation.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

/* An open table */
struct ObStore
{
	Oid			relid;
	Relation	rel;
	ResultRelInfo *rri;			/* with its indexes open */
	Relation	pkey;			/* (provider, key) or (id) */
	List	   *arbiter;		/* the primary key, for speculative insertion */
	TupleTableSlot *slot;		/* scratch, emptied after every call */
	Oid			sequence;		/* identity sequence of column 1, if any */
	uint64		serial;			/* tells this opening from earlier ones */
};

static uint64 store_openings = 0;

static const char *const store_names[OB_NSTORES] = {
	"account", "proposal", "document", "closure", "history"
};

/* What is open in this transaction */
static struct
{
	MemoryContext cxt;			/* NULL: nothing open */
	EState	   *estate;
	ObStore    *tables[OB_NSTORES];
	bool		stale;			/* a relation changed: reopen before the next use */
	bool		callback;		/* relcache callback registered */
} store;

/* Relcache callback: one of our relations changed (or all were flushed). */
static void
store_invalidate(Datum arg, Oid relid)
{
	if (store.cxt == NULL)
		return;
	for (int i = 0; i < OB_NSTORES; i++)
		if (store.tables[i] != NULL &&
			(relid == InvalidOid || relid == store.tables[i]->relid))
			store.stale = true;
}

/* Close everything; with forget, only drop our pointers (after an abort). */
static void
store_close(bool forget)
{
	ResourceOwner saved = CurrentResourceOwner;

	if (store.cxt == NULL)
		return;
	if (!forget)
	{
		CurrentResourceOwner = TopTransactionResourceOwner;
		for (int i = 0; i < OB_NSTORES; i++)
		{
			ObStore    *s = store.tables[i];

			if (s == NULL)
				continue;
			ExecDropSingleTupleTableSlot(s->slot);
			ExecCloseIndices(s->rri);
			table_close(s->rel, NoLock);
		}
		FreeExecutorState(store.estate);
		CurrentResourceOwner = saved;
		MemoryContextDelete(store.cxt);
	}
	store.cxt = NULL;
	store.estate = NULL;
	store.stale = false;
	memset(store.tables, 0, sizeof(store.tables));
}

/* At transaction end: close before commit; after an abort just forget. */
void
onboarding_store_end_of_xact(bool commit)
{
	store_close(!commit);
}

/* Open one of the pipeline's tables with its indexes. */
static ObStore *
store_open_one(ObStoreId which)
{
	ObStore    *s = MemoryContextAllocZero(store.cxt, sizeof(ObStore));
	Oid			pkey;

	s->serial = ++store_openings;
	s->relid = onboarding_relation_oid(store_names[which]);
	s->rel = table_open(s->relid, RowExclusiveLock);
	s->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(s->rri, s->rel, 0, NULL, 0);
	ExecOpenIndices(s->rri, true);
	pkey = RelationGetPrimaryKeyIndex(s->rel);
	if (!OidIsValid(pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("onboarding.%s has no primary key", store_names[which]),
				 errhint("The extension's objects are damaged; reinstall the extension.")));
	for (int i = 0; i < s->rri->ri_NumIndices; i++)
		if (RelationGetRelid(s->rri->ri_IndexRelationDescs[i]) == pkey)
			s->pkey = s->rri->ri_IndexRelationDescs[i];
	if (s->pkey == NULL)
		elog(ERROR, "primary key of onboarding.%s is not open", store_names[which]);
	s->arbiter = list_make1_oid(pkey);
	s->slot = table_slot_create(s->rel, NULL);
	if (which == OB_S_HISTORY)
		s->sequence = getIdentitySequence(s->relid, 1, false);
	return s;
}

/*
 * One of the pipeline's tables, opened on first use in the transaction (in
 * a context of its own, under the top transaction's resource owner, so that
 * it outlives statements and subtransactions).
 */
ObStore *
onboarding_store(ObStoreId which)
{
	MemoryContext oldcxt;
	ResourceOwner saved;

	Assert(which >= 0 && which < OB_NSTORES);
	if (store.cxt != NULL && store.tables[which] != NULL)
		return store.tables[which];

	if (!store.callback)
	{
		CacheRegisterRelcacheCallback(store_invalidate, (Datum) 0);
		store.callback = true;
	}
	saved = CurrentResourceOwner;
	CurrentResourceOwner = TopTransactionResourceOwner;
	if (store.cxt == NULL)
	{
		store.cxt = AllocSetContextCreate(TopTransactionContext, "onboarding store",
										  ALLOCSET_DEFAULT_SIZES);
		oldcxt = MemoryContextSwitchTo(store.cxt);
		store.estate = CreateExecutorState();
	}
	else
		oldcxt = MemoryContextSwitchTo(store.cxt);
	/* after an error, the (sub)transaction's abort restores both */
	store.tables[which] = store_open_one(which);
	CurrentResourceOwner = saved;
	MemoryContextSwitchTo(oldcxt);
	return store.tables[which];
}

/*
 * Called before a delivery touches any table: when one of them changed
 * since it was opened, close them all (they open again on use).
 */
void
onboarding_store_begin(void)
{
	if (store.stale)
		store_close(false);
}

/* A number no other opening of a table has had in this backend. */
uint64
onboarding_store_serial(ObStore *s)
{
	return s->serial;
}

/* The tuple descriptor of an open table. */
TupleDesc
onboarding_store_desc(ObStore *s)
{
	return RelationGetDescr(s->rel);
}

/* Remember where a row is and whether this transaction wrote it. */
static void
store_remember(ObStoreRow *row, HeapTuple tuple)
{
	row->tid = tuple->t_self;
	row->ours = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data));
	row->cmin = row->ours ? HeapTupleHeaderGetCmin(tuple->t_data) : InvalidCommandId;
}

/*
 * Find the row of (provider, key) and copy it into values/nulls (allocated
 * by the caller, natts long).  With lock, under a dirty snapshot, waiting
 * for whoever inserts or deletes it, and lock it; without, as the active
 * snapshot sees it (explain()).  Returns false when there is no such row.
 */
bool
onboarding_store_find(ObStore *s, ObProvider provider, const char *key, bool lock,
					  Datum *values, bool *nulls, ObStoreRow *row)
{
	SnapshotData dirty;
	Snapshot	snapshot;
	ScanKeyData skey[2];
	text	   *keytext = cstring_to_text(key);

	InitDirtySnapshot(dirty);
	snapshot = lock ? &dirty : GetActiveSnapshot();
	ScanKeyEntryInitialize(&skey[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   s->pkey->rd_indcollation[0], F_ENUM_EQ,
						   ObjectIdGetDatum(onboarding_provider_oid(provider)));
	ScanKeyEntryInitialize(&skey[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   s->pkey->rd_indcollation[1], F_TEXTEQ, PointerGetDatum(keytext));

	for (;;)
	{
		IndexScanDesc scan;
		TransactionId xwait = InvalidTransactionId;
		bool		found;
		TM_FailureData tmfd;
		TM_Result	res;
		bool		should_free;
		HeapTuple	tuple;

		scan = index_beginscan(s->rel, s->pkey, snapshot, 2, 0);
		index_rescan(scan, skey, 2, NULL, 0);
		found = index_getnext_slot(scan, ForwardScanDirection, s->slot);
		if (found && lock)
			xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
		index_endscan(scan);

		if (!found)
		{
			ExecClearTuple(s->slot);
			pfree(keytext);
			return false;
		}
		if (TransactionIdIsValid(xwait))
		{
			/* being inserted or deleted by another transaction: wait, look again */
			ExecClearTuple(s->slot);
			XactLockTableWait(xwait, NULL, NULL, XLTW_None);
			continue;
		}

		tuple = ExecFetchSlotHeapTuple(s->slot, false, &should_free);
		store_remember(row, tuple);
		if (lock && !row->ours)
		{
			res = table_tuple_lock(s->rel, &row->tid, InvalidSnapshot, s->slot,
								   GetCurrentCommandId(false), LockTupleExclusive,
								   LockWaitBlock, 0, &tmfd);
			if (res == TM_Updated || res == TM_Deleted)
			{
				/* changed by a transaction that committed meanwhile: look again */
				ExecClearTuple(s->slot);
				continue;
			}
			if (res != TM_Ok)
				elog(ERROR, "could not lock a row of onboarding.%s (%d)",
					 RelationGetRelationName(s->rel), (int) res);
			tuple = ExecFetchSlotHeapTuple(s->slot, false, &should_free);
		}
		heap_deform_tuple(tuple, RelationGetDescr(s->rel), values, nulls);
		/* by-reference values point into the buffer: copy them out */
		for (int i = 0; i < RelationGetDescr(s->rel)->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(s->rel), i);

			if (!nulls[i] && !att->attbyval)
				values[i] = datumCopy(values[i], false, att->attlen);
		}
		if (should_free)
			heap_freetuple(tuple);
		ExecClearTuple(s->slot);
		pfree(keytext);
		return true;
	}
}

/* Put values into the scratch slot. */
static TupleTableSlot *
store_fill(ObStore *s, Datum *values, bool *nulls)
{
	TupleTableSlot *slot = s->slot;
	int			natts = RelationGetDescr(s->rel)->natts;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, natts * sizeof(Datum));
	memcpy(slot->tts_isnull, nulls, natts * sizeof(bool));
	ExecStoreVirtualTuple(slot);
	return slot;
}

/*
 * Create a row, unless its key exists (then false: find and lock that one
 * instead).  The insertion is speculative, as for ON CONFLICT DO NOTHING,
 * so that two sessions creating the same key never fail.
 */
bool
onboarding_store_create(ObStore *s, Datum *values, bool *nulls, ObStoreRow *row)
{
	EState	   *estate = store.estate;
	TupleTableSlot *slot = store_fill(s, values, nulls);
	CommandId	cid = GetCurrentCommandId(true);

	for (;;)
	{
		ItemPointerData conflict;
		uint32		token;
		bool		spec_conflict = false;
		List	   *recheck;

		if (!ExecCheckIndexConstraints(s->rri, slot, estate, &conflict, s->arbiter))
		{
			ExecClearTuple(slot);
			ResetPerTupleExprContext(estate);
			return false;
		}
		token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
		table_tuple_insert_speculative(s->rel, slot, cid, 0, NULL, token);
		recheck = ExecInsertIndexTuples(s->rri, slot, estate, false, true,
										&spec_conflict, s->arbiter);
		table_tuple_complete_speculative(s->rel, slot, token, !spec_conflict);
		SpeculativeInsertionLockRelease(GetCurrentTransactionId());
		list_free(recheck);
		ResetPerTupleExprContext(estate);
		if (!spec_conflict)
			break;
		/* lost a race for the key: check again (and wait for the winner) */
	}
	row->tid = slot->tts_tid;
	row->ours = true;
	row->cmin = cid;
	ExecClearTuple(slot);
	return true;
}

/*
 * Before rewriting a row this transaction wrote: a row written by the
 * current command is invisible to it, so move to the next command.
 */
static CommandId
store_command_for(ObStoreRow *row)
{
	if (row->ours && row->cmin >= GetCurrentCommandId(false))
		CommandCounterIncrement();
	return GetCurrentCommandId(true);
}

/* Replace a row found (and locked) or created before. */
void
onboarding_store_update(ObStore *s, ObStoreRow *row, Datum *values, bool *nulls)
{
	TupleTableSlot *slot = store_fill(s, values, nulls);
	CommandId	cid = store_command_for(row);
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	res;

	res = table_tuple_update(s->rel, &row->tid, slot, cid, InvalidSnapshot, InvalidSnapshot,
							 true, &tmfd, &lockmode, &update_indexes);
	if (res != TM_Ok)
		elog(ERROR, "could not update a locked row of onboarding.%s (%d)",
			 RelationGetRelationName(s->rel), (int) res);
	if (update_indexes)
		list_free(ExecInsertIndexTuples(s->rri, slot, store.estate, false, false, NULL, NIL));
	ResetPerTupleExprContext(store.estate);
	row->tid = slot->tts_tid;
	row->ours = true;
	row->cmin = cid;
	ExecClearTuple(slot);
}

/* Delete a row found (and locked) or created before. */
void
onboarding_store_delete(ObStore *s, ObStoreRow *row)
{
	CommandId	cid = store_command_for(row);
	TM_FailureData tmfd;
	TM_Result	res;

	res = table_tuple_delete(s->rel, &row->tid, cid, InvalidSnapshot, InvalidSnapshot,
							 true, &tmfd, false);
	if (res != TM_Ok)
		elog(ERROR, "could not delete a locked row of onboarding.%s (%d)",
			 RelationGetRelationName(s->rel), (int) res);
	ItemPointerSetInvalid(&row->tid);
}

/*
 * Append a row to a table that is only ever appended to (history): its
 * first column takes the next value of its identity sequence.
 */
void
onboarding_store_append(ObStore *s, Datum *values, bool *nulls)
{
	TupleTableSlot *slot;

	Assert(OidIsValid(s->sequence));
	values[0] = Int64GetDatum(nextval_internal(s->sequence, false));
	nulls[0] = false;
	slot = store_fill(s, values, nulls);
	table_tuple_insert(s->rel, slot, GetCurrentCommandId(true), 0, NULL);
	list_free(ExecInsertIndexTuples(s->rri, slot, store.estate, false, false, NULL, NIL));
	ResetPerTupleExprContext(store.estate);
	ExecClearTuple(slot);
}

/* Attribute number of a column of an open table; error if it is missing. */
AttrNumber
onboarding_store_attnum(ObStore *s, const char *name)
{
	AttrNumber	attnum = attnameAttNum(s->rel, name, false);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of onboarding.%s does not exist", name,
						RelationGetRelationName(s->rel)),
				 errhint("The extension's objects are damaged; reinstall the extension.")));
	return attnum;
}

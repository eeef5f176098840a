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
 * write itself.  Here a state table is opened once per statement, with
 * its indexes, and a row is reached through its primary key:
 *
 *	- find: an index scan of (provider, key) under a dirty snapshot, waiting
 *	  for a transaction that is inserting or deleting the row, then a row
 *	  lock (FOR UPDATE strength).  A row this transaction wrote itself needs
 *	  no lock: nobody else can touch it before we commit.
 *	- create: a speculative insertion, as INSERT ... ON CONFLICT DO NOTHING
 *	  does it; when another session created the key first, the caller finds
 *	  and locks that row instead.
 *	- update: into the window (below); delete: of a row found or created.
 *	- append: a history row, with its identity taken from its sequence.
 *
 * The window.  Rows found, created or updated by a statement stay in memory
 * (at most OB_WINDOW_ROWS), and an update changes only the window's copy;
 * onboarding_store_flush() writes each changed row once, at the end of the
 * statement (the inbox's statement trigger), when the window is full,
 * before commit and in rebuild().  A row written by the current command
 * cannot be written again by it, so the command counter is advanced only
 * when that is about to happen: a long COPY uses few command ids and keeps
 * few combo command ids in memory.  Subtransactions: see store_subxact().
 *
 * A table a user added to (a column, a constraint, a trigger, a foreign key
 * to it: bind.c decides) is written at once, row by row, through the
 * executor's row primitives (bind.c), not through the window; the others
 * take the fast path described here.  rebuild() deletes the rows it no
 * longer derives (onboarding_store_sweep) instead of emptying a table.  Relations
 * are opened under the top transaction's resource owner, so that they
 * outlive subtransactions, and closed at the end of the statement or before
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
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/namespace.h"
#include "parser/parsetree.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "executor/executor.h"
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

#include "compat.h"

/*
 * One relation that holds inbox or history rows (parts.c), open: a leaf
 * partition, or for a plain table the table itself (then rel and rri are
 * the store's)
 */
typedef struct StorePart
{
	Relation	rel;
	ResultRelInfo *rri;			/* its indexes: opened on the first rewrite (history: open) */
	bool		indexes_open;
	Relation	index[OB_INBOX_NINDEXES];	/* opened on first search; NULL: not yet */
	Oid			indexoid[OB_INBOX_NINDEXES];	/* InvalidOid: it has none */
	bool		own;			/* opened here (a partition), not the store's */
	Relation	entity_index;	/* history's: its index by entity (store_history_index) */
	ObBind	   *bind;			/* history's: a user added to it (then every leaf has one) */
} StorePart;

/* An open table */
struct ObStore
{
	ObStoreId	which;
	Oid			relid;
	Relation	rel;
	ResultRelInfo *rri;			/* its indexes: opened on the first write */
	bool		indexes_open;	/* they are */
	List	   *read_indexes;	/* Relation: indexes opened to be searched */
	Relation	pkey;			/* (provider, key); history: by entity (below) */
	AttrNumber	keyatt[2];		/* its columns */
	int			entcol[3];		/* history: index columns of provider, entity, key
								 * (-1: not in the index, compared row by row) */
	bool		by_time;		/* history: the index is (entity_key, event_at) */
	AttrNumber	entatt[3];		/* history: table columns of the same */
	List	   *arbiter;		/* the primary key, for speculative insertion */
	TupleTableSlot *slot;		/* scratch, emptied after every call */
	Oid			sequence;		/* identity sequence of column 1, if any */
	ObInboxAtts inbox_atts;		/* the inbox's: its column numbers */
	StorePart  *parts;			/* the inbox's, history's: the relations holding its rows */
	int			nparts;
	int			last_part;		/* history's: the leaf the last row written went to */
	AttrNumber	inbox_id_att;	/* history's: the column it is partitioned by */
	bool		spread_opened;	/* the inbox's: its group_partition looked for */
	Relation	spread;			/* onboarding.group_partition, or NULL */
	ResultRelInfo *spread_rri;	/* its indexes, open */
	Relation	spread_index;	/* its index on (provider, subject) */
	TupleTableSlot *spread_slot;
	uint64		serial;			/* its shape (onboarding_store_serial) */
	TupleTableSlot **pending;	/* history: rows appended, not yet written */
	int			npending;
	ObBind	   *bind;			/* a user added to it: written through bind.c */
	ObTallyCols tally;			/* a state table's: its status columns (tally.c) */
	TupleTableSlot *stored;		/* a state table's: a version read to be counted */
};

static uint64 store_openings = 0;

/*
 * Each table as it was last opened: while no invalidation has come for it,
 * its columns are where they were, and an opening in a later statement
 * keeps the serial (so callers' cached column positions stay good) and
 * the inbox's column numbers.
 */
static struct
{
	Oid			relid;
	uint64		serial;
	bool		valid;
	bool		bound;			/* a user added to it (onboarding_bind_needed) */
} store_shapes[OB_NSTORES];
static ObInboxAtts store_shape_inbox_atts;

/* Rows the window holds before it is flushed */
#define OB_WINDOW_ROWS 4096

/* History rows appended before one table_multi_insert() writes them */
#define OB_HISTORY_BATCH 128

static void store_subxact(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg);
static void store_write(ObStore *s, ObStoreRow *row, Datum *values, bool *nulls);
static long window_size(void);
static void store_write_indexes(ObStore *s);
static void history_write(ObStore *s);
static int	history_part_index(ObStore *s, Oid leaf);
static void history_discard(ObStore *s);
static bool history_pending(void);


static const char *const store_names[OB_NSTORES] = {
	"account", "proposal", "document", "closure", "history", "inbox"
};

/* A state row in the window: what identifies it */
typedef struct WindowKey
{
	ObStoreId	which;
	Oid			provider;
	const char *key;
} WindowKey;

/* A state row in the window: where it is, and its latest values */
typedef struct WindowRow
{
	WindowKey	k;
	ObStoreRow	row;			/* its version in the table */
	Datum	   *values;			/* its latest values */
	bool	   *nulls;
	bool		dirty;			/* newer than the version in the table */
} WindowRow;

/* Rows to put back in the window if a subtransaction rolls back */
typedef struct WindowSave
{
	SubTransactionId subid;
	bool		holds_rows;		/* holds_rows when it began */
	List	   *rows;			/* WindowRow *, as they were before it began */
	List	   *history;		/* HeapTuple: history appended before it began, unwritten */
} WindowSave;

/* What is open in this statement */
static struct
{
	MemoryContext cxt;			/* NULL: nothing open */
	EState	   *estate;
	ObStore    *tables[OB_NSTORES];
	bool		stale;			/* a relation changed: reopen before the next use */
	bool		callback;		/* callbacks registered */
	MemoryContext window_cxt;	/* the window, emptied by every flush */
	HTAB	   *window;			/* WindowRow by WindowKey; NULL when empty */
} store;

/*
 * Outside the statement's memory (TopTransactionContext), since they must
 * outlive a close: what to put back in the window if a subtransaction
 * rolls back, and rows put back but not yet in the window.
 */
static bool holds_rows = false;	/* this transaction has locked or created a row */
static List *window_saves = NIL;	/* WindowSave *, innermost first */
static List *holds_saves = NIL;	/* holds_rows at each open subtransaction's start */
static List *window_restored = NIL; /* WindowRow *, dirty */

/*
 * Where what the store opens or allocates lives: under the top
 * transaction's resource owner (so that it outlives subtransactions) and
 * in the store's memory.  After an error, the (sub)transaction's abort
 * restores both.
 */
typedef struct StoreScope
{
	ResourceOwner owner;
	MemoryContext cxt;
} StoreScope;

/* Enter the store's scope, remembering where we were. */
static void
store_scope_enter(StoreScope *scope)
{
	scope->owner = CurrentResourceOwner;
	CurrentResourceOwner = TopTransactionResourceOwner;
	scope->cxt = MemoryContextSwitchTo(store.cxt);
}

/* Go back to where store_scope_enter() was called. */
static void
store_scope_leave(StoreScope *scope)
{
	MemoryContextSwitchTo(scope->cxt);
	CurrentResourceOwner = scope->owner;
}

/* Relcache callback: one of our relations changed (or all were flushed). */
static void
store_invalidate(Datum arg, Oid relid)
{
	for (int i = 0; i < OB_NSTORES; i++)
		if (relid == InvalidOid || relid == store_shapes[i].relid)
			store_shapes[i].valid = false;
	if (store.cxt == NULL)
		return;
	for (int i = 0; i < OB_NSTORES; i++)
		if (store.tables[i] != NULL &&
			(relid == InvalidOid || relid == store.tables[i]->relid))
			store.stale = true;
}

/* Close a partition the store opened (a plain table's is the store's). */
static void
store_part_close(StorePart *p)
{
	if (!p->own)
		return;
	if (p->bind != NULL)
		onboarding_bind_close(p->bind);
	for (int k = 0; k < OB_INBOX_NINDEXES; k++)
		if (p->index[k] != NULL)
			index_close(p->index[k], NoLock);
	if (p->indexes_open)
		ExecCloseIndices(p->rri);
	table_close(p->rel, NoLock);
}

/* Close everything; with forget, only drop our pointers (after an abort). */
static void
store_close(bool forget)
{
	ResourceOwner saved = CurrentResourceOwner;
	ListCell   *lc;

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
			for (int j = 0; s->pending != NULL && j < OB_HISTORY_BATCH && s->pending[j]; j++)
				ExecDropSingleTupleTableSlot(s->pending[j]);
			if (s->bind != NULL)
				onboarding_bind_close(s->bind);
			ExecDropSingleTupleTableSlot(s->slot);
			if (s->stored != NULL)
				ExecDropSingleTupleTableSlot(s->stored);
			for (int j = 0; j < s->nparts; j++)
				store_part_close(&s->parts[j]);
			if (s->spread != NULL)
			{
				ExecDropSingleTupleTableSlot(s->spread_slot);
				ExecCloseIndices(s->spread_rri);
				table_close(s->spread, NoLock);
			}
			ExecCloseIndices(s->rri);
			foreach(lc, s->read_indexes)
				index_close((Relation) lfirst(lc), NoLock);
			table_close(s->rel, NoLock);
		}
		/* what the trigger machinery opened for bound tables' writes */
		foreach(lc, store.estate->es_trig_target_relations)
			table_close(((ResultRelInfo *) lfirst(lc))->ri_RelationDesc, NoLock);
		ExecResetTupleTable(store.estate->es_tupleTable, false);
		FreeExecutorState(store.estate);
		CurrentResourceOwner = saved;
		MemoryContextDelete(store.cxt);
	}
	store.cxt = NULL;
	store.estate = NULL;
	store.stale = false;
	memset(store.tables, 0, sizeof(store.tables));
	store.window_cxt = NULL;
	store.window = NULL;
}

/*
 * At transaction end: flush and close before commit (or PREPARE); after an
 * abort just forget.
 */
static void
store_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			holds_rows = false;
			holds_saves = NIL;
			onboarding_statement_reset();
			onboarding_store_flush(true);
			/* what the window's writes counted (tally.c wrote before us) */
			onboarding_tally_flush();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			onboarding_bind_reset();
			holds_rows = false;
			onboarding_statement_reset();
			store_close(true);
			window_saves = NIL;	/* in TopTransactionContext: gone with it */
			holds_saves = NIL;
			window_restored = NIL;
			break;
		default:
			break;
	}
}

/*
 * History's index by entity, whole (not partial): since 0.3.0 a btree on
 * (entity_key, event_at), which also finds an entity's rows around a time
 * (the bounded refold); in a 0.2.0 schema, before ALTER EXTENSION UPDATE,
 * a hash index on entity_key alone; in a 0.1.0 schema a btree on provider,
 * entity and entity_key.  A user's partial index would miss rows.  Of
 * one relation holding history's rows, its indexes open in rri (each leaf
 * of a partitioned history has its child of the same index).
 */
static Relation
store_history_index(ObStore *s, ResultRelInfo *rri)
{
	static const char *const cols[3] = {"provider", "entity", "entity_key"};
	TupleDesc	desc = RelationGetDescr(s->rel);
	Relation	found = NULL;

	for (int i = 0; i < rri->ri_NumIndices && found == NULL; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];
		int			natts = index->rd_index->indnatts;
		int			col[3] = {-1, -1, -1};
		bool		hash = index->rd_rel->relam == HASH_AM_OID;
		bool		by_time = false;

		if (!heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL))
			continue;
		if (natts == 2 && index->rd_rel->relam == BTREE_AM_OID)
		{
			AttrNumber	first = index->rd_index->indkey.values[0];
			AttrNumber	second = index->rd_index->indkey.values[1];

			by_time = first > 0 && second > 0 &&
				strcmp(NameStr(TupleDescAttr(desc, first - 1)->attname), "entity_key") == 0 &&
				strcmp(NameStr(TupleDescAttr(desc, second - 1)->attname), "event_at") == 0;
			if (!by_time)
				continue;
		}
		else if (!(hash ? natts == 1 : (natts == 3 && index->rd_rel->relam == BTREE_AM_OID)))
			continue;
		for (int c = 0; c < natts; c++)
		{
			AttrNumber	att = index->rd_index->indkey.values[c];

			for (int k = 0; att > 0 && k < 3; k++)
				if (strcmp(NameStr(TupleDescAttr(desc, att - 1)->attname), cols[k]) == 0)
					col[k] = c;
		}
		/* the key, and for 0.1.0's btree the other two: each found once */
		if (col[2] >= 0 && (hash || by_time || (col[0] >= 0 && col[1] >= 0)))
		{
			memcpy(s->entcol, col, sizeof(col));
			s->by_time = by_time;
			found = index;
		}
	}
	if (found == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s has no index on entity_key",
						RelationGetRelid(rri->ri_RelationDesc) == s->relid ? "onboarding.history" :
						psprintf("partition \"%s\" of onboarding.history",
								 RelationGetRelationName(rri->ri_RelationDesc))),
				 errhint("Create history's indexes without ON ONLY, or attach the partition's own to them; if history itself lacks one, the extension's objects are damaged: reinstall the extension.")));
	for (int k = 0; k < 3; k++)
		s->entatt[k] = onboarding_store_attnum(s, cols[k]);
	return found;
}

/*
 * Open a leaf of a partitioned history into p: locked as a write locks it,
 * its indexes open, its index by entity found.  Its ResultRelInfo has no
 * partition root: the trigger machinery looks a partition's up by its
 * root, and would open another one.
 */
static void
history_leaf_open(ObStore *s, StorePart *p, Oid leaf)
{
	p->own = true;
	p->rel = table_open(leaf, RowExclusiveLock);
	p->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(p->rri, p->rel, 0, NULL, 0);
	ExecOpenIndices(p->rri, false);
	p->indexes_open = true;
	p->entity_index = store_history_index(s, p->rri);
}

/* A leaf of a bound history: written through the executor too. */
static void
history_part_bind(ObStore *s, StorePart *p)
{
	p->bind = onboarding_bind_open(p->rel, p->rri, store.estate, -1);
	onboarding_bind_set_root(p->bind, s->bind);
}

/*
 * The relations that hold history's rows: its leaf partitions (each locked
 * as a write to it would lock it, its indexes open, with a bind when a
 * user added to one of them), or a plain history itself.
 */
static void
store_open_history_parts(ObStore *s)
{
	List	   *leaves = onboarding_history_leaves(s->rel);
	bool		bound = false;
	ListCell   *lc;
	int			i = 0;

	s->inbox_id_att = onboarding_store_attnum(s, "inbox_id");
	s->parts = palloc0(Max(1, list_length(leaves)) * sizeof(StorePart));
	s->nparts = list_length(leaves);
	if (s->rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
	{
		StorePart  *p = &s->parts[0];

		store_write_indexes(s);
		p->rel = s->rel;
		p->rri = s->rri;
		p->indexes_open = true;
		p->entity_index = s->pkey = store_history_index(s, s->rri);
		if (store_shapes[OB_S_HISTORY].bound)
			p->bind = s->bind = onboarding_bind_open(s->rel, s->rri, store.estate, -1);
		return;
	}
	foreach(lc, leaves)
	{
		StorePart  *p = &s->parts[i++];

		history_leaf_open(s, p, lfirst_oid(lc));
		bound = bound || onboarding_bind_needed(p->rel, -1);
	}
	s->pkey = s->nparts > 0 ? s->parts[0].entity_index : NULL;
	if (!bound && !store_shapes[OB_S_HISTORY].bound)
		return;
	/* history's own: what the fold judges rows by, and its statement triggers */
	s->bind = onboarding_bind_open(s->rel, s->rri, store.estate, -1);
	for (i = 0; i < s->nparts; i++)
		history_part_bind(s, &s->parts[i]);
}

/*
 * The relations that hold the inbox's rows (parts.c), each locked as a
 * write to it would lock it; a plain inbox is its own one.
 */
static void
store_open_parts(ObStore *s)
{
	int			n;
	const ObInboxPartOids *oids = onboarding_inbox_parts(s->rel, &n);

	s->parts = palloc0(Max(1, n) * sizeof(StorePart));
	s->nparts = n;
	for (int i = 0; i < n; i++)
	{
		StorePart  *p = &s->parts[i];

		memcpy(p->indexoid, oids[i].index, sizeof(p->indexoid));
		p->own = oids[i].rel != s->relid;
		if (!p->own)
		{
			p->rel = s->rel;
			p->rri = s->rri;
			continue;
		}
		p->rel = table_open(oids[i].rel, RowExclusiveLock);
		p->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(p->rri, p->rel, 0, NULL, 0);
	}
}

/*
 * With the inbox, onboarding.group_partition (spread.c), where the groups'
 * deliveries lie among its partitions: open for reading through its index
 * and for appending, on first use in the statement (a statement into the
 * default partition alone never uses it; a 0.2.0 schema, before ALTER
 * EXTENSION UPDATE, has none).
 */
static void
store_open_spread(ObStore *s)
{
	const ObInboxOids *oids = onboarding_inbox_oids();
	StoreScope	scope;

	s->spread_opened = true;
	if (!OidIsValid(oids->spread))
		return;
	store_scope_enter(&scope);
	s->spread = table_open(oids->spread, RowExclusiveLock);
	s->spread_rri = makeNode(ResultRelInfo);
	InitResultRelInfo(s->spread_rri, s->spread, 0, NULL, 0);
	ExecOpenIndices(s->spread_rri, false);
	for (int i = 0; i < s->spread_rri->ri_NumIndices; i++)
		if (RelationGetRelid(s->spread_rri->ri_IndexRelationDescs[i]) == oids->spread_index)
			s->spread_index = s->spread_rri->ri_IndexRelationDescs[i];
	if (s->spread_index == NULL)
		elog(ERROR, "onboarding.group_partition_idx is not an index of onboarding.group_partition");
	s->spread_slot = table_slot_create(s->spread, NULL);
	store_scope_leave(&scope);
}

/* Open one of the pipeline's tables with its indexes. */
static ObStore *
store_open_one(ObStoreId which)
{
	ObStore    *s = MemoryContextAllocZero(store.cxt, sizeof(ObStore));
	Oid			pkey;
	bool		same_shape;

	s->which = which;
	s->relid = onboarding_relation_oid(store_names[which]);
	s->rel = table_open(s->relid, RowExclusiveLock);
	/* (the lock is taken: an invalidation for it has been processed) */
	same_shape = store_shapes[which].valid && store_shapes[which].relid == s->relid;
	if (!same_shape)
	{
		store_shapes[which].relid = s->relid;
		store_shapes[which].serial = ++store_openings;
		store_shapes[which].bound = which != OB_S_INBOX &&
			onboarding_bind_needed(s->rel, which == OB_S_HISTORY ? -1 : (int) which);
		store_shapes[which].valid = true;
	}
	s->serial = store_shapes[which].serial;
	s->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(s->rri, s->rel, 0, NULL, 0);
	if (which == OB_S_INBOX)
	{
		/*
		 * its indexes are read (dedupe.c), its derived columns rewritten: in
		 * the relations that hold its rows, which a heap slot reads (a
		 * partitioned inbox has no storage of its own)
		 */
		s->slot = MakeSingleTupleTableSlot(RelationGetDescr(s->rel), &TTSOpsBufferHeapTuple);
		if (!same_shape)
			onboarding_inbox_atts(RelationGetDescr(s->rel), &store_shape_inbox_atts);
		s->inbox_atts = store_shape_inbox_atts;
		store_open_parts(s);
		return s;
	}
	if (which == OB_S_HISTORY)
	{
		/*
		 * appended to, and read by entity (a 0.1.0 schema has a key on id),
		 * in the relations that hold its rows (a heap slot reads them: a
		 * partitioned history has no storage of its own)
		 */
		s->slot = MakeSingleTupleTableSlot(RelationGetDescr(s->rel), &TTSOpsBufferHeapTuple);
		s->sequence = onboarding_inbox_oids()->history_sequence;
		s->pending = palloc0(OB_HISTORY_BATCH * sizeof(TupleTableSlot *));
		store_open_history_parts(s);
		return s;
	}
	s->slot = table_slot_create(s->rel, NULL);
	pkey = ob_relation_get_primary_key_index(s->rel);
	if (!OidIsValid(pkey))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("onboarding.%s has no primary key", store_names[which]),
				 errhint("The extension's objects are damaged; reinstall the extension.")));
	s->pkey = onboarding_store_index(s, pkey);
	s->arbiter = list_make1_oid(pkey);
	s->keyatt[0] = s->pkey->rd_index->indkey.values[0];
	s->keyatt[1] = s->pkey->rd_index->indnatts > 1 ? s->pkey->rd_index->indkey.values[1] : 0;
	onboarding_tally_cols(which, RelationGetDescr(s->rel), &s->tally);
	s->stored = table_slot_create(s->rel, NULL);
	if (store_shapes[which].bound)
	{
		store_write_indexes(s);
		s->bind = onboarding_bind_open(s->rel, s->rri, store.estate, (int) which);
	}
	return s;
}

/*
 * One of the pipeline's tables, opened on first use in the statement (in a
 * context of its own, under the top transaction's resource owner, so that
 * it outlives subtransactions).
 */
ObStore *
onboarding_store(ObStoreId which)
{
	StoreScope	scope;

	Assert(which >= 0 && which < OB_NSTORES);
	if (store.cxt != NULL && store.tables[which] != NULL)
		return store.tables[which];

	if (!store.callback)
	{
		CacheRegisterRelcacheCallback(store_invalidate, (Datum) 0);
		store.callback = true;
	}
	if (store.cxt == NULL)
		store.cxt = AllocSetContextCreate(TopTransactionContext, "onboarding store",
										  ALLOCSET_DEFAULT_SIZES);
	store_scope_enter(&scope);
	if (store.estate == NULL)
		store.estate = CreateExecutorState();
	store.tables[which] = store_open_one(which);
	store_scope_leave(&scope);
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
		onboarding_store_flush(true);
	else if (window_size() >= OB_WINDOW_ROWS || window_restored != NIL)
		onboarding_store_flush(false);
}

/*
 * Open every index of a table, as a write needs them, on its first write
 * in the statement (speculative insertion's extra information is built by
 * onboarding_store_create for the primary key alone).  A statement that
 * only searches a table, or updates its row in place (HOT), opens one
 * index, not all: a single-row INSERT used to spend a tenth of its
 * set-up opening indexes it never touched.
 */
static void
store_open_indexes(ResultRelInfo *rri, bool *open)
{
	StoreScope	scope;

	if (*open)
		return;
	store_scope_enter(&scope);
	ExecOpenIndices(rri, false);
	store_scope_leave(&scope);
	*open = true;
}

/* The same, for one of the pipeline's tables. */
static void
store_write_indexes(ObStore *s)
{
	store_open_indexes(s->rri, &s->indexes_open);
}

/*
 * An index of a table, to search: one of those open for writing, or
 * opened on its own (under the top transaction's resource owner, like the
 * table) and kept until the table is closed.
 */
Relation
onboarding_store_index(ObStore *s, Oid indexoid)
{
	StoreScope	scope;
	ListCell   *lc;
	Relation	index;

	for (int i = 0; i < s->rri->ri_NumIndices; i++)
		if (RelationGetRelid(s->rri->ri_IndexRelationDescs[i]) == indexoid)
			return s->rri->ri_IndexRelationDescs[i];
	foreach(lc, s->read_indexes)
		if (RelationGetRelid((Relation) lfirst(lc)) == indexoid)
			return (Relation) lfirst(lc);

	store_scope_enter(&scope);
	index = index_open(indexoid, RowExclusiveLock);
	s->read_indexes = lappend(s->read_indexes, index);
	store_scope_leave(&scope);
	if (index->rd_index->indrelid != s->relid)
		elog(ERROR, "index %u is not an index of onboarding.%s", indexoid, store_names[s->which]);
	return index;
}

/* How many relations hold the inbox's rows (parts.c), for a store of it. */
int
onboarding_store_nparts(ObStore *s)
{
	Assert(s->which == OB_S_INBOX);
	return s->nparts;
}

/*
 * The i-th relation that holds the inbox's rows, and in *index its child
 * of one of the inbox's indexes (NULL when it has none), open to search
 * until the store closes.
 */
Relation
onboarding_store_part(ObStore *s, int i, ObInboxIndex which, Relation *index)
{
	StorePart  *p = &s->parts[i];

	Assert(s->which == OB_S_INBOX && i >= 0 && i < s->nparts);
	if (!OidIsValid(p->indexoid[which]))
		*index = NULL;
	else if (!p->own)
		*index = onboarding_store_index(s, p->indexoid[which]);
	else
	{
		if (p->index[which] == NULL)
		{
			StoreScope	scope;

			store_scope_enter(&scope);
			p->index[which] = index_open(p->indexoid[which], RowExclusiveLock);
			store_scope_leave(&scope);
		}
		*index = p->index[which];
	}
	return p->rel;
}

/*
 * onboarding.group_partition, open with the inbox's store (NULL in a schema
 * before 0.3.0): *index its index on (provider, subject), *slot a scratch
 * slot of its rows.
 */
Relation
onboarding_store_spread(ObStore *s, Relation *index, TupleTableSlot **slot)
{
	Assert(s->which == OB_S_INBOX);
	if (!s->spread_opened)
		store_open_spread(s);
	*index = s->spread_index;
	*slot = s->spread_slot;
	return s->spread;
}

/* The oid of the i-th relation that holds the inbox's rows. */
Oid
onboarding_store_part_oid(ObStore *s, int i)
{
	Assert(s->which == OB_S_INBOX && i >= 0 && i < s->nparts);
	return RelationGetRelid(s->parts[i].rel);
}

/* The inbox itself (partitioned, or the plain table), for a store of it. */
Relation
onboarding_store_relation(ObStore *s)
{
	return s->rel;
}

/* What a user added to a table, or NULL when nothing (bind.c). */
ObBind *
onboarding_store_bind(ObStore *s)
{
	return s->bind;
}

/*
 * The end of a delivery's writes to bound tables: their AFTER triggers
 * fire (bind.c); the rows they wrote are forgotten by the window, since a
 * user's trigger may have written them again (the next delivery finds
 * them in their table).
 */
void
onboarding_store_bracket_end(ObBindBracket *br)
{
	onboarding_bind_end(br, store.estate);
	onboarding_store_forget_bound();
}

/*
 * After an error in a delivery's writes, before its subtransaction rolls
 * back: the bound tables' slots let go of what they hold (bind.c).
 */
void
onboarding_store_clear_bound(void)
{
	if (store.cxt == NULL)
		return;
	for (int i = 0; i < OB_NSTORES; i++)
		if (store.tables[i] != NULL && store.tables[i]->bind != NULL)
			onboarding_bind_clear(store.tables[i]->bind);
}

/* The window forgets the rows of bound tables. */
void
onboarding_store_forget_bound(void)
{
	HASH_SEQ_STATUS seq;
	WindowRow  *w;

	if (store.window == NULL)
		return;
	hash_seq_init(&seq, store.window);
	while ((w = (WindowRow *) hash_seq_search(&seq)) != NULL)
		if (store.tables[w->k.which] != NULL && store.tables[w->k.which]->bind != NULL)
		{
			Assert(!w->dirty);
			(void) hash_search(store.window, &w->k, HASH_REMOVE, NULL);
		}
}

/*
 * Is the constraint of an error the primary key of one of the pipeline's
 * open tables?  (A unique violation of it is another session that created
 * the same row first.)
 */
bool
onboarding_store_is_primary_key(const char *table, const char *constraint)
{
	if (table == NULL || constraint == NULL || store.cxt == NULL)
		return false;
	for (int i = 0; i < OB_NWRITTEN_STORES; i++)
	{
		ObStore    *s = store.tables[i];

		if (s != NULL && s->pkey != NULL && i != OB_S_HISTORY &&
			strcmp(RelationGetRelationName(s->rel), table) == 0 &&
			strcmp(RelationGetRelationName(s->pkey), constraint) == 0)
			return true;
	}
	return false;
}

/* A table's scratch slot: the caller empties it when done. */
TupleTableSlot *
onboarding_store_slot(ObStore *s)
{
	return s->slot;
}

/*
 * A number that tells this shape of a table from any other in this
 * backend: it changes when the table may have changed (an invalidation, or
 * another table of the name), so column positions cached under it hold.
 */
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

/* ---------------------------------------------------------------------
 * The window: state rows written since the last flush
 * ---------------------------------------------------------------------
 */

/* Hash of a window key. */
static uint32
window_hash(const void *key, Size keysize)
{
	const WindowKey *k = (const WindowKey *) key;

	return hash_combine(hash_combine((uint32) k->which, (uint32) k->provider),
						hash_bytes((const unsigned char *) k->key, strlen(k->key)));
}

/* Do two window keys name the same row? (0 when they do) */
static int
window_match(const void *a, const void *b, Size keysize)
{
	const WindowKey *x = (const WindowKey *) a;
	const WindowKey *y = (const WindowKey *) b;

	if (x->which != y->which || x->provider != y->provider)
		return 1;
	return strcmp(x->key, y->key);
}

/* The window's row of a key; with create, a new empty one if missing. */
static WindowRow *
window_row(ObStore *s, Oid provider, const char *key, bool create)
{
	WindowKey	k = {s->which, provider, key};
	WindowRow  *w;
	bool		found;

	if (store.window == NULL)
	{
		HASHCTL		ctl;

		if (!create)
			return NULL;
		store.window_cxt = AllocSetContextCreate(store.cxt, "onboarding window",
												 ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(WindowKey);
		ctl.entrysize = sizeof(WindowRow);
		ctl.hash = window_hash;
		ctl.match = window_match;
		ctl.hcxt = store.window_cxt;
		store.window = hash_create("onboarding window", 256, &ctl,
								   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}
	w = hash_search(store.window, &k, create ? HASH_ENTER : HASH_FIND, &found);
	if (create && !found)
	{
		int			natts = RelationGetDescr(s->rel)->natts;

		w->k.key = MemoryContextStrdup(store.window_cxt, key);
		w->values = MemoryContextAlloc(store.window_cxt, natts * sizeof(Datum));
		w->nulls = MemoryContextAlloc(store.window_cxt, natts * sizeof(bool));
		memset(w->nulls, true, natts * sizeof(bool));	/* nothing to free yet */
		w->dirty = false;
		ItemPointerSetInvalid(&w->row.tid);
	}
	return w;
}

/* The provider and key of a row of values (a state table's primary key). */
static WindowRow *
window_row_of(ObStore *s, Datum *values, bool create)
{
	char	   *key = TextDatumGetCString(values[s->keyatt[1] - 1]);

	return window_row(s, DatumGetObjectId(values[s->keyatt[0] - 1]), key, create);
}

/* Copy a row's values into the window (its own memory). */
static void
window_set(ObStore *s, WindowRow *w, Datum *values, bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(s->rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!w->nulls[i] && !att->attbyval)
			pfree(DatumGetPointer(w->values[i]));
		w->nulls[i] = nulls[i];
		if (nulls[i] || att->attbyval)
			w->values[i] = values[i];
		else
		{
			MemoryContext old = MemoryContextSwitchTo(store.window_cxt);

			w->values[i] = datumCopy(values[i], false, att->attlen);
			MemoryContextSwitchTo(old);
		}
	}
}

/* Copy a row's values out of the window (into the current context). */
static void
window_get(ObStore *s, WindowRow *w, Datum *values, bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(s->rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		nulls[i] = w->nulls[i];
		values[i] = nulls[i] || att->attbyval ? w->values[i] :
			datumCopy(w->values[i], false, att->attlen);
	}
}

/*
 * Are two rows of a table the same, column by column from the from'th
 * (history compares from 1: ids aside)?  With owned_only, only the
 * pipeline's columns: a user's (bind.c) keep what the stored row has.
 */
static bool
store_same_values(ObStore *s, int from, bool owned_only, Datum *v1, bool *n1, Datum *v2, bool *n2)
{
	TupleDesc	desc = RelationGetDescr(s->rel);

	for (int i = from; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped ||
			(owned_only && s->bind != NULL && !onboarding_bind_owned(s->bind, i)))
			continue;
		if (n1[i] != n2[i])
			return false;
		if (!n1[i] && !datum_image_eq(v1[i], v2[i], att->attbyval, att->attlen))
			return false;
	}
	return true;
}

/*
 * Are values/nulls what the window row holds already (every column)?  A
 * fold that leaves a row as it was (rebuild(), a late delivery that
 * changes nothing here) writes no new version of it.
 */
static bool
window_same(ObStore *s, WindowRow *w, Datum *values, bool *nulls)
{
	return store_same_values(s, 0, false, w->values, w->nulls, values, nulls);
}

/* Is the version at tid the row values/nulls already? */
static bool
store_version_same(ObStore *s, ItemPointer tid, Datum *values, bool *nulls)
{
	bool		same;

	if (!table_tuple_fetch_row_version(s->rel, tid, SnapshotAny, s->slot))
		return false;
	slot_getallattrs(s->slot);
	same = store_same_values(s, 0, false, s->slot->tts_values, s->slot->tts_isnull, values, nulls);
	ExecClearTuple(s->slot);
	return same;
}

/* Number of rows in the window. */
static long
window_size(void)
{
	return store.window ? hash_get_num_entries(store.window) : 0;
}

/*
 * Does the window hold a row of this table?  A user's UPDATE of it now is
 * part of the statement whose deliveries put the row there: a nested
 * statement writes the window first (store_executor_start).
 */
bool
onboarding_store_window_holds(Oid relid)
{
	HASH_SEQ_STATUS seq;
	WindowRow  *w;

	if (store.window == NULL)
		return false;
	hash_seq_init(&seq, store.window);
	while ((w = hash_seq_search(&seq)) != NULL)
		if (store.tables[w->k.which] != NULL && store.tables[w->k.which]->relid == relid)
		{
			hash_seq_term(&seq);
			return true;
		}
	return false;
}

/*
 * Is anything waiting to be written (the window, rows a rolled-back
 * subtransaction put back, history)?  And does a plan name a table the
 * store has open?  statement.c asks before a nested statement runs.
 */
bool
onboarding_store_pending(void)
{
	return store.window != NULL || window_restored != NIL || history_pending();
}

bool
onboarding_store_plan_touches(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->relationOids)
		for (int i = 0; i < OB_NWRITTEN_STORES; i++)
		{
			ObStore    *s = store.tables[i];

			if (s == NULL)
				continue;
			if (s->relid == lfirst_oid(lc))
				return true;
			/* (a partition of history, named itself) */
			for (int p = 0; i == OB_S_HISTORY && p < s->nparts; p++)
				if (RelationGetRelid(s->parts[p].rel) == lfirst_oid(lc))
					return true;
		}
	return false;
}

/* The SQL name of a store (its table in schema onboarding). */
const char *
onboarding_store_name(ObStoreId which)
{
	return store_names[which];
}

/*
 * Module load: the transaction and subtransaction callbacks, registered
 * before tally.c's so that they run after them (the last registered runs
 * first): a subtransaction's start is remembered by tally.c before the
 * window is written into it here.
 */
void
onboarding_store_init(void)
{
	RegisterXactCallback(store_xact_callback, NULL);
	RegisterSubXactCallback(store_subxact, NULL);
}

/* Free a copy of a window row made for a subtransaction (store_subxact). */
static void
window_row_free(WindowRow *r)
{
	TupleDesc	desc = RelationGetDescr(store.tables[r->k.which]->rel);

	for (int i = 0; i < desc->natts; i++)
		if (!r->nulls[i] && !TupleDescAttr(desc, i)->attbyval)
			pfree(DatumGetPointer(r->values[i]));
	pfree((char *) r->k.key);
	pfree(r->values);
	pfree(r->nulls);
	pfree(r);
}

/*
 * Write every row of the window whose last version is not in its table
 * yet, and empty the window; write the history rows appended since the
 * last write.  Called at the end of every statement that inserted into the
 * inbox (close: and close the tables), before commit, when the window is
 * full, and by rebuild().
 */
void
onboarding_store_flush(bool close)
{
	ListCell   *lc;

	/* rows a rolled-back subtransaction had written for us: write them again */
	foreach(lc, window_restored)
	{
		WindowRow  *r = (WindowRow *) lfirst(lc);
		ObStore    *s = onboarding_store(r->k.which);
		WindowRow  *w = window_row(s, r->k.provider, r->k.key, true);

		w->row = r->row;
		window_set(s, w, r->values, r->nulls);
		w->dirty = true;
		window_row_free(r);
	}
	list_free(window_restored);
	window_restored = NIL;

	if (store.window != NULL)
	{
		HASH_SEQ_STATUS seq;
		WindowRow  *w;

		hash_seq_init(&seq, store.window);
		while ((w = (WindowRow *) hash_seq_search(&seq)) != NULL)
			if (w->dirty)
				store_write(store.tables[w->k.which], &w->row, w->values, w->nulls);
		MemoryContextDelete(store.window_cxt);
		store.window_cxt = NULL;
		store.window = NULL;
	}
	history_write(store.tables[OB_S_HISTORY]);
	if (close && window_saves == NIL)
		store_close(false);
}

/*
 * Subtransactions.  Rows a subtransaction writes are undone when it rolls
 * back, so the window must not hold the newer version of a row across its
 * start: the window is flushed when one begins (the writes then belong to
 * it), and what the window held is kept, to be written again if it rolls
 * back.  Whatever the window got inside a rolled-back subtransaction is
 * forgotten.  History rows appended but not yet written are kept the same
 * way: appended again if it rolls back, those it appended itself dropped.
 */
static void
store_subxact(SubXactEvent event, SubTransactionId mySubid,
			  SubTransactionId parentSubid, void *arg)
{
	WindowSave *save = window_saves ? (WindowSave *) linitial(window_saves) : NULL;
	ObStore    *history = store.tables[OB_S_HISTORY];

	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			{
				/* rows locked inside a subtransaction are let go if it rolls back */
				MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

				holds_saves = lcons_int(holds_rows ? 1 : 0, holds_saves);
				MemoryContextSwitchTo(old);
			}
			if (store.window != NULL || history_pending())
			{
				HASH_SEQ_STATUS seq;
				WindowRow  *w;
				MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

				save = palloc0(sizeof(WindowSave));
				save->subid = mySubid;
				for (int i = 0; history != NULL && i < history->npending; i++)
					save->history = lappend(save->history,
											ExecCopySlotHeapTuple(history->pending[i]));
				if (store.window != NULL)
				{
					hash_seq_init(&seq, store.window);
					while ((w = (WindowRow *) hash_seq_search(&seq)) != NULL)
					{
						WindowRow  *copy;
						int			natts;

						if (!w->dirty)
							continue;
						natts = RelationGetDescr(store.tables[w->k.which]->rel)->natts;
						copy = palloc(sizeof(WindowRow));
						*copy = *w;
						copy->k.key = pstrdup(w->k.key);
						copy->values = palloc(natts * sizeof(Datum));
						copy->nulls = palloc(natts * sizeof(bool));
						window_get(store.tables[w->k.which], w, copy->values, copy->nulls);
						save->rows = lappend(save->rows, copy);
					}
				}
				window_saves = lcons(save, window_saves);
				MemoryContextSwitchTo(old);
				onboarding_store_flush(false);
			}
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			if (holds_saves != NIL)
				holds_saves = list_delete_first(holds_saves);
			if (save != NULL && save->subid == mySubid)
			{
				ListCell   *lc;

				list_free_deep(save->history);
				foreach(lc, save->rows)
					window_row_free((WindowRow *) lfirst(lc));
				list_free(save->rows);
				window_saves = list_delete_first(window_saves);
				pfree(save);
			}
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			if (holds_saves != NIL)
			{
				holds_rows = linitial_int(holds_saves) != 0;
				holds_saves = list_delete_first(holds_saves);
			}
			history_discard(history);
			if (store.window != NULL)
			{
				MemoryContextDelete(store.window_cxt);
				store.window_cxt = NULL;
				store.window = NULL;
			}
			if (save != NULL && save->subid == mySubid)
			{
				ListCell   *lc;

				Assert(history != NULL || save->history == NIL);
				window_restored = list_concat(window_restored, save->rows);
				/* pending again, whether or not the rollback took them */
				foreach(lc, save->history)
					ExecForceStoreHeapTuple((HeapTuple) lfirst(lc),
											history->pending[history->npending++], true);
				list_free(save->history);
				window_saves = list_delete_first(window_saves);
			}
			break;
		default:
			break;
	}
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
 * Under REPEATABLE READ and SERIALIZABLE a transaction must not build on a
 * row version its snapshot cannot see: like PostgreSQL's own UPDATE, raise
 * a serialization failure (the client retries the whole transaction).
 * xmin: the creator of the version we locked; changed: a newer version was
 * committed while we waited.
 */
static void
store_check_serializable(ObStore *s, const char *key, TransactionId xmin, bool changed)
{
	if (!IsolationUsesXactSnapshot())
		return;
	if (!changed)
	{
		if (!TransactionIdIsNormal(xmin) || TransactionIdIsCurrentTransactionId(xmin) ||
			!ActiveSnapshotSet() || !XidInMVCCSnapshot(xmin, GetActiveSnapshot()))
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not serialize access due to concurrent update"),
			 errdetail("onboarding.%s row \"%s\" was changed by a transaction that committed after this one's snapshot.",
					   RelationGetRelationName(s->rel), onboarding_clip(key, 64)),
			 errhint("Retry the transaction, or deliver under READ COMMITTED.")));
}

/*
 * A state row this statement cannot write: the same statement (a CTE, or
 * the statement a trigger runs in) changed it behind the pipeline's back.
 */
static void
store_refuse(ObStore *s, const char *key, TM_Result res)
{
	if (res == TM_SelfModified || res == TM_Invisible)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("onboarding.%s row \"%s\" was changed by the statement that delivers to it",
						RelationGetRelationName(s->rel), onboarding_clip(key, 64)),
				 errdetail("A statement may not both insert into onboarding.inbox and write the state its deliveries derive."),
				 errhint("Write state tables in a statement of their own after the delivery, "
						 "for instance from an AFTER INSERT trigger on onboarding.inbox, or use onboarding.force_status().")));
	elog(ERROR, "could not lock or write a row of onboarding.%s (result %d)",
		 RelationGetRelationName(s->rel), (int) res);
}

/*
 * Find the row of (provider, key) and copy it into values/nulls (allocated
 * by the caller, natts long).  With lock: from the window if it is there
 * (then it is ours already); else under a dirty snapshot, waiting for
 * whoever inserts or deletes it, and lock it.  Without lock: as the active
 * snapshot sees it (explain()).  Returns false when there is no such row.
 * The scratch slot holds a buffer pin only between two lines below, never
 * across a wait.
 */
ObFound
onboarding_store_find(ObStore *s, ObProvider provider, const char *key, ObLockMode mode,
					  Datum *values, bool *nulls, ObStoreRow *row)
{
	bool		lock = (mode != OB_LOCK_NONE);
	SnapshotData dirty;
	Snapshot	snapshot;
	ScanKeyData skey[2];
	Oid			provider_oid = onboarding_provider_oid(provider);
	text	   *keytext;
	WindowRow  *w;

	if (lock && (w = window_row(s, provider_oid, key, false)) != NULL)
	{
		window_get(s, w, values, nulls);
		*row = w->row;
		return OB_FOUND;
	}

	keytext = cstring_to_text(key);
	InitDirtySnapshot(dirty);
	snapshot = lock ? &dirty : GetActiveSnapshot();
	ScanKeyEntryInitialize(&skey[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   s->pkey->rd_indcollation[0], F_ENUM_EQ,
						   ObjectIdGetDatum(provider_oid));
	ScanKeyEntryInitialize(&skey[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   s->pkey->rd_indcollation[1], F_TEXTEQ, PointerGetDatum(keytext));

	for (;;)
	{
		IndexScanDesc scan;
		TransactionId xwait = InvalidTransactionId;
		HeapTuple	tuple = NULL;
		TM_FailureData tmfd;
		TM_Result	res;

		scan = ob_index_beginscan(s->rel, s->pkey, snapshot, 2, 0);
		index_rescan(scan, skey, 2, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, s->slot))
		{
			tuple = ExecCopySlotHeapTuple(s->slot);
			ExecClearTuple(s->slot);
			if (lock)
				xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
		}
		index_endscan(scan);

		if (tuple == NULL)
		{
			pfree(keytext);
			return OB_ABSENT;
		}
		if (TransactionIdIsValid(xwait))
		{
			/* being inserted or deleted by another transaction: wait, look again */
			heap_freetuple(tuple);
			if (mode == OB_LOCK_NOWAIT)
			{
				pfree(keytext);
				return OB_WOULD_BLOCK;
			}
			XactLockTableWait(xwait, NULL, NULL, XLTW_None);
			continue;
		}

		store_remember(row, tuple);
		if (lock && !row->ours)
		{
			res = table_tuple_lock(s->rel, &row->tid, InvalidSnapshot, s->slot,
								   GetCurrentCommandId(false), LockTupleExclusive,
								   mode == OB_LOCK_NOWAIT ? LockWaitSkip : LockWaitBlock,
								   0, &tmfd);
			heap_freetuple(tuple);
			tuple = NULL;
			if (res == TM_Ok)
				tuple = ExecCopySlotHeapTuple(s->slot);
			ExecClearTuple(s->slot);
			if (res == TM_WouldBlock)
			{
				pfree(keytext);
				return OB_WOULD_BLOCK;
			}
			if (res == TM_Updated || res == TM_Deleted)
			{
				/* changed by a transaction that committed meanwhile */
				store_check_serializable(s, key, InvalidTransactionId, true);
				continue;
			}
			if (res != TM_Ok)
				store_refuse(s, key, res);
			store_check_serializable(s, key, HeapTupleHeaderGetXmin(tuple->t_data), false);
		}
		heap_deform_tuple(tuple, RelationGetDescr(s->rel), values, nulls);
		if (lock)
		{
			w = window_row(s, provider_oid, key, true);
			w->row = *row;
			window_set(s, w, values, nulls);
		}
		/* by-reference values point into the tuple: copy them out */
		for (int i = 0; i < RelationGetDescr(s->rel)->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(s->rel), i);

			if (!nulls[i] && !att->attbyval)
				values[i] = datumCopy(values[i], false, att->attlen);
		}
		heap_freetuple(tuple);
		pfree(keytext);
		if (lock)
			holds_rows = true;
		return OB_FOUND;
	}
}

/* Has this transaction locked or created a state row yet? */
bool
onboarding_store_holds_rows(void)
{
	return holds_rows;
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
 * Count in status_tally, sign times, the version of a state row at tid
 * (read whatever its visibility: the version this transaction is about to
 * replace or delete, or has just written).
 */
static void
store_count_stored(ObStore *s, ItemPointer tid, int sign)
{
	if (s->tally.n == 0)
		return;
	if (!table_tuple_fetch_row_version(s->rel, tid, SnapshotAny, s->stored))
		elog(ERROR, "a row of onboarding.%s to count is gone", store_names[s->which]);
	onboarding_tally_slot(&s->tally, s->stored, sign);
	ExecClearTuple(s->stored);
}

/*
 * After a delete through the executor: a user's BEFORE trigger may have
 * skipped it, and the row, counted out, is still there (for this
 * transaction: SnapshotSelf).
 */
static void
store_count_kept(ObStore *s, ItemPointer tid)
{
	if (s->tally.n > 0 && table_tuple_fetch_row_version(s->rel, tid, SnapshotSelf, s->stored))
	{
		onboarding_tally_slot(&s->tally, s->stored, +1);
		ExecClearTuple(s->stored);
	}
}

/*
 * Create a row, unless its key exists (then false: find and lock that one
 * instead).  The insertion is speculative, as for ON CONFLICT DO NOTHING,
 * so that two sessions creating the same key never fail.  The caller has
 * just looked for the key, so unlike ON CONFLICT there is no look before
 * the insertion: a conflict is found by the primary key's own insertion.
 */
bool
onboarding_store_create(ObStore *s, Datum *values, bool *nulls, ObStoreRow *row)
{
	EState	   *estate = store.estate;
	TupleTableSlot *slot = store_fill(s, values, nulls);
	CommandId	cid = GetCurrentCommandId(true);
	uint32		token;
	bool		spec_conflict = false;
	List	   *recheck;
	WindowRow  *w;

	if (s->bind != NULL)
	{
		/*
		 * Through the executor: another session creating the key first is
		 * a unique violation of the primary key, which derive.c takes for
		 * a lost race (onboarding_store_is_primary_key).
		 */
		ItemPointerSetInvalid(&slot->tts_tid);
		onboarding_bind_insert(s->bind, slot, cid);
		/* what was written (a user's BEFORE trigger may change or skip it) */
		if (ItemPointerIsValid(&slot->tts_tid))
			store_count_stored(s, &slot->tts_tid, +1);
		row->tid = slot->tts_tid;
		row->ours = true;
		row->cmin = cid;
		holds_rows = true;
		ExecClearTuple(slot);
		return true;
	}
	store_write_indexes(s);
	for (int i = 0; i < s->rri->ri_NumIndices; i++)
		if (s->rri->ri_IndexRelationDescs[i]->rd_id == linitial_oid(s->arbiter) &&
			s->rri->ri_IndexRelationInfo[i]->ii_UniqueOps == NULL)
		{
			StoreScope	scope;

			store_scope_enter(&scope);
			BuildSpeculativeIndexInfo(s->rri->ri_IndexRelationDescs[i],
									  s->rri->ri_IndexRelationInfo[i]);
			store_scope_leave(&scope);
		}
	token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
	table_tuple_insert_speculative(s->rel, slot, cid, 0, NULL, token);
	recheck = ob_exec_insert_index_tuples(s->rri, slot, estate, false, true,
										  &spec_conflict, s->arbiter, false);
	table_tuple_complete_speculative(s->rel, slot, token, !spec_conflict);
	SpeculativeInsertionLockRelease(GetCurrentTransactionId());
	list_free(recheck);
	ResetPerTupleExprContext(estate);
	if (spec_conflict)
	{
		/* lost a race for the key: the caller finds (and waits for) the winner */
		ExecClearTuple(slot);
		return false;
	}
	row->tid = slot->tts_tid;
	row->ours = true;
	row->cmin = cid;
	holds_rows = true;
	ExecClearTuple(slot);
	onboarding_tally_values(&s->tally, values, nulls, +1);
	w = window_row_of(s, values, true);
	w->row = *row;
	window_set(s, w, values, nulls);
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

/*
 * Replace the version at tid with the slot's row, waiting for a concurrent
 * writer, and add index entries when the update is not HOT.  Returns the
 * table access method's result (tmfd filled when it is not TM_Ok).
 */
static TM_Result
store_update_in(Relation rel, ResultRelInfo *rri, bool *indexes_open, ItemPointer tid,
				TupleTableSlot *slot, CommandId cid, TM_FailureData *tmfd)
{
	LockTupleMode lockmode;
	bool		update_indexes;
	bool		only_summarizing;
	TM_Result	res;

	res = ob_table_tuple_update(rel, tid, slot, cid, InvalidSnapshot, InvalidSnapshot,
								true, tmfd, &lockmode, &update_indexes, &only_summarizing);
	if (res == TM_Ok && update_indexes)
	{
		store_open_indexes(rri, indexes_open);
		list_free(ob_exec_insert_index_tuples(rri, slot, store.estate, false, false, NULL, NIL,
											  only_summarizing));
	}
	ResetPerTupleExprContext(store.estate);
	return res;
}

/* The same, in one of the pipeline's tables. */
static TM_Result
store_update_at(ObStore *s, ItemPointer tid, TupleTableSlot *slot, CommandId cid,
				TM_FailureData *tmfd)
{
	return store_update_in(s->rel, s->rri, &s->indexes_open, tid, slot, cid, tmfd);
}

/* Write a row's new version to its table. */
static void
store_write(ObStore *s, ObStoreRow *row, Datum *values, bool *nulls)
{
	TupleTableSlot *slot;
	CommandId	cid = store_command_for(row);
	TM_FailureData tmfd;
	TM_Result	res;

	store_count_stored(s, &row->tid, -1);
	slot = store_fill(s, values, nulls);
	res = store_update_at(s, &row->tid, slot, cid, &tmfd);
	if (res != TM_Ok)
		store_refuse(s, TextDatumGetCString(values[s->keyatt[1] - 1]), res);
	onboarding_tally_values(&s->tally, values, nulls, +1);
	row->tid = slot->tts_tid;
	row->ours = true;
	row->cmin = cid;
	ExecClearTuple(slot);
}

/* The provider an inbox row's provider column holds (InvalidOid: none). */
static ObProvider
store_provider_of(Datum label)
{
	return OidIsValid(DatumGetObjectId(label)) ?
		onboarding_provider_from_oid(DatumGetObjectId(label)) : OB_PROVIDER_NONE;
}

/*
 * onboarding.daily counts a rewritten delivery under its provider and
 * outcome now (tally.c): the version replaced is the one read here, which
 * may be newer than the one the caller read (another transaction, or this
 * one, rewrote it since).  Providers are label OIDs, InvalidOid for none.
 */
static void
store_tally_rewrite(Datum received, Datum provider, Datum outcome,
					Datum now_provider, Datum now_outcome)
{
	if (now_provider == provider && now_outcome == outcome)
		return;
	onboarding_tally_delivery(DatumGetTimestampTz(received), store_provider_of(provider),
							  onboarding_outcome_from_oid(DatumGetObjectId(outcome)), -1);
	onboarding_tally_delivery(DatumGetTimestampTz(received), store_provider_of(now_provider),
							  onboarding_outcome_from_oid(DatumGetObjectId(now_outcome)), 1);
}

/* ---------------------------------------------------------------------
 * onboarding.group_partition: where each group's deliveries lie (spread.c)
 * ---------------------------------------------------------------------
 */

/* The groups' partitions remembered per transaction, at most */
#define GROUP_KNOWN_MAX	65536

/* A group known to have its row for a partition (key: hash of the three) */
typedef struct GroupKnown
{
	uint32		hash;			/* (the entry's key) */
	ObProvider	provider;
	Oid			leaf;
	char	   *subject;
	struct GroupKnown *next;	/* same hash */
} GroupKnown;

static HTAB *group_known = NULL;	/* in group_known_cxt: this transaction's */
static MemoryContext group_known_cxt = NULL;
static bool group_known_callbacks = false;

/* Forget what this transaction knew (it ended, or a subtransaction rolled back). */
static void
group_known_forget(void)
{
	if (group_known_cxt != NULL)
		MemoryContextDelete(group_known_cxt);
	group_known_cxt = NULL;
	group_known = NULL;
}

/* At transaction end (commit, abort, prepare) the rows known go with it. */
static void
group_known_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		group_known_forget();
}

/* A row added in a subtransaction that rolls back is gone: forget them all. */
static void
group_known_subxact(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		group_known_forget();
}

/* The hash of a group and a partition. */
static uint32
group_known_hash(ObProvider provider, const char *subject, Oid leaf)
{
	uint32		h = string_hash(subject, strlen(subject) + 1);

	h = hash_combine(h, (uint32) provider);
	return hash_combine(h, (uint32) leaf);
}

/*
 * Is a group known to have its row for a partition?  With add, it is
 * remembered to have one (the answer is still whether it was known).
 */
static bool
group_known_has(ObProvider provider, const char *subject, Oid leaf, bool add)
{
	uint32		h = group_known_hash(provider, subject, leaf);
	GroupKnown *head;
	bool		found;

	/* (bounded memory: past the limit, start again) */
	if (add && group_known != NULL && hash_get_num_entries(group_known) >= GROUP_KNOWN_MAX)
		group_known_forget();
	if (group_known == NULL)
	{
		HASHCTL		ctl;

		if (!add)
			return false;
		if (!group_known_callbacks)
		{
			RegisterXactCallback(group_known_xact, NULL);
			RegisterSubXactCallback(group_known_subxact, NULL);
			group_known_callbacks = true;
		}
		group_known_cxt = AllocSetContextCreate(TopTransactionContext,
												"onboarding group partitions",
												ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(GroupKnown);
		ctl.hcxt = group_known_cxt;
		group_known = hash_create("onboarding group partitions", 256, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	head = (GroupKnown *) hash_search(group_known, &h, add ? HASH_ENTER : HASH_FIND, &found);
	if (head == NULL)
		return false;
	if (found)
	{
		for (GroupKnown *k = head; k != NULL; k = k->next)
			if (k->provider == provider && k->leaf == leaf && strcmp(k->subject, subject) == 0)
				return true;
		if (!add)
			return false;
		/* another group with the same hash: chained behind the entry */
		{
			GroupKnown *k = MemoryContextAlloc(group_known_cxt, sizeof(GroupKnown));

			*k = *head;
			k->next = head->next;
			head->next = k;
			head = k;
		}
	}
	else
		head->next = NULL;
	head->provider = provider;
	head->leaf = leaf;
	head->subject = MemoryContextStrdup(group_known_cxt, subject);
	return false;
}

/*
 * A delivery of a group is stored in partition leaf, received at `at` (the
 * inbox's trigger), or a rewrite moved it there from another group: unless
 * that is the default partition (always searched), or the group has a row
 * of onboarding.group_partition that maps to that partition (spread.c),
 * add one.  Asked of committed rows and our own (one another transaction
 * may yet roll back does not count), and remembered for the transaction.
 */
void
onboarding_store_note_group(ObProvider provider, const char *subject, TimestampTz at, Oid leaf)
{
	ObStore    *s;
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (subject == NULL || provider == OB_PROVIDER_NONE)
		return;
	s = onboarding_store(OB_S_INBOX);
	if (leaf == onboarding_inbox_default_leaf(s->rel) ||
		group_known_has(provider, subject, leaf, false))
		return;					/* (the default partition is always read) */
	if (!s->spread_opened)
		store_open_spread(s);
	if (s->spread == NULL)
		return;					/* a schema before 0.3.0 */

	onboarding_group_keys(keys, 1, 2, provider, subject);
	scan = systable_beginscan_ordered(s->spread, s->spread_index, SnapshotSelf, 2, keys);
	while (!found && HeapTupleIsValid(tup = systable_getnext_ordered(scan, ForwardScanDirection)))
	{
		bool		isnull;
		Datum		v = heap_getattr(tup, 3, RelationGetDescr(s->spread), &isnull);
		Oid			maps;

		found = !isnull &&
			onboarding_inbox_route(s->rel, s->inbox_atts.received_at, DatumGetTimestampTz(v),
								   &maps) &&
			maps == leaf;
	}
	systable_endscan_ordered(scan);

	if (!found)
	{
		TupleTableSlot *slot = s->spread_slot;

		ExecClearTuple(slot);
		slot->tts_values[0] = ObjectIdGetDatum(onboarding_provider_oid(provider));
		slot->tts_values[1] = CStringGetTextDatum(subject);
		slot->tts_values[2] = TimestampTzGetDatum(at);
		memset(slot->tts_isnull, 0, 3 * sizeof(bool));
		for (int i = 3; i < slot->tts_tupleDescriptor->natts; i++)
			slot->tts_isnull[i] = true;
		ExecStoreVirtualTuple(slot);
		table_tuple_insert(s->spread, slot, GetCurrentCommandId(true), 0, NULL);
		list_free(ob_exec_insert_index_tuples(s->spread_rri, slot, store.estate, false,
											  false, NULL, NIL, false));
		ResetPerTupleExprContext(store.estate);
		ExecClearTuple(slot);
	}
	(void) group_known_has(provider, subject, leaf, true);
}

/*
 * The group a rewrite moves a delivery to (the rules moved it: its provider
 * or subject changed), to be given its row for the delivery's partition
 * (spread.c) once the rewrite is done: *subject NULL when it stays in its
 * group, or is in none.  Read before the rewrite: old is the slot's.
 */
static void
store_spread_moved(ObStore *s, HeapTuple old, HeapTuple now, ObProvider *provider,
				   char **subject)
{
	TupleDesc	desc = RelationGetDescr(s->rel);
	const ObInboxAtts *atts = &s->inbox_atts;
	bool		provider_null;
	bool		subject_null;
	bool		was_provider_null;
	bool		was_subject_null;
	Datum		v_provider = heap_getattr(now, atts->provider, desc, &provider_null);
	Datum		v_subject = heap_getattr(now, atts->subject, desc, &subject_null);
	Datum		was_provider = heap_getattr(old, atts->provider, desc, &was_provider_null);
	Datum		was_subject = heap_getattr(old, atts->subject, desc, &was_subject_null);

	*subject = NULL;
	if (provider_null || subject_null)
		return;					/* in no group */
	if (!was_provider_null && !was_subject_null &&
		DatumGetObjectId(was_provider) == DatumGetObjectId(v_provider) &&
		datumIsEqual(was_subject, v_subject, false, -1))
		return;					/* the same group */
	*provider = onboarding_provider_from_oid(DatumGetObjectId(v_provider));
	*subject = TextDatumGetCString(v_subject);
}

/*
 * Rewrite columns of a stored delivery (cols, values and nulls: n of them,
 * its derived columns), at tid in the relation part that holds it (a
 * partition of the inbox; InvalidOid: the inbox is a plain table) or at a
 * newer version of it.  Not through
 * the window: an inbox row is rewritten at most once per derivation.  A
 * version this transaction has rewritten already is followed to its
 * newest; one another transaction rewrote after we read it is followed
 * under READ COMMITTED, as an UPDATE would, and is a serialization failure
 * under a transaction snapshot.  Triggers on the inbox do not fire: only
 * derived columns change, and only the extension changes them.
 */
void
onboarding_store_rewrite(ObStore *s, int64 id, Oid part, ItemPointer tid, int n, const int *cols,
						 const Datum *values, const bool *nulls)
{
	ItemPointerData at = *tid;
	StorePart  *p = NULL;
	char		label[32];
	const ObInboxAtts *atts = onboarding_store_inbox_atts(s);
	Datum		old_received;
	Datum		old_provider;
	Datum		old_outcome;
	Datum		new_provider;
	Datum		new_outcome;
	bool		isnull;
	ObProvider	moved_provider = OB_PROVIDER_NONE;
	char	   *moved_subject = NULL;

	Assert(s->which == OB_S_INBOX);
	snprintf(label, sizeof(label), INT64_FORMAT, id);
	/* the relation that holds it (a plain inbox: the one) */
	for (int i = 0; i < s->nparts && p == NULL; i++)
		if (RelationGetRelid(s->parts[i].rel) == part || (!OidIsValid(part) && s->nparts == 1))
			p = &s->parts[i];
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("delivery %s is in a partition of onboarding.inbox attached while it was being derived",
						label),
				 errhint("Retry the statement.")));
	for (;;)
	{
		TupleTableSlot *slot = s->slot;
		HeapTuple	old;
		HeapTuple	newtup;
		ObStoreRow	row;
		CommandId	cid;
		TM_FailureData tmfd;
		bool		should_free;
		TM_Result	res;

		if (!table_tuple_fetch_row_version(p->rel, &at, SnapshotAny, slot))
			elog(ERROR, "delivery %s is not in onboarding.inbox", label);
		old = ExecFetchSlotHeapTuple(slot, false, &should_free);
		if (!(old->t_data->t_infomask & HEAP_XMAX_INVALID) &&
			!HEAP_XMAX_IS_LOCKED_ONLY(old->t_data->t_infomask) &&
			TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetUpdateXid(old->t_data)) &&
			!ItemPointerEquals(&old->t_data->t_ctid, &at))
		{
			at = old->t_data->t_ctid;	/* we rewrote it already: the newer one */
			ExecClearTuple(slot);
			continue;
		}
		store_remember(&row, old);
		old_received = heap_getattr(old, atts->received_at, RelationGetDescr(s->rel), &isnull);
		old_provider = heap_getattr(old, atts->provider, RelationGetDescr(s->rel), &isnull);
		if (isnull)
			old_provider = ObjectIdGetDatum(InvalidOid);
		old_outcome = heap_getattr(old, atts->outcome, RelationGetDescr(s->rel), &isnull);
		newtup = heap_modify_tuple_by_cols(old, RelationGetDescr(s->rel), n, (int *) cols,
										   (Datum *) values, (bool *) nulls);
		new_provider = heap_getattr(newtup, atts->provider, RelationGetDescr(s->rel), &isnull);
		if (isnull)
			new_provider = ObjectIdGetDatum(InvalidOid);
		new_outcome = heap_getattr(newtup, atts->outcome, RelationGetDescr(s->rel), &isnull);
		store_spread_moved(s, old, newtup, &moved_provider, &moved_subject);
		ExecClearTuple(slot);
		ExecForceStoreHeapTuple(newtup, slot, true);
		cid = store_command_for(&row);
		res = store_update_in(p->rel, p->rri, &p->indexes_open, &at, slot, cid, &tmfd);
		if (res == TM_Updated && !ItemPointerEquals(&tmfd.ctid, &at))
		{
			/* another transaction rewrote it and committed meanwhile */
			ExecClearTuple(slot);
			store_check_serializable(s, label, InvalidTransactionId, true);
			at = tmfd.ctid;
			continue;
		}
		if (res != TM_Ok)
			store_refuse(s, label, res);
		store_tally_rewrite(old_received, old_provider, old_outcome, new_provider, new_outcome);
		ExecClearTuple(slot);
		if (moved_subject != NULL)
			onboarding_store_note_group(moved_provider, moved_subject,
								   DatumGetTimestampTz(old_received), RelationGetRelid(p->rel));
		return;
	}
}

/* The column numbers of the inbox, for a store of it. */
const ObInboxAtts *
onboarding_store_inbox_atts(ObStore *s)
{
	Assert(s->which == OB_S_INBOX);
	return &s->inbox_atts;
}

/*
 * Replace a row found (and locked) or created before: in the window only;
 * the table gets the row's last version at the next flush.
 */
void
onboarding_store_update(ObStore *s, ObStoreRow *row, Datum *values, bool *nulls)
{
	WindowRow  *w = window_row_of(s, values, s->bind == NULL);

	/* a row found (so in the window) and left as it was is not written */
	if (w != NULL && ItemPointerIsValid(&w->row.tid) && window_same(s, w, values, nulls))
	{
		*row = w->row;
		return;
	}
	if (s->bind != NULL)
	{
		/* at once, through the executor (bind.c) */
		TupleTableSlot *slot;
		CommandId	cid;

		if (w == NULL && store_version_same(s, &row->tid, values, nulls))
			return;
		cid = store_command_for(row);
		store_count_stored(s, &row->tid, -1);
		slot = store_fill(s, values, nulls);
		ItemPointerSetInvalid(&slot->tts_tid);
		onboarding_bind_update(s->bind, &row->tid, slot, cid);
		/* what was written, or, when a user's BEFORE trigger skipped it, what stays */
		store_count_stored(s, ItemPointerIsValid(&slot->tts_tid) ? &slot->tts_tid : &row->tid, +1);
		row->tid = slot->tts_tid;
		row->ours = true;
		row->cmin = cid;
		ExecClearTuple(slot);
		if (w != NULL)
		{
			w->row = *row;
			window_set(s, w, values, nulls);
		}
		return;
	}
	if (!ItemPointerIsValid(&w->row.tid))
		w->row = *row;
	window_set(s, w, values, nulls);
	w->dirty = true;
	*row = w->row;
}

/* Delete a row found (and locked) or created before (values: its key). */
void
onboarding_store_delete(ObStore *s, ObStoreRow *row, Datum *values)
{
	WindowRow  *w = window_row_of(s, values, false);
	CommandId	cid;
	TM_FailureData tmfd;
	TM_Result	res;

	if (w != NULL)
	{
		WindowKey	k = w->k;

		*row = w->row;
		hash_search(store.window, &k, HASH_REMOVE, NULL);
	}
	cid = store_command_for(row);
	store_count_stored(s, &row->tid, -1);
	if (s->bind != NULL)
	{
		onboarding_bind_delete(s->bind, &row->tid, cid);
		store_count_kept(s, &row->tid);
		ItemPointerSetInvalid(&row->tid);
		return;
	}
	res = table_tuple_delete(s->rel, &row->tid, cid, InvalidSnapshot, InvalidSnapshot,
							 true, &tmfd, false);
	if (res != TM_Ok)
		store_refuse(s, TextDatumGetCString(values[s->keyatt[1] - 1]), res);
	ItemPointerSetInvalid(&row->tid);
}

/* A stored history row of one entity: its id, where it is, and its columns */
typedef struct HistoryStored
{
	int64		id;
	int			part;			/* the relation holding it (s->parts) */
	ItemPointerData tid;
	Datum	   *values;
	bool	   *nulls;
} HistoryStored;

/*
 * Is a history row found through the entity index one of the entity's
 * (probe: provider, entity, key)?  The columns the index lacks are
 * compared, and all of them when the index is lossy (a hash index keeps
 * only the key's hash).
 */
static bool
history_row_is(ObStore *s, TupleTableSlot *slot, const Datum *probe, bool lossy)
{
	for (int k = 0; k < 3; k++)
	{
		Datum		v = slot->tts_values[s->entatt[k] - 1];

		if (s->entcol[k] >= 0 && !lossy)
			continue;
		if (slot->tts_isnull[s->entatt[k] - 1])
			return false;
		if (k == 0 ? DatumGetObjectId(v) != DatumGetObjectId(probe[k]) :
			!DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, v, probe[k])))
			return false;
	}
	return true;
}

/* Id order: the event order of one entity's history. */
static int
history_stored_cmp(const ListCell *a, const ListCell *b)
{
	int64		x = ((HistoryStored *) lfirst(a))->id;
	int64		y = ((HistoryStored *) lfirst(b))->id;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * A re-derivation writes the history of one entity (provider, entity name,
 * key) again, in event order: rows[0 .. n-1], each a values/nulls pair of
 * the history table.  The stored rows that begin it unchanged are kept;
 * those from the first difference on are deleted.  Returns how many of
 * rows are stored already: the caller appends the others, so ids stay in
 * event order.  History rows are never updated, so the latest version of
 * each is the only one; rows another transaction is inserting cannot be
 * of this entity, whose row we hold.
 */
int
onboarding_store_history_keep(Oid provider, const char *entity, const char *key,
							  int n, Datum **values, bool **nulls)
{
	ObStore    *s = onboarding_store(OB_S_HISTORY);
	TupleDesc	desc = RelationGetDescr(s->rel);
	SnapshotData dirty;
	ScanKeyData keys[3];
	Datum		probe[3];		/* provider, entity, key */
	int			nkeys = 0;
	List	   *stored = NIL;
	ListCell   *lc;
	CommandId	cid;
	int			kept = 0;
	bool		same = true;
	int			c;

	/* rows this command appended must be in the table, and visible to the deletion */
	history_write(s);
	CommandCounterIncrement();
	cid = GetCurrentCommandId(true);

	/*
	 * A key for each column the index has (equality is strategy 1 of btree
	 * and hash alike); a column it lacks is compared row by row.  Every
	 * relation holding history's rows is read.
	 */
	if (s->nparts == 0)
		return 0;				/* (no relation holds history's rows: none is stored) */
	InitDirtySnapshot(dirty);
	probe[0] = ObjectIdGetDatum(provider);
	probe[1] = CStringGetTextDatum(entity);
	probe[2] = CStringGetTextDatum(key);
	for (int k = 0; k < 3; k++)
	{
		if ((c = s->entcol[k]) < 0)
			continue;
		ScanKeyEntryInitialize(&keys[c], 0, c + 1, BTEqualStrategyNumber, InvalidOid,
							   s->pkey->rd_indcollation[c], k == 0 ? F_ENUM_EQ : F_TEXTEQ, probe[k]);
		nkeys++;
	}
	for (int part = 0; part < s->nparts; part++)
	{
		StorePart  *p = &s->parts[part];
		IndexScanDesc scan = ob_index_beginscan(p->rel, p->entity_index, &dirty, nkeys, 0);

		index_rescan(scan, keys, nkeys, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, s->slot))
		{
			HistoryStored *h;

			slot_getallattrs(s->slot);
			if (!history_row_is(s, s->slot, probe, scan->xs_recheck))
				continue;		/* another entity's row */
			h = palloc(sizeof(HistoryStored));
			h->part = part;
			h->tid = s->slot->tts_tid;
			h->values = palloc(desc->natts * sizeof(Datum));
			h->nulls = palloc(desc->natts * sizeof(bool));
			for (int i = 0; i < desc->natts; i++)
			{
				Form_pg_attribute att = TupleDescAttr(desc, i);

				h->nulls[i] = s->slot->tts_isnull[i];
				h->values[i] = h->nulls[i] ? (Datum) 0 :
					datumCopy(s->slot->tts_values[i], att->attbyval, att->attlen);
			}
			h->id = h->nulls[0] ? 0 : DatumGetInt64(h->values[0]);
			stored = lappend(stored, h);
		}
		index_endscan(scan);
		ExecClearTuple(s->slot);
	}
	list_sort(stored, history_stored_cmp);

	foreach(lc, stored)
	{
		HistoryStored *h = (HistoryStored *) lfirst(lc);
		StorePart  *p = &s->parts[h->part];
		TM_FailureData tmfd;
		TM_Result	res;

		same = same && kept < n && store_same_values(s, 1, true, h->values, h->nulls, values[kept], nulls[kept]);
		if (same)
		{
			kept++;
			continue;
		}
		onboarding_span_row(s->rel, h->values, h->nulls, -1);
		if (p->bind != NULL)
		{
			onboarding_bind_delete(p->bind, &h->tid, cid);
			continue;
		}
		res = table_tuple_delete(p->rel, &h->tid, cid, InvalidSnapshot, InvalidSnapshot,
								 true, &tmfd, false);
		if (res != TM_Ok)
			elog(ERROR, "could not delete a history row of %s \"%s\" (result %d)",
				 entity, key, (int) res);
	}
	return kept;
}

/*
 * The bounded refold's reads of one entity's history (derive.c), through
 * 0.3.0's index by (entity_key, event_at); false without it.  Rows this
 * transaction appended are written first, so that they are found.
 */
static ObStore *
history_by_time(void)
{
	ObStore    *s = onboarding_store(OB_S_HISTORY);

	if (!s->by_time)
		return NULL;
	history_write(s);
	CommandCounterIncrement();
	return s;
}

/*
 * Start a scan of an entity's history rows in one relation holding them
 * (p): at, or before, a time (strategy, op); or every row of the key
 * (strategy 0).
 */
static IndexScanDesc
history_scan_at(ObStore *s, StorePart *p, Snapshot snapshot, const char *key,
				StrategyNumber strategy, RegProcedure op, TimestampTz at)
{
	ScanKeyData keys[2];
	int			nkeys = strategy == 0 ? 1 : 2;
	IndexScanDesc scan;

	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   p->entity_index->rd_indcollation[0], F_TEXTEQ, CStringGetTextDatum(key));
	if (strategy != 0)
		ScanKeyEntryInitialize(&keys[1], 0, 2, strategy, InvalidOid, InvalidOid, op,
							   TimestampTzGetDatum(at));
	scan = ob_index_beginscan(p->rel, p->entity_index, snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	return scan;
}

/* Is a slot's text column equal to a string (NULL: is the column null)? */
static bool
history_text_is(TupleTableSlot *slot, AttrNumber att, const char *want)
{
	bool		isnull;
	Datum		v = slot_getattr(slot, att, &isnull);

	if (isnull || want == NULL)
		return isnull && want == NULL;
	return DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, v,
												CStringGetTextDatum(want)));
}

/*
 * The status an entity (provider, entity name, key) had just before time
 * at: the to_status of its latest history row with an earlier event_at,
 * the one with the highest id among those at that time (ids are event
 * order within one time; the index keeps such rows in heap order, which a
 * rewritten history no longer follows).  *status is NULL when it had none.
 * Returns false when history has no index by time (the caller folds the
 * whole group instead).
 */
bool
onboarding_store_history_before(Oid provider, const char *entity, const char *key,
								TimestampTz at, char **status)
{
	ObStore    *s = history_by_time();
	SnapshotData dirty;
	Datum		probe[3];
	bool		found = false;
	TimestampTz latest_at = 0;
	int64		latest_id = 0;
	AttrNumber	att_at,
				att_id,
				att_to;

	*status = NULL;
	if (s == NULL)
		return false;
	InitDirtySnapshot(dirty);
	probe[0] = ObjectIdGetDatum(provider);
	probe[1] = CStringGetTextDatum(entity);
	probe[2] = CStringGetTextDatum(key);
	att_at = onboarding_store_attnum(s, "event_at");
	att_id = onboarding_store_attnum(s, "id");
	att_to = onboarding_store_attnum(s, "to_status");
	for (int part = 0; part < s->nparts; part++)
	{
		IndexScanDesc scan = history_scan_at(s, &s->parts[part], &dirty, key,
											 BTLessStrategyNumber, F_TIMESTAMPTZ_LT, at);
		bool		seen = false;
		TimestampTz seen_at = 0;

		while (index_getnext_slot(scan, BackwardScanDirection, s->slot))
		{
			bool		isnull;
			Datum		to;
			TimestampTz row_at;
			int64		id;

			slot_getallattrs(s->slot);
			if (!history_row_is(s, s->slot, probe, false))
				continue;		/* another entity's row */
			row_at = DatumGetTimestampTz(slot_getattr(s->slot, att_at, &isnull));
			if ((seen && row_at != seen_at) || (found && row_at < latest_at))
				break;			/* every row at this relation's latest time seen */
			seen = true;
			seen_at = row_at;
			id = DatumGetInt64(slot_getattr(s->slot, att_id, &isnull));
			if (found && row_at == latest_at && id < latest_id)
				continue;
			found = true;
			latest_at = row_at;
			latest_id = id;
			to = slot_getattr(s->slot, att_to, &isnull);
			*status = isnull ? NULL : TextDatumGetCString(to);
		}
		index_endscan(scan);
		ExecClearTuple(s->slot);
	}
	return true;
}

/* A history row of one entity as span.c reads it (in the caller's memory) */
static ObHistoryRow *
history_row_of(ObStore *s, TupleTableSlot *slot, AttrNumber att_id, AttrNumber att_at,
			   AttrNumber att_to)
{
	ObHistoryRow *r = palloc(sizeof(ObHistoryRow));
	bool		isnull;
	Datum		v;

	r->id = DatumGetInt64(slot_getattr(slot, att_id, &isnull));
	v = slot_getattr(slot, att_at, &r->at_null);
	r->at = r->at_null ? 0 : DatumGetTimestampTz(v);
	v = slot_getattr(slot, att_to, &isnull);
	r->status = isnull ? NULL : TextDatumGetCString(v);
	return r;
}

/*
 * For span.c: history rows of one entity (provider, entity name, key),
 * read backwards through history's index by (entity_key, event_at) in one
 * descent of each relation holding its rows, from its last row (bounded:
 * from its last row at or before time hi): every row at time down_to or
 * after, and every row at the latest time before down_to (ObHistoryRow, in
 * no order).  *untimed when, unbounded, the entity's last row has no time
 * (the caller needs all of them); *complete false when more than limit
 * rows would be read (the caller reads around each time instead).
 */
List *
onboarding_store_history_tail(Oid provider, const char *entity, const char *key, bool bounded,
							  TimestampTz hi, TimestampTz down_to, int limit, bool *untimed,
							  bool *complete)
{
	ObStore    *s = history_by_time();
	SnapshotData dirty;
	Datum		probe[3];
	AttrNumber	att_id,
				att_at,
				att_to;
	List	   *rows = NIL;
	List	   *kept = NIL;
	ListCell   *lc;
	bool		below = false;
	TimestampTz below_at = 0;

	*untimed = false;
	*complete = false;
	if (s == NULL)
		return NIL;
	InitDirtySnapshot(dirty);
	probe[0] = ObjectIdGetDatum(provider);
	probe[1] = CStringGetTextDatum(entity);
	probe[2] = CStringGetTextDatum(key);
	att_id = onboarding_store_attnum(s, "id");
	att_at = onboarding_store_attnum(s, "event_at");
	att_to = onboarding_store_attnum(s, "to_status");
	*complete = true;
	for (int part = 0; part < s->nparts && *complete && !*untimed; part++)
	{
		IndexScanDesc scan = history_scan_at(s, &s->parts[part], &dirty, key,
											 bounded ? BTLessEqualStrategyNumber : 0,
											 F_TIMESTAMPTZ_LE, hi);
		bool		part_below = false;
		TimestampTz part_below_at = 0;
		int			read = 0;

		while (index_getnext_slot(scan, BackwardScanDirection, s->slot))
		{
			ObHistoryRow *r;

			slot_getallattrs(s->slot);
			if (!history_row_is(s, s->slot, probe, false))
				continue;
			r = history_row_of(s, s->slot, att_id, att_at, att_to);
			if (r->at_null)
			{
				/* (untimed rows sort last: the entity's last row has none) */
				*untimed = true;
				break;
			}
			if (part_below && r->at != part_below_at)
				break;			/* every row at the latest time before down_to */
			if (!part_below && r->at < down_to)
			{
				part_below = true;
				part_below_at = r->at;
			}
			if (read == limit)
			{
				*complete = false;
				break;
			}
			read++;
			rows = lappend(rows, r);
		}
		index_endscan(scan);
		ExecClearTuple(s->slot);
		if (part_below && (!below || part_below_at > below_at))
		{
			below = true;
			below_at = part_below_at;
		}
	}
	if (s->nparts <= 1)
		return rows;

	/* of the rows before down_to, those at the latest such time of all */
	foreach(lc, rows)
	{
		ObHistoryRow *r = (ObHistoryRow *) lfirst(lc);

		if (r->at >= down_to || (below && r->at == below_at))
			kept = lappend(kept, r);
	}
	if (list_length(kept) > limit)
		*complete = false;
	list_free(rows);
	return kept;
}

/*
 * For span.c: the time of an entity's first history row after time at
 * (false: it has none with a time), one descent of each relation holding
 * its rows.
 */
bool
onboarding_store_history_next(Oid provider, const char *entity, const char *key,
							  TimestampTz at, TimestampTz *next)
{
	ObStore    *s = history_by_time();
	SnapshotData dirty;
	Datum		probe[3];
	AttrNumber	att_at;
	bool		found = false;

	if (s == NULL)
		return false;
	InitDirtySnapshot(dirty);
	probe[0] = ObjectIdGetDatum(provider);
	probe[1] = CStringGetTextDatum(entity);
	probe[2] = CStringGetTextDatum(key);
	att_at = onboarding_store_attnum(s, "event_at");
	for (int part = 0; part < s->nparts; part++)
	{
		IndexScanDesc scan = history_scan_at(s, &s->parts[part], &dirty, key,
											 BTGreaterStrategyNumber, F_TIMESTAMPTZ_GT, at);

		while (index_getnext_slot(scan, ForwardScanDirection, s->slot))
		{
			bool		isnull;
			Datum		v;

			slot_getallattrs(s->slot);
			if (!history_row_is(s, s->slot, probe, false))
				continue;
			v = slot_getattr(s->slot, att_at, &isnull);
			if (!isnull && (!found || DatumGetTimestampTz(v) < *next))
			{
				*next = DatumGetTimestampTz(v);
				found = true;
			}
			break;
		}
		index_endscan(scan);
		ExecClearTuple(s->slot);
	}
	return found;
}

/*
 * For span.c: the history rows of one entity (provider, entity name, key)
 * whose spans a row version written at time at may have changed, read
 * through history's index by (entity_key, event_at): every row at the
 * latest time before at and every row at at (ObHistoryRow, in no order),
 * and the time of the first row after at (*next; *has_next false when
 * there is none).  With all, every row of the entity (at, next: unused).
 * *untimed says whether the entity has a row without a time (then the
 * caller needs all of them).  Dirty snapshot: this transaction's rows as
 * they are now, and the rows of others (the entity's are held by us).
 * NIL and *untimed false when history has no index by time.
 */
List *
onboarding_store_history_around(Oid provider, const char *entity, const char *key, bool all,
								 TimestampTz at, bool *untimed, bool *has_next, TimestampTz *next)
{
	ObStore    *s = history_by_time();
	SnapshotData dirty;
	IndexScanDesc scan;
	Datum		probe[3];
	AttrNumber	att_id,
				att_at,
				att_to;
	List	   *rows = NIL;
	bool		found = false;
	TimestampTz from = at;

	*untimed = false;
	*has_next = false;
	if (s == NULL)
		return NIL;
	InitDirtySnapshot(dirty);
	probe[0] = ObjectIdGetDatum(provider);
	probe[1] = CStringGetTextDatum(entity);
	probe[2] = CStringGetTextDatum(key);
	att_id = onboarding_store_attnum(s, "id");
	att_at = onboarding_store_attnum(s, "event_at");
	att_to = onboarding_store_attnum(s, "to_status");

	/*
	 * Every row; or whether the last has no time (rows without one sort
	 * last: a backward scan of the key meets them first)
	 */
	for (int part = 0; part < s->nparts; part++)
	{
		scan = history_scan_at(s, &s->parts[part], &dirty, key, 0, InvalidOid, 0);
		while (index_getnext_slot(scan, all ? ForwardScanDirection : BackwardScanDirection, s->slot))
		{
			ObHistoryRow *r;

			slot_getallattrs(s->slot);
			if (!history_row_is(s, s->slot, probe, false))
				continue;
			r = history_row_of(s, s->slot, att_id, att_at, att_to);
			*untimed = *untimed || r->at_null;
			if (!all)
				break;
			rows = lappend(rows, r);
		}
		index_endscan(scan);
		ExecClearTuple(s->slot);
	}
	if (all || *untimed)
		return rows;

	/* the latest time before at */
	for (int part = 0; part < s->nparts; part++)
	{
		scan = history_scan_at(s, &s->parts[part], &dirty, key, BTLessStrategyNumber,
							   F_TIMESTAMPTZ_LT, at);
		while (index_getnext_slot(scan, BackwardScanDirection, s->slot))
		{
			bool		isnull;
			TimestampTz row_at;

			slot_getallattrs(s->slot);
			if (!history_row_is(s, s->slot, probe, false))
				continue;
			row_at = DatumGetTimestampTz(slot_getattr(s->slot, att_at, &isnull));
			if (!found || row_at > from)
				from = row_at;
			found = true;
			break;
		}
		index_endscan(scan);
	}

	/* the rows from then to at, and the first time after it */
	for (int part = 0; part < s->nparts; part++)
	{
		scan = history_scan_at(s, &s->parts[part], &dirty, key, BTGreaterEqualStrategyNumber,
							   F_TIMESTAMPTZ_GE, from);
		while (index_getnext_slot(scan, ForwardScanDirection, s->slot))
		{
			bool		isnull;
			Datum		v;
			TimestampTz row_at;

			slot_getallattrs(s->slot);
			if (!history_row_is(s, s->slot, probe, false))
				continue;
			v = slot_getattr(s->slot, att_at, &isnull);
			if (isnull)
				break;			/* (untimed rows sort last: none, as seen above) */
			row_at = DatumGetTimestampTz(v);
			if (row_at > at)
			{
				if (!*has_next || row_at < *next)
					*next = row_at;
				*has_next = true;
				break;
			}
			rows = lappend(rows, history_row_of(s, s->slot, att_id, att_at, att_to));
		}
		index_endscan(scan);
		ExecClearTuple(s->slot);
	}
	return rows;
}

/*
 * Find the stored history row (provider, entity, key, event_at at,
 * inbox_id, from -> to) of an entity, for a bounded refold that no longer
 * makes it: *place says where it is.  Returns false when there is none.
 */
bool
onboarding_store_history_find(Oid provider, const char *entity, const char *key,
							  TimestampTz at, int64 inbox_id, const char *from, const char *to,
							  ObHistoryPlace *place)
{
	ObStore    *s = history_by_time();
	SnapshotData dirty;
	Datum		probe[3];
	bool		found = false;

	if (s == NULL)
		return false;
	InitDirtySnapshot(dirty);
	probe[0] = ObjectIdGetDatum(provider);
	probe[1] = CStringGetTextDatum(entity);
	probe[2] = CStringGetTextDatum(key);
	for (int part = 0; part < s->nparts && !found; part++)
	{
		IndexScanDesc scan = history_scan_at(s, &s->parts[part], &dirty, key,
											 BTEqualStrategyNumber, F_TIMESTAMPTZ_EQ, at);

		while (!found && index_getnext_slot(scan, ForwardScanDirection, s->slot))
		{
			bool		isnull;
			Datum		id;

			slot_getallattrs(s->slot);
			if (!history_row_is(s, s->slot, probe, false))
				continue;
			id = slot_getattr(s->slot, s->inbox_id_att, &isnull);
			if (isnull || DatumGetInt64(id) != inbox_id ||
				!history_text_is(s->slot, onboarding_store_attnum(s, "from_status"), from) ||
				!history_text_is(s->slot, onboarding_store_attnum(s, "to_status"), to))
				continue;
			place->rel = RelationGetRelid(s->parts[part].rel);
			place->tid = s->slot->tts_tid;
			found = true;
		}
		index_endscan(scan);
		ExecClearTuple(s->slot);
	}
	return found;
}

/*
 * Delete a history row onboarding_store_history_find() found (history has
 * no user additions).
 */
void
onboarding_store_history_delete(const ObHistoryPlace *place)
{
	ObStore    *s = onboarding_store(OB_S_HISTORY);
	StorePart  *p = &s->parts[history_part_index(s, place->rel)];
	TM_FailureData tmfd;
	TM_Result	res;

	Assert(p->bind == NULL);
	/* (the version removed, for its entity's spans) */
	if (table_tuple_fetch_row_version(p->rel, (ItemPointer) &place->tid, SnapshotAny, s->slot))
	{
		onboarding_span_slot(s->rel, s->slot, -1);
		ExecClearTuple(s->slot);
	}
	res = table_tuple_delete(p->rel, (ItemPointer) &place->tid, GetCurrentCommandId(true),
							 InvalidSnapshot, InvalidSnapshot, true, &tmfd, false);
	if (res != TM_Ok)
		elog(ERROR, "could not delete a history row (result %d)", (int) res);
}

/*
 * The relation holding history's rows that is leaf (its index in
 * s->parts), opened now when the store has not yet (a partition attached
 * since the store opened history: ATTACH PARTITION does not wait for us).
 */
static int
history_part_index(ObStore *s, Oid leaf)
{
	StoreScope	scope;
	StorePart  *p;

	if (s->last_part < s->nparts && RelationGetRelid(s->parts[s->last_part].rel) == leaf)
		return s->last_part;
	for (int i = 0; i < s->nparts; i++)
		if (RelationGetRelid(s->parts[i].rel) == leaf)
			return s->last_part = i;

	store_scope_enter(&scope);
	s->parts = repalloc(s->parts, (s->nparts + 1) * sizeof(StorePart));
	p = &s->parts[s->nparts];
	memset(p, 0, sizeof(StorePart));
	history_leaf_open(s, p, leaf);
	if (s->bind == NULL && onboarding_bind_needed(p->rel, -1))
	{
		/* (the first partition a user added to: every one is written so now) */
		s->bind = onboarding_bind_open(s->rel, s->rri, store.estate, -1);
		for (int i = 0; i < s->nparts; i++)
			history_part_bind(s, &s->parts[i]);
	}
	if (s->bind != NULL)
		history_part_bind(s, p);
	store_scope_leave(&scope);
	return s->last_part = s->nparts++;
}

/*
 * The relation (index in s->parts) a history row goes to: the leaf that
 * takes its inbox_id (isnull: it has none).
 */
static int
history_part_for(ObStore *s, bool isnull, Datum inbox_id)
{
	if (s->rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return 0;
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("a history row without inbox_id cannot be written")));
	return history_part_index(s, onboarding_history_route(s->rel, s->inbox_id_att,
														  DatumGetInt64(inbox_id)));
}

/* The same, for a row in a slot. */
static int
history_part_of_slot(ObStore *s, TupleTableSlot *slot)
{
	bool		isnull;
	Datum		id;

	if (s->rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return 0;
	id = slot_getattr(slot, s->inbox_id_att, &isnull);
	return history_part_for(s, isnull, id);
}

/*
 * Append a row to a table that is only ever appended to (history): its
 * first column takes the next value of its identity sequence
 * (onboarding.history_id_seq), so ids keep the order of the calls.  The
 * row is kept, and written with up to OB_HISTORY_BATCH others by one
 * table_multi_insert() per relation holding history's rows (a WAL record
 * and a buffer look-up per page, not per row): when the batch is full,
 * and before anything reads history or could lose the batch
 * (onboarding_store_flush(), a subtransaction's start, a statement that
 * reads or writes history, the deletion of a group's history).
 */
void
onboarding_store_append(ObStore *s, Datum *values, bool *nulls)
{
	TupleTableSlot *slot;
	int			natts = RelationGetDescr(s->rel)->natts;

	Assert(OidIsValid(s->sequence) && s->pending != NULL);
	if (s->bind != NULL)
	{
		/* one at a time, through the executor (bind.c), the user's defaults set */
		StorePart  *p = &s->parts[history_part_for(s, nulls[s->inbox_id_att - 1],
													 values[s->inbox_id_att - 1])];

		onboarding_bind_defaults(p->bind, values, nulls);
		values[0] = Int64GetDatum(nextval_internal(s->sequence, false));
		nulls[0] = false;
		slot = store_fill(s, values, nulls);
		onboarding_bind_insert(p->bind, slot, GetCurrentCommandId(true));
		ExecClearTuple(slot);
		onboarding_span_row(s->rel, values, nulls, +1);
		return;
	}
	if (s->npending == OB_HISTORY_BATCH)
		history_write(s);
	if (s->pending[s->npending] == NULL)
	{
		StoreScope	scope;

		/* like the other slots: it pins the descriptor for the whole transaction */
		store_scope_enter(&scope);
		s->pending[s->npending] = table_slot_create(s->rel, NULL);
		store_scope_leave(&scope);
	}
	values[0] = Int64GetDatum(nextval_internal(s->sequence, false));
	nulls[0] = false;
	onboarding_span_row(s->rel, values, nulls, +1);
	slot = s->pending[s->npending];
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, natts * sizeof(Datum));
	memcpy(slot->tts_isnull, nulls, natts * sizeof(bool));
	ExecStoreVirtualTuple(slot);
	/* a copy of its own: values point into the caller's per-row memory */
	ExecMaterializeSlot(slot);
	s->npending++;
}

/*
 * Write the history rows appended since the last write (s: may be NULL):
 * each run of rows that go to one relation in one call.
 */
static void
history_write(ObStore *s)
{
	CommandId	cid;
	int			i = 0;

	if (s == NULL || s->npending == 0)
		return;
	cid = GetCurrentCommandId(true);
	while (i < s->npending)
	{
		int			part;
		int			n = 1;
		StorePart  *p;

		part = history_part_of_slot(s, s->pending[i]);
		while (i + n < s->npending && history_part_of_slot(s, s->pending[i + n]) == part)
			n++;
		p = &s->parts[part];
		/* (a single row, as a one-row statement has, costs less the plain way) */
		if (n == 1)
			table_tuple_insert(p->rel, s->pending[i], cid, 0, NULL);
		else
			table_multi_insert(p->rel, &s->pending[i], n, cid, 0, NULL);
		for (int j = i; j < i + n; j++)
		{
			list_free(ob_exec_insert_index_tuples(p->rri, s->pending[j], store.estate, false,
												  false, NULL, NIL, false));
			ResetPerTupleExprContext(store.estate);
			ExecClearTuple(s->pending[j]);
		}
		i += n;
	}
	s->npending = 0;
}

/* Are history rows appended and not yet written? */
static bool
history_pending(void)
{
	return store.tables[OB_S_HISTORY] != NULL && store.tables[OB_S_HISTORY]->npending > 0;
}

/* Forget the history rows appended since the last write (s: may be NULL). */
static void
history_discard(ObStore *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < s->npending; i++)
		ExecClearTuple(s->pending[i]);
	s->npending = 0;
}

/* The state table (0 .. 3) whose row a history row's entity names. */
static int
store_entity_table(const char *entity)
{
	ObEntity	e = onboarding_entity_from_name(entity);

	switch (e)
	{
		case OB_ACCOUNT:
			return 0;
		case OB_PROPOSAL:
		case OB_BACKGROUND_CHECK:
		case OB_DOCUMENTSCOPY:
			return 1;
		case OB_DOCUMENT:
			return 2;
		case OB_CLOSURE:
			return 3;
		default:
			return -1;
	}
}

/*
 * rebuild(): delete every row of a state table or of history that the
 * replay did not derive (keep() says which it did: state table 0 .. 3,
 * provider, key, and the delivery that last wrote the row: a state row's
 * last_seen_id, a history row's inbox_id).  The tables are never emptied, so that a foreign key of
 * a user's that points at a row the replay derives again holds; a row
 * that is deleted goes through the executor when a user added to its
 * table (its triggers fire, a foreign key to it is checked).  Returns how
 * many rows were deleted; with dry, how many would be, deleting none.
 */
int64
onboarding_store_sweep(ObStoreId which,
					   bool (*keep) (int table, Oid provider, const char *key, int64 written_by),
					   bool dry)
{
	ObStore    *s = onboarding_store(which);
	AttrNumber	provider_att = onboarding_store_attnum(s, "provider");
	AttrNumber	writer_att = onboarding_store_attnum(s, which == OB_S_HISTORY ? "inbox_id" : "last_seen_id");
	AttrNumber	key_att = which == OB_S_HISTORY ? onboarding_store_attnum(s, "entity_key") : s->keyatt[1];
	AttrNumber	entity_att = which == OB_S_HISTORY ? onboarding_store_attnum(s, "entity") : 0;
	Snapshot	snapshot;
	int64		deleted = 0;
	int			nrels = which == OB_S_HISTORY ? s->nparts : 1;

	onboarding_store_flush(false);
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	/* (history: each relation that holds its rows) */
	for (int r = 0; r < nrels; r++)
	{
		Relation	rel = which == OB_S_HISTORY ? s->parts[r].rel : s->rel;
		ObBind	   *bind = which == OB_S_HISTORY ? s->parts[r].bind : s->bind;
		TupleTableSlot *slot = table_slot_create(rel, NULL);
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			Oid			provider = DatumGetObjectId(slot_getattr(slot, provider_att, &isnull));
			char	   *key = TextDatumGetCString(slot_getattr(slot, key_att, &isnull));
			int			table = which == OB_S_HISTORY ?
				store_entity_table(TextDatumGetCString(slot_getattr(slot, entity_att, &isnull))) : (int) which;
			int64		written_by = DatumGetInt64(slot_getattr(slot, writer_att, &isnull));
			ItemPointerData tid = slot->tts_tid;

			if (keep(table, provider, key, isnull ? 0 : written_by))
				continue;
			deleted++;
			if (dry)
				continue;
			onboarding_tally_slot(&s->tally, slot, -1);		/* (history: nothing) */
			if (which == OB_S_HISTORY)
				onboarding_span_slot(s->rel, slot, -1);
			if (bind != NULL)
			{
				onboarding_bind_delete(bind, &tid, GetCurrentCommandId(true));
				if (which != OB_S_HISTORY)
					store_count_kept(s, &tid);
			}
			else
			{
				TM_FailureData tmfd;

				if (table_tuple_delete(rel, &tid, GetCurrentCommandId(true), InvalidSnapshot,
									   InvalidSnapshot, true, &tmfd, false) != TM_Ok)
					elog(ERROR, "could not delete a row of onboarding.%s", store_names[which]);
			}
		}
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
	}
	UnregisterSnapshot(snapshot);
	return deleted;
}

/* Attribute number of a column of an open table; error if it is missing. */
AttrNumber
onboarding_store_attnum(ObStore *s, const char *name)
{
	return onboarding_attnum(RelationGetDescr(s->rel), RelationGetRelationName(s->rel), name);
}

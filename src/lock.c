/*-------------------------------------------------------------------------
 *
 * lock.c
 *		The lock protocol: the rows a delivery touches, locked all or none.
 *
 * Rows are locked with FOR UPDATE strength (row locks, not lock-table entries,
 * so a million-row COPY is fine) in a fixed order (table, then key).  A
 * delivery that touches several rows and is the first of its transaction takes
 * them all or none: it waits for the first, then tries the others without
 * waiting, and starts again when one is held, so two single deliveries never
 * deadlock (onboarding_derive_lock_rows).  A row that does not exist yet is
 * created later, with its final values, by a speculative insertion (derive.c).
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

/* Locking order: table, then key. */
static int
ent_cmp(const ListCell *a, const ListCell *b)
{
	ObEntState *x = (ObEntState *) lfirst(a);
	ObEntState *y = (ObEntState *) lfirst(b);

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	return strcmp(x->key, y->key);
}

/*
 * Lock a row (read it as the snapshot sees it, for a dry run).  Returns
 * false when mode is OB_LOCK_NOWAIT and another transaction holds it.
 */
static bool
ent_lock(ObProvider provider, ObEntState *e, ObLockMode mode)
{
	ObTableCols *cols;
	ObStore    *s = onboarding_derive_open(e->table, &cols);
	ObFound		found;

	found = onboarding_store_find(s, provider, e->key, mode, e->values, e->nulls, &e->row);
	if (found == OB_WOULD_BLOCK)
		return false;
	e->in_table = e->exists = (found == OB_FOUND);
	if (!e->exists)
	{
		memset(e->nulls, true, cols->natts * sizeof(bool));
		ItemPointerSetInvalid(&e->row.tid);
	}
	return true;
}

/*
 * An error inside one of our lock subtransactions: roll it back (letting
 * go of its row locks), restore the caller's memory context and resource
 * owner, and raise the error again in the transaction around it.
 */
void
onboarding_derive_subxact_rethrow(MemoryContext cxt, ResourceOwner owner)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	ReThrowError(edata);
}

/*
 * Run a lock attempt over rows in a subtransaction of its own; with keep,
 * its locks stay with the transaction when every row was had, otherwise
 * (and always without keep) the subtransaction rolls back and the locks
 * are let go.  Returns the row that would have blocked, or NULL.
 */
ObEntState *
onboarding_derive_lock_attempt(ObProvider provider, List *ents, ObLockMode mode, bool keep)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ObEntState *volatile blocked = NULL;
	ListCell   *lc;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		foreach(lc, ents)
		{
			ObEntState *e = (ObEntState *) lfirst(lc);

			if (!ent_lock(provider, e, mode))
			{
				blocked = e;
				break;
			}
		}
	}
	PG_CATCH();
	{
		onboarding_derive_subxact_rethrow(cxt, owner);
	}
	PG_END_TRY();
	if (keep && blocked == NULL)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return blocked;
}

/*
 * Lock the rows a delivery (or a group) touches, in key order.  Several
 * rows, taken by a transaction that holds none yet, are taken all or none:
 * a transaction that waits for one row while it holds another can close a
 * cycle with one that takes the same rows in another order (several
 * deliveries in one transaction).  So they are taken without waiting, in
 * a subtransaction; if one is held, the subtransaction lets go of the
 * others, we wait for that one holding nothing, and start again.  A
 * transaction of one delivery therefore never waits while it holds a row,
 * and is never the one a deadlock is broken on.  A dry run only reads.
 */
void
onboarding_derive_lock_rows(ObProvider provider, List *ents, bool dry_run)
{
	ListCell   *lc;

	list_sort(ents, ent_cmp);
	if (dry_run)
	{
		foreach(lc, ents)
			(void) ent_lock(provider, (ObEntState *) lfirst(lc), OB_LOCK_NONE);
		return;
	}
	if (list_length(ents) > 1 && !onboarding_store_holds_rows())
	{
		for (;;)
		{
			ObEntState *blocked = onboarding_derive_lock_attempt(provider, ents, OB_LOCK_NOWAIT, true);

			if (blocked == NULL)
				return;
			CHECK_FOR_INTERRUPTS();
			/* wait until whoever holds it is done, then let go of it again */
			(void) onboarding_derive_lock_attempt(provider, list_make1(blocked), OB_LOCK_WAIT, false);
		}
	}
	foreach(lc, ents)
		(void) ent_lock(provider, (ObEntState *) lfirst(lc), OB_LOCK_WAIT);
}

/* Lock rows without waiting; the first one held by another transaction, or NULL. */
ObEntState *
onboarding_derive_lock_nowait(ObProvider provider, List *ents)
{
	ListCell   *lc;

	list_sort(ents, ent_cmp);
	foreach(lc, ents)
	{
		ObEntState *e = (ObEntState *) lfirst(lc);

		if (!ent_lock(provider, e, OB_LOCK_NOWAIT))
			return e;
	}
	return NULL;
}

/*-------------------------------------------------------------------------
 *
 * window.c
 *		The bounded refold: a late delivery refolds only what its arrival
 *		changes.
 *
 * See the section comment below.  What it cannot decide it leaves to the
 * group fold (group.c); both fold through fold.c.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "compat.h"

/* ---------------------------------------------------------------------
 * The bounded refold: a late delivery refolds only what its arrival changes
 * ---------------------------------------------------------------------
 *
 * A late delivery L at time t needs, for the rows it touches, the state
 * just before its place and the deliveries after it, not its whole group.
 * The status before t comes from history (the latest row before t, found
 * through history's index by (entity_key, event_at)); the other columns
 * are unknown there and start empty, each marked set once a delivery of
 * the window writes it.  Two folds then run side by side over the
 * deliveries after t, read in event time through the inbox's group index:
 * the old one (without L, as the stored state was made) and the new one
 * (with L).  As soon as their rows are equal after the same delivery,
 * every later delivery meets the same state in both, and the stored rows
 * stand as they are; only the deliveries between judged otherwise, and
 * the history rows made otherwise, are rewritten.  Columns that add up
 * over every delivery (first_event_at, last_received_at, subjects) take
 * L's share.  A row no stored delivery created (L creates it) starts
 * empty in both folds and is the new fold's.  L is stale by the first of
 * its stored rows, in its touches' order, that a delivery after it and
 * arrived before it touches, as group_fold says; so is an illegal delivery
 * after it that L makes legal (WindowStale).  A row L does not touch that
 * a delivery after it does joins both folds as stored (window_extra).
 *
 * The old fold must give back what is stored (the outcomes of the
 * deliveries it meets); where it does not, or where the window cannot say
 * what the whole fold would (a delivery without a time in the group,
 * events at the same time as L's or each other's, a delivery that touches
 * a row L creates, or a row L does not touch that another transaction
 * holds, several subjects, a user's additions to the tables, a row L
 * creates that another session creates first),
 * the group is folded whole, as before.  So the two paths can never
 * disagree on a result.
 */

/* Deliveries a bounded refold may read after its place before it gives up */
#define OB_WINDOW_MAX 64

/* Which columns of a state table a bounded refold treats apart */
typedef enum WinCol
{
	WC_KEEP,					/* provider, key, a user's: as stored */
	WC_STATUS,					/* a status: known just before the place */
	WC_FLOW,					/* proposal.flow: known just before the place */
	WC_SET,						/* fields, provider_status: set by a delivery */
	WC_LATEST,					/* times and ids of the latest event: empty before */
	WC_ADD						/* first_event_at, last_received_at, subjects */
} WinCol;

/* How a bounded refold treats column i of a table. */
static WinCol
window_col(const ObStateTable *def, ObTableCols *cols, int i)
{
	if (!cols->owned[i] || i == cols->provider || i == cols->key)
		return WC_KEEP;
	for (int c = 0; c < def->nstatus; c++)
	{
		if (i == cols->status[c])
			return WC_STATUS;
		if (i == cols->statustime[c])
			return WC_LATEST;
	}
	if (i == cols->flow)
		return WC_FLOW;
	if (i == cols->provider_status)
		return WC_SET;
	for (int f = 0; f < def->nfields; f++)
		if (i == cols->fields[f])
			return WC_SET;
	if (i == cols->first_event_at || i == cols->last_received_at || i == cols->subjects)
		return WC_ADD;
	return WC_LATEST;			/* last_event_at, last_inbox_id, last_seen_id */
}

/* A copy of a row of a fold, for another fold. */
static ObEntState *
window_copy(ObEntState *e)
{
	ObTableCols *cols;
	ObEntState *c = palloc(sizeof(ObEntState));

	(void) onboarding_derive_open(e->table, &cols);
	*c = *e;
	c->values = palloc(cols->natts * sizeof(Datum));
	c->nulls = palloc(cols->natts * sizeof(bool));
	memcpy(c->values, e->values, cols->natts * sizeof(Datum));
	memcpy(c->nulls, e->nulls, cols->natts * sizeof(bool));
	c->set = palloc0(cols->natts * sizeof(bool));
	return c;
}

/*
 * A stored row as it was just before time t: its statuses from history,
 * the other columns it takes from deliveries empty.  Returns false when
 * history cannot say (no index by time).
 */
static bool
window_before(ObProvider provider, ObEntState *e, TimestampTz t)
{
	const ObStateTable *def = &onboarding_state_tables[e->table];
	ObTableCols *cols;
	bool		existed = false;
	bool		checked = false;

	(void) onboarding_derive_open(e->table, &cols);
	for (int c = 0; c < def->nstatus; c++)
	{
		char	   *status;

		if (!onboarding_store_history_before(onboarding_provider_oid(provider),
											 onboarding_entity_names[onboarding_derive_entity(e->table, c)],
											 e->key, t, &status))
			return false;
		e->nulls[cols->status[c]] = (status == NULL);
		if (status != NULL)
			e->values[cols->status[c]] =
				ObjectIdGetDatum(onboarding_status_oid(onboarding_derive_graph(e->table, c), status));
		existed |= (status != NULL);
		checked |= (c > 0 && status != NULL);
	}
	for (int i = 0; i < cols->natts; i++)
		switch (window_col(def, cols, i))
		{
			case WC_KEEP:
			case WC_STATUS:
				break;
			case WC_FLOW:
				/* set by the first check in event order: before t, or not yet */
				if (!checked)
					e->nulls[i] = true;
				break;
			case WC_ADD:
				if (i != cols->subjects)
					e->nulls[i] = true;
				break;
			case WC_SET:
			case WC_LATEST:
				e->nulls[i] = true;
				break;
		}
	e->exists = existed;
	return true;
}

/* Are the rows of two folds the same, but for the columns that add up? */
static bool
window_same(ObFold *a, ObFold *b)
{
	ListCell   *la,
			   *lb;

	forboth(la, a->ents, lb, b->ents)
	{
		ObEntState *x = (ObEntState *) lfirst(la);
		ObEntState *y = (ObEntState *) lfirst(lb);
		const ObStateTable *def = &onboarding_state_tables[x->table];
		ObTableCols *cols;
		TupleDesc	desc = onboarding_store_desc(onboarding_derive_open(x->table, &cols));

		if (x->exists != y->exists)
			return false;
		for (int i = 0; i < cols->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			WinCol		kind = window_col(def, cols, i);

			if (kind == WC_KEEP || kind == WC_ADD)
				continue;
			if (x->nulls[i] != y->nulls[i] || (kind == WC_SET && x->set[i] != y->set[i]))
				return false;
			if (!x->nulls[i] && !datum_image_eq(x->values[i], y->values[i], att->attbyval, att->attlen))
				return false;
		}
	}
	return true;
}

/*
 * The final values of the rows: the stored ones where the two folds met
 * (converged), else the new fold's where it set them.  Returns false when
 * a column the old fold set in the window and the new one did not needs
 * its value from before the place, which no one kept.
 */
static bool
window_final(ObWindow *w, ObFold *old, List *stored, List *extra, ObDelivery *late, bool converged)
{
	ListCell   *ln,
			   *lo,
			   *ls;

	forthree(ln, w->fnew.ents, lo, old->ents, ls, stored)
	{
		ObEntState *n = (ObEntState *) lfirst(ln);
		ObEntState *o = (ObEntState *) lfirst(lo);
		ObEntState *s = (ObEntState *) lfirst(ls);
		const ObStateTable *def = &onboarding_state_tables[n->table];
		ObTableCols *cols;
		TupleDesc	desc = onboarding_store_desc(onboarding_derive_open(n->table, &cols));

		for (int i = 0; i < cols->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			WinCol		kind = window_col(def, cols, i);
			bool		new_set,
						old_set;

			if (!s->in_table && kind != WC_ADD)
				continue;		/* a row L creates: the new fold's */
			if (kind == WC_KEEP || kind == WC_ADD || converged)
			{
				n->values[i] = s->values[i];
				n->nulls[i] = s->nulls[i];
				continue;
			}
			new_set = kind == WC_SET ? n->set[i] : (kind != WC_LATEST || !n->nulls[i]);
			old_set = kind == WC_SET ? o->set[i] : (kind != WC_LATEST || !o->nulls[i]);
			if (old_set && kind != WC_STATUS && kind != WC_FLOW &&
				(s->nulls[i] != o->nulls[i] ||
				 (!s->nulls[i] && !datum_image_eq(s->values[i], o->values[i], att->attbyval, att->attlen))))
				return false;	/* the old fold does not give back what is stored */
			if ((kind == WC_STATUS || kind == WC_FLOW) &&
				(s->nulls[i] != o->nulls[i] ||
				 (!s->nulls[i] && !datum_image_eq(s->values[i], o->values[i], att->attbyval, att->attlen))))
				return false;
			if (!new_set)
			{
				if (old_set)
					return false;	/* its value before the place is not known */
				n->values[i] = s->values[i];
				n->nulls[i] = s->nulls[i];
			}
		}
		if (!s->in_table)
		{
			/* the old fold must not have created it: no stored delivery did */
			if (o->exists)
				return false;
			if (!n->exists)
				continue;		/* L is illegal: still no row */
		}
		n->exists = true;
		if (list_member_ptr(extra, n))
			continue;			/* a row L does not touch: as stored */
		/* what adds up over every delivery: L's share */
		onboarding_derive_bound(&n->values[cols->first_event_at], &n->nulls[cols->first_event_at],
					 late->has_order_at, late->order_at, false);
		if (cols->last_received_at >= 0)
			onboarding_derive_bound(&n->values[cols->last_received_at], &n->nulls[cols->last_received_at],
						 late->has_received_at, late->received_at, true);
		onboarding_ent_add_subject(n, late->subject);
	}
	return true;
}

/* Do two history rows say the same? */
static bool
hist_same(const ObHistRow *a, const ObHistRow *b)
{
#define STREQ(x, y) ((x) == NULL ? (y) == NULL : ((y) != NULL && strcmp((x), (y)) == 0))
	return a->entity == b->entity && a->inbox_id == b->inbox_id && a->has_at == b->has_at &&
		(!a->has_at || a->at == b->at) && STREQ(a->key, b->key) && STREQ(a->from, b->from) &&
		STREQ(a->to, b->to) && STREQ(a->reason, b->reason);
#undef STREQ
}

/*
 * The history rows the old fold made and the new one does not (found in
 * the table: w->removed), and those the new one made that are new
 * (w->added).  Returns false when a row the old fold made is not stored.
 */
static bool
window_history(ObWindow *w, ObFold *old)
{
	ListCell   *lo,
			   *ln;
	Oid			provider = onboarding_provider_oid(old->provider);

	foreach(lo, old->history)
	{
		ObHistRow  *h = (ObHistRow *) lfirst(lo);
		bool		kept = false;
		ObHistoryPlace *place;

		foreach(ln, w->fnew.history)
			kept |= hist_same(h, (ObHistRow *) lfirst(ln));
		if (kept)
			continue;
		place = palloc(sizeof(ObHistoryPlace));
		if (!h->has_at ||
			!onboarding_store_history_find(provider, onboarding_entity_names[h->entity], h->key,
										   h->at, h->inbox_id, h->from, h->to, place))
			return false;
		w->removed = lappend(w->removed, place);
	}
	foreach(ln, w->fnew.history)
	{
		ObHistRow  *h = (ObHistRow *) lfirst(ln);
		bool		known = false;

		foreach(lo, old->history)
			known |= hist_same(h, (ObHistRow *) lfirst(lo));
		if (!known)
			w->added = lappend(w->added, h);
	}
	return true;
}

/*
 * The deliveries of a group after time t in event time, read one by one
 * (the inbox's group index is (provider, subject, event_at, body_hash)):
 * in each relation that holds inbox rows (its partitions), merged in the
 * index's order.  Deliveries other transactions are still inserting are
 * left out, as the group fold leaves them (they hold the rows they touch).
 */
typedef struct WindowScanPart
{
	IndexScanDesc scan;			/* through the index the store keeps open */
	TupleTableSlot *slot;
	SnapshotData dirty;
	HeapTuple	head;			/* its next delivery; NULL at its end */
} WindowScanPart;

typedef struct WindowScan
{
	WindowScanPart *parts;		/* NULL: not begun, or ended */
	int			nparts;
	int			last;			/* the part whose head was returned last, or -1 */
	TupleDesc	desc;
	const ObInboxAtts *atts;
} WindowScan;

/* A part's next delivery no other transaction is inserting, or NULL. */
static HeapTuple
window_scan_fetch(WindowScanPart *p)
{
	while (index_getnext_slot(p->scan, ForwardScanDirection, p->slot))
		if (!TransactionIdIsValid(p->dirty.xmin))
			return ExecFetchSlotHeapTuple(p->slot, false, NULL);
	return NULL;
}

static void
window_scan_begin(WindowScan *ws, Relation inbox, const ObInboxAtts *atts, ObProvider provider,
				  const char *subject, bool timeless, TimestampTz t)
{
	ObStore    *store = onboarding_store(OB_S_INBOX);
	ScanKeyData keys[3];
	bool	   *want;
	bool		pruned;

	/* keyed by the index's columns: provider, subject, event_at (each scan copies them) */
	onboarding_group_keys(keys, 1, 2, provider, subject);
	if (timeless)
		ScanKeyEntryInitialize(&keys[2], SK_ISNULL | SK_SEARCHNULL, 3,
							   InvalidStrategy, InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
	else
		ScanKeyEntryInitialize(&keys[2], 0, 3, BTGreaterEqualStrategyNumber,
							   InvalidOid, InvalidOid, F_TIMESTAMPTZ_GE, TimestampTzGetDatum(t));
	ws->nparts = onboarding_store_nparts(store);
	ws->parts = palloc0(Max(1, ws->nparts) * sizeof(WindowScanPart));
	ws->last = -1;
	ws->desc = RelationGetDescr(inbox);
	ws->atts = atts;
	want = palloc(Max(1, ws->nparts) * sizeof(bool));
	pruned = onboarding_spread_parts(store, provider, subject, want);
	for (int i = 0; i < ws->nparts; i++)
	{
		WindowScanPart *p = &ws->parts[i];
		Relation	index;
		Relation	heap;

		if (pruned && !want[i])
			continue;			/* (no delivery of the group there: scan, head NULL) */
		heap = onboarding_store_part(store, i, OB_INBOX_GROUP_INDEX, &index);
		InitDirtySnapshot(p->dirty);
		p->slot = table_slot_create(heap, NULL);
		p->scan = ob_index_beginscan(heap, index, &p->dirty, 3, 0);
		index_rescan(p->scan, keys, 3, NULL, 0);
		p->head = window_scan_fetch(p);
	}
}

/* Does a come before b in the group index's order (event_at, body_hash)? */
static bool
window_scan_before(WindowScan *ws, HeapTuple a, HeapTuple b)
{
	bool		anull;
	bool		bnull;
	Datum		av = heap_getattr(a, ws->atts->event_at, ws->desc, &anull);
	Datum		bv = heap_getattr(b, ws->atts->event_at, ws->desc, &bnull);

	if (!anull && !bnull && DatumGetTimestampTz(av) != DatumGetTimestampTz(bv))
		return DatumGetTimestampTz(av) < DatumGetTimestampTz(bv);
	if (anull != bnull)
		return bnull;			/* NULLs last, as the index has them */
	av = heap_getattr(a, ws->atts->body_hash, ws->desc, &anull);
	bv = heap_getattr(b, ws->atts->body_hash, ws->desc, &bnull);
	if (anull || bnull)
		return !anull && bnull;
	return DatumGetInt64(av) < DatumGetInt64(bv);
}

/*
 * The next stored delivery, or NULL at the end.  It stays valid until the
 * next call (its part is read on only then).
 */
static HeapTuple
window_scan_next(WindowScan *ws)
{
	int			best = -1;

	if (ws->last >= 0)
		ws->parts[ws->last].head = window_scan_fetch(&ws->parts[ws->last]);
	for (int i = 0; i < ws->nparts; i++)
		if (ws->parts[i].head != NULL &&
			(best < 0 || window_scan_before(ws, ws->parts[i].head, ws->parts[best].head)))
			best = i;
	ws->last = best;
	return best < 0 ? NULL : ws->parts[best].head;
}

/* Close a scan (once; a scan not begun or already closed is left alone). */
static void
window_scan_end(WindowScan *ws)
{
	if (ws->parts == NULL)
		return;
	for (int i = 0; i < ws->nparts; i++)
	{
		if (ws->parts[i].scan == NULL)
			continue;			/* a partition without the group */
		index_endscan(ws->parts[i].scan);
		ExecDropSingleTupleTableSlot(ws->parts[i].slot);
	}
	pfree(ws->parts);
	ws->parts = NULL;
}

/*
 * Is a stored delivery of d's group (provider and subject) placed at or
 * after d's time?  A delivery that creates a row is late then, though no
 * row of its own says so: one placed after it may have touched that row
 * without creating it (a Fitbank closure approved before its account
 * existed), and the group fold counts that touch when it says stale.
 */
bool
onboarding_window_later(ObDelivery *d)
{
	const ObInboxOids *oids = onboarding_inbox_oids();
	ObStore    *store;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	SnapshotData dirty;
	ScanKeyData keys[3];
	bool		later = false;
	bool	   *want;
	bool		pruned;

	if (!oids->group_by_time || !d->has_event_at || d->subject == NULL)
		return false;

	/*
	 * Every delivery that creates a row asks: through the index the
	 * duplicate check keeps open (dedupe.c), keyed by its columns' places
	 * in the index, not through a catalog scan that opens it each time.
	 */
	store = onboarding_store(OB_S_INBOX);
	slot = onboarding_store_slot(store);
	onboarding_group_keys(keys, 1, 2, d->provider, d->subject);
	ScanKeyEntryInitialize(&keys[2], 0, 3, BTGreaterEqualStrategyNumber, InvalidOid,
						   InvalidOid, F_TIMESTAMPTZ_GE, TimestampTzGetDatum(d->event_at));
	want = palloc(onboarding_store_nparts(store) * sizeof(bool));
	pruned = onboarding_spread_parts(store, d->provider, d->subject, want);
	for (int part = 0; !later && part < onboarding_store_nparts(store); part++)
	{
		Relation	index;
		Relation	heap;

		if (pruned && !want[part])
			continue;
		heap = onboarding_store_part(store, part, OB_INBOX_GROUP_INDEX, &index);
		InitDirtySnapshot(dirty);
		scan = ob_index_beginscan(heap, index, &dirty, 3, 0);
		index_rescan(scan, keys, 3, NULL, 0);
		while (!later && index_getnext_slot(scan, ForwardScanDirection, slot))
			later = !TransactionIdIsValid(dirty.xmin);	/* (as window_scan_fetch) */
		index_endscan(scan);
	}
	ExecClearTuple(slot);
	pfree(want);
	return later;
}

/* The stored outcome of an inbox row. */
static ObOutcome
window_outcome(HeapTuple tup, TupleDesc desc, const ObInboxAtts *atts)
{
	bool		isnull;
	Datum		label = heap_getattr(tup, atts->outcome, desc, &isnull);

	/* outcome is NOT NULL; its labels are the contract (catalog.c checks them) */
	return isnull ? OB_NOUTCOMES : onboarding_outcome_from_oid(DatumGetObjectId(label));
}

/*
 * The deliveries of L's group (provider and subject) that arrived after L
 * but were derived before it (two sessions): HeapTuple copies, read through
 * the inbox's primary key from L's id on (none, as a rule).
 */
static List *
window_newer(Relation inbox, const ObInboxAtts *atts, ObDelivery *d)
{
	TupleDesc	desc = RelationGetDescr(inbox);
	Oid			provider = onboarding_provider_oid(d->provider);
	ObStore    *store = onboarding_store(OB_S_INBOX);
	SnapshotData dirty;
	ScanKeyData key;
	IndexScanDesc scan;
	List	   *newer = NIL;

	for (int part = 0; part < onboarding_store_nparts(store); part++)
	{
		Relation	index;
		Relation	heap = onboarding_store_part(store, part, OB_INBOX_PKEY, &index);
		TupleTableSlot *slot = table_slot_create(heap, NULL);

		/* (through the index the store keeps open; id is its first column) */
		InitDirtySnapshot(dirty);
		ScanKeyEntryInitialize(&key, 0, 1, BTGreaterStrategyNumber, InvalidOid, InvalidOid,
							   F_INT8GT, Int64GetDatum(d->id));
		scan = ob_index_beginscan(heap, index, &dirty, 1, 0);
		index_rescan(scan, &key, 1, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			HeapTuple	tup = ExecFetchSlotHeapTuple(slot, false, NULL);

			bool		isnull;
			Datum		v;

			if (TransactionIdIsValid(dirty.xmin))
				continue;		/* another transaction's, still being inserted */
			v = heap_getattr(tup, atts->provider, desc, &isnull);
			if (isnull || DatumGetObjectId(v) != provider)
				continue;
			v = heap_getattr(tup, atts->subject, desc, &isnull);
			if (!isnull && strcmp(TextDatumGetCString(v), d->subject) == 0)
				newer = lappend(newer, heap_copytuple(tup));
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
	}
	return newer;
}

/* Does a delivery touch row e (by table and key)? */
static bool
window_touches(List *touches, ObEntState *e)
{
	ListCell   *lc;

	foreach(lc, touches)
	{
		ObEntState *x = ((ObTouch *) lfirst(lc))->ent;

		if (x->table == e->table && strcmp(x->key, e->key) == 0)
			return true;
	}
	return false;
}

/*
 * A delivery X of L's group that arrived after L and was derived before it
 * (window_newer), placed before L: L, placed after it and arrived before
 * it, may make it stale, or stale by a nearer delivery.  Its staleness is
 * judged again as group_fold judges it: the first delivery after it in
 * event order, L included, that touches its row and arrived before it.
 * Returns false when the window cannot say (X touches several rows, or
 * shares its time with another delivery); else X goes to w->rewrite.
 */
static bool
window_newer_stale(Relation inbox, const ObInboxAtts *atts, ObDelivery *late, List *late_touches,
				   HeapTuple x, HTAB *pool, ObWindow *w)
{
	TupleDesc	desc = RelationGetDescr(inbox);
	ObGroupItem *it;
	ObFold		scratch = {0};
	List	   *touches;
	ObEntState *row;
	WindowScan	ws = {0};
	HeapTuple	tup;
	bool		isnull;
	int64		id = DatumGetInt64(heap_getattr(x, atts->id, desc, &isnull));
	int64		ref = 0;
	int			read = 0;
	bool		unsure = false;

	/* (read apart from the pool: a pooled item may be judged again meanwhile) */
	it = onboarding_group_item_read(x, desc, atts);
	if (it->d->decided || !it->d->has_event_at)
		return false;
	scratch.provider = late->provider;
	touches = onboarding_fold_touches(&scratch, it->d);
	if (list_length(touches) != 1)
		return false;
	row = ((ObTouch *) linitial(touches))->ent;

	window_scan_begin(&ws, inbox, atts, late->provider, late->subject, false, it->d->event_at);
	while (ref == 0 && (tup = window_scan_next(&ws)) != NULL)
	{
		ObOutcome	was = window_outcome(tup, desc, atts);
		int64		other = DatumGetInt64(heap_getattr(tup, atts->id, desc, &isnull));
		TimestampTz at = DatumGetTimestampTz(heap_getattr(tup, atts->event_at, desc, &isnull));
		ObGroupItem *o;
		ObFold		f2 = {0};

		if (other == id || was == OB_DUPLICATE || was == OB_UNRECOGNIZED || was == OB_INVALID)
			continue;
		if (at == it->d->event_at || ++read > OB_WINDOW_MAX)
		{
			unsure = true;		/* a tie: the group's order, not the index's */
			break;
		}
		if (at >= late->event_at)
			break;				/* L comes first */
		if (other > id)
			continue;
		/* its rows, as prepared (the item itself may be on its way to a rewrite) */
		o = onboarding_group_item_pooled(pool, other, tup, desc, atts);
		if (o->prepared.decided)
			continue;
		f2.provider = late->provider;
		if (window_touches(onboarding_fold_touches(&f2, &o->prepared), row))
			ref = other;
	}
	window_scan_end(&ws);
	if (unsure)
		return false;
	if (ref == 0 && window_touches(late_touches, row))
		ref = late->id;
	if (ref != 0)
		onboarding_derive_stale(it->d, row, ref);
	w->rewrite = lappend(w->rewrite, it);
	return true;
}

/*
 * Which row makes a delivery of the window stale, as group_fold says: the
 * first of its stored rows, in its touches' order, that a delivery placed
 * after it and arrived before it touches, and the nearest such delivery.
 * The first row settles it at once; another only once every delivery
 * after it is read and none touched an earlier row.
 */
typedef struct WindowStale
{
	ObDelivery *d;
	List	   *rows;			/* ObEntState *, its touches' order */
	int64	   *by;				/* per row: the first such delivery, or 0 */
	bool		known;
} WindowStale;

/* A delivery whose staleness the window is to say; an illegal one is not stale. */
static WindowStale *
window_stale_new(ObDelivery *d, List *rows)
{
	WindowStale *ws = palloc0(sizeof(WindowStale));

	ws->d = d;
	ws->rows = rows;
	ws->by = palloc0(Max(list_length(rows), 1) * sizeof(int64));
	ws->known = d->decided || rows == NIL;
	return ws;
}

/* Delivery x, placed after every one of jobs, touches what touches lists. */
static bool
window_stale_see(List *jobs, ObDelivery *x, List *touches)
{
	ListCell   *lj,
			   *lr;
	bool		all_known = true;

	foreach(lj, jobs)
	{
		WindowStale *j = (WindowStale *) lfirst(lj);
		int			r = 0;

		if (!j->known && x->id < j->d->id)
		{
			foreach(lr, j->rows)
			{
				if (j->by[r] == 0 && window_touches(touches, (ObEntState *) lfirst(lr)))
					j->by[r] = x->id;
				r++;
			}
			j->known = j->by[0] != 0;
		}
		all_known &= j->known;
	}
	return all_known;
}

/*
 * The row that makes j's delivery stale, and the delivery that does (*by),
 * once every delivery after it is read or the first row settled it; NULL
 * when it is not stale.
 */
static ObEntState *
window_stale_row(WindowStale *j, int64 *by)
{
	ListCell   *lr;
	int			r = 0;

	*by = 0;
	if (j->d->decided)
		return NULL;
	foreach(lr, j->rows)
	{
		if (j->by[r] != 0)
		{
			*by = j->by[r];
			return (ObEntState *) lfirst(lr);
		}
		r++;
	}
	return NULL;
}

/*
 * A delivery after L touches rows L does not (ents from position from on,
 * in both folds): take each as stored, locked without waiting, at its
 * status just before L's place, which is also its status just before that
 * delivery's (every delivery between, in event time, was read and touched
 * no such row).  Returns false when a row is held by another transaction,
 * is not stored, or has seen another subject: the caller folds the group.
 */
static bool
window_extra(ObDelivery *late, ObFold *fnew, ObFold *old, int from, List **stored, List **extra)
{
	for (int i = from; i < list_length(fnew->ents); i++)
	{
		ObEntState *n = (ObEntState *) list_nth(fnew->ents, i);
		ObEntState *o = (ObEntState *) list_nth(old->ents, i);
		ObTableCols *cols;
		ListCell   *lc;

		(void) onboarding_derive_open(n->table, &cols);
		if (n->table != o->table || strcmp(n->key, o->key) != 0 ||
			onboarding_derive_lock_nowait(late->provider, list_make1(n)) != NULL || !n->in_table)
			return false;
		foreach(lc, onboarding_ent_subjects(n))
			if (strcmp((const char *) lfirst(lc), late->subject) != 0)
				return false;
		*stored = lappend(*stored, window_copy(n));
		if (!window_before(late->provider, n, late->event_at))
			return false;
		memcpy(o->values, n->values, cols->natts * sizeof(Datum));
		memcpy(o->nulls, n->nulls, cols->natts * sizeof(bool));
		o->in_table = n->in_table;
		o->exists = n->exists;
		o->row = n->row;
		n->set = palloc0(cols->natts * sizeof(bool));
		o->set = palloc0(cols->natts * sizeof(bool));
		*extra = lappend(*extra, n);
	}
	return true;
}

/* Say at DEBUG1 why late delivery d folds its whole group; returns false. */
static bool
window_whole(ObDelivery *d, const char *why)
{
	ereport(DEBUG1,
			(errmsg_internal("late delivery %lld folds its whole group: %s", (long long) d->id, why)));
	return false;
}

/*
 * Plan the bounded refold of late delivery d, whose rows f holds (locked,
 * as stored).  Reads only; returns whether w is ready to write.  When not,
 * d is as it came and the caller folds the group whole.
 */
bool
onboarding_window_plan(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, ObFold *f, HTAB *pool,
			ObWindow   *w)
{
	ObDelivery	prepared = *d;
	char	   *detail = pstrdup(d->detail.data);
	TupleDesc	desc = RelationGetDescr(inbox);
	List	   *subjects;
	List	   *stored = NIL;
	List	   *touches;
	List	   *stale_from;		/* L's rows that were stored, in its touches' order */
	List	   *stale = NIL;	/* WindowStale *: L, then the illegal ones it makes legal */
	List	   *fresh = NIL;	/* L's rows that no stored delivery created */
	List	   *extra = NIL;	/* rows L does not touch that deliveries after it do */
	List	   *newer;			/* HeapTuple: arrived after L, derived before */
	ObFold		old = {0};
	WindowScan	ws = {0};
	HeapTuple	tup;
	ListCell   *lc;
	bool		converged = false;
	bool		stale_known = false;
	TimestampTz prev_at = 0;
	const char *why = NULL;
	int64		bodies_before = onboarding_group_bodies_read();

	memset(w, 0, sizeof(ObWindow));
	if (!onboarding_inbox_oids()->group_by_time || !d->has_event_at || d->forced ||
		d->duplicate_candidate != 0 || onboarding_fold_bound(f))
		return window_whole(d, "it has no time of its own, is an override, or its rows are bound by a user's additions");
	subjects = onboarding_derive_subjects(d, f);
	if (list_length(subjects) != 1)
		return window_whole(d, "its rows have seen several subjects");
	if (onboarding_checkpoint_in_group(d->provider, subjects))
		return window_whole(d, "its group has a checkpoint (archived deliveries): it is folded after it");
	newer = window_newer(inbox, atts, d);

	/* a delivery without a time takes its place by arrival: fold it whole */
	window_scan_begin(&ws, inbox, atts, d->provider, d->subject, true, 0);
	tup = window_scan_next(&ws);
	window_scan_end(&ws);
	if (tup != NULL)
		return window_whole(d, "a delivery of the group has no time");

	/* the rows just before L's place, in both folds */
	w->fnew.provider = old.provider = d->provider;
	foreach(lc, f->ents)
	{
		ObEntState *e = window_copy((ObEntState *) lfirst(lc));

		stored = lappend(stored, window_copy((ObEntState *) lfirst(lc)));
		if (!window_before(d->provider, e, d->event_at))
			return window_whole(d, "the state before its place is not in history");
		w->fnew.ents = lappend(w->fnew.ents, e);
		old.ents = lappend(old.ents, window_copy(e));
	}

	/* L at its place */
	d->has_order_at = true;
	d->order_at = d->event_at;
	touches = onboarding_fold_touches(&w->fnew, d);
	stale_from = NIL;
	foreach(lc, touches)
	{
		ObEntState *e = ((ObTouch *) lfirst(lc))->ent;

		/*
		 * A row no stored delivery created can be touched by none after L
		 * (below): it cannot make L stale.
		 */
		if (e->in_table)
			stale_from = lappend(stale_from, e);
		else
			fresh = lappend(fresh, e);
	}
	onboarding_fold_step(&w->fnew, d, touches);
	stale = list_make1(window_stale_new(d, stale_from));
	stale_known = ((WindowStale *) linitial(stale))->known;

	/* then the deliveries after it, in both folds, until they meet */
	window_scan_begin(&ws, inbox, atts, d->provider, d->subject, false, d->event_at);
	while (!(converged && stale_known) && (tup = window_scan_next(&ws)) != NULL)
	{
		ObOutcome	was = window_outcome(tup, desc, atts);
		bool		isnull;
		int64		id = DatumGetInt64(heap_getattr(tup, atts->id, desc, &isnull));
		ObGroupItem *it;
		List	   *tnew;
		List	   *told;
		bool		old_illegal;
		bool		new_illegal;
		char	   *old_detail;
		int			nents = list_length(w->fnew.ents);

		/* what L cannot change: duplicates, bodies no rule reads */
		if (was == OB_DUPLICATE || was == OB_UNRECOGNIZED || was == OB_INVALID)
			continue;
		if (was != OB_APPLIED && was != OB_STALE && was != OB_ILLEGAL)
		{
			why = "a delivery after it was refused by a user's addition";
			goto fold_whole;
		}
		if (++w->read > OB_WINDOW_MAX)
		{
			why = "the deliveries it changes are too many";
			goto fold_whole;
		}
		it = onboarding_group_item_pooled(pool, id, tup, desc, atts);
		onboarding_group_item_reset(it);
		if (it->d->decided || it->d->forced || !it->d->has_event_at ||
			it->d->duplicate_candidate != 0 || it->d->event_at == d->event_at ||
			(w->read > 1 && it->d->event_at == prev_at))
		{
			why = "a delivery after it is not as stored, or shares a time";
			goto fold_whole;
		}
		prev_at = it->d->event_at;
		it->d->has_order_at = true;
		it->d->order_at = it->d->event_at;

		if (converged)
		{
			/* only the delivery that makes L stale is still sought */
			ObFold		scratch = {0};

			scratch.provider = d->provider;
			tnew = onboarding_fold_touches(&scratch, it->d);
		}
		else
		{
			tnew = onboarding_fold_touches(&w->fnew, it->d);
			told = onboarding_fold_touches(&old, it->d);
			if (list_length(w->fnew.ents) != list_length(old.ents))
			{
				why = "a delivery after it touches rows it does not";
				goto fold_whole;
			}
			if (list_length(w->fnew.ents) > nents &&
				!window_extra(d, &w->fnew, &old, nents, &stored, &extra))
			{
				why = "a delivery after it touches rows it does not, and one of them cannot be had";
				goto fold_whole;
			}
			foreach(lc, fresh)
				if (window_touches(tnew, (ObEntState *) lfirst(lc)))
				{
					why = "a delivery after it touches a row that it creates";
					goto fold_whole;
				}

			onboarding_fold_step(&old, it->d, told);
			old_illegal = it->d->decided;
			old_detail = pstrdup(it->d->detail.data);
			if (old_illegal != (was == OB_ILLEGAL) ||
				(old_illegal && it->d->outcome != OB_ILLEGAL))
			{
				why = "the stored fold does not give back what is stored";
				goto fold_whole;
			}
			onboarding_group_item_reset(it);
			it->d->has_order_at = true;
			it->d->order_at = it->d->event_at;
			onboarding_fold_step(&w->fnew, it->d, tnew);
			new_illegal = it->d->decided;
			if (new_illegal && it->d->outcome != OB_ILLEGAL)
			{
				why = "a delivery after it is decided otherwise than illegal";
				goto fold_whole;
			}
			if (old_illegal && !new_illegal)
			{
				List	   *rows = NIL;

				/* legal now: applied, or stale by what came after it (below) */
				it->d->outcome = OB_APPLIED;
				foreach(lc, tnew)
					rows = lappend(rows, ((ObTouch *) lfirst(lc))->ent);
				stale = lappend(stale, window_stale_new(it->d, rows));
				stale_known = false;
				w->rewrite = lappend(w->rewrite, it);
			}
			if (new_illegal && (!old_illegal || strcmp(old_detail, it->d->detail.data) != 0))
				w->rewrite = lappend(w->rewrite, it);
			converged = window_same(&w->fnew, &old);
		}

		/* L, and those it makes legal, are stale by what came after them first */
		if (!stale_known)
			stale_known = window_stale_see(stale, it->d, tnew);
	}
	/*
	 * All settled, or every delivery after L read: L's row is marked when
	 * written; the others are judged now.
	 */
	w->stale_ent = window_stale_row((WindowStale *) linitial(stale), &w->stale_id);
	for_each_from(lc, stale, 1)
	{
		WindowStale *j = (WindowStale *) lfirst(lc);
		int64		by;
		ObEntState *row = window_stale_row(j, &by);

		if (row != NULL)
			onboarding_derive_stale(j->d, row, by);
	}

	/*
	 * Where the folds met, the next delivery must not share the last one's
	 * time: history rows at one time keep their order by id, and the last
	 * one's may have been written again.
	 */
	while (converged && (tup = window_scan_next(&ws)) != NULL)
	{
		ObOutcome	was = window_outcome(tup, desc, atts);
		bool		isnull;
		Datum		at = heap_getattr(tup, atts->event_at, desc, &isnull);

		if (was == OB_DUPLICATE || was == OB_UNRECOGNIZED || was == OB_INVALID)
			continue;
		if (isnull || DatumGetTimestampTz(at) == prev_at)
		{
			why = "where the folds meet, two deliveries share a time";
			goto fold_whole;
		}
		break;
	}
	window_scan_end(&ws);

	if (!window_final(w, &old, stored, extra, d, converged) || !window_history(w, &old))
	{
		why = "the folds did not meet, or history cannot say the change";
		goto fold_whole;
	}

	/* the deliveries that arrived after L, derived before it, placed before it */
	foreach(lc, newer)
	{
		HeapTuple	x = (HeapTuple) lfirst(lc);
		bool		isnull;
		Datum		at = heap_getattr(x, atts->event_at, desc, &isnull);
		ObOutcome	was = window_outcome(x, desc, atts);

		if (was == OB_DUPLICATE || was == OB_UNRECOGNIZED || was == OB_INVALID ||
			was == OB_ILLEGAL || (!isnull && DatumGetTimestampTz(at) > d->event_at))
			continue;			/* not stale by L, or folded in the window */
		if (isnull || was == OB_REFUSED || DatumGetTimestampTz(at) == d->event_at ||
			!window_newer_stale(inbox, atts, d, touches, x, pool, w))
		{
			why = "a delivery that arrived after it was derived before it";
			goto fold_whole;
		}
	}
	w->ready = true;
	w->prepared = prepared;
	w->prepared_detail = detail;
	ereport(DEBUG1,
			(errmsg_internal("late delivery %lld refolded from its place; stored deliveries read: %d (bodies read again: %lld), history rows removed: %d, added: %d, other outcomes rewritten: %d",
							 (long long) d->id, w->read,
							 (long long) (onboarding_group_bodies_read() - bodies_before),
							 list_length(w->removed),
							 list_length(w->added), list_length(w->rewrite))));
	return true;

fold_whole:
	(void) window_whole(d, why);
	window_scan_end(&ws);
	onboarding_delivery_reset(d, &prepared, detail);
	memset(w, 0, sizeof(ObWindow));
	return false;
}

/*
 * Write a planned bounded refold: the rows, the history rows that change,
 * and the derived columns of the deliveries judged otherwise.  Returns
 * false, having written nothing and put d back as it came, when a row L
 * creates was created meanwhile by another session: the caller folds the
 * group whole.
 */
bool
onboarding_window_write(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, ObWindow *w)
{
	ListCell   *lc;
	ObStore    *s;
	Oid			provider = onboarding_provider_oid(w->fnew.provider);

	if (!onboarding_fold_write_rows(&w->fnew))
	{
		(void) window_whole(d, "a row it creates was created meanwhile");
		onboarding_delivery_reset(d, &w->prepared, w->prepared_detail);
		return false;
	}
	foreach(lc, w->removed)
		onboarding_store_history_delete((ObHistoryPlace *) lfirst(lc));
	s = onboarding_derive_open_history();
	foreach(lc, w->added)
	{
		Datum	   *values;
		bool	   *nulls;

		onboarding_hist_values(provider, (ObHistRow *) lfirst(lc), &values, &nulls);
		onboarding_store_append(s, values, nulls);
	}
	foreach(lc, w->rewrite)
	{
		ObGroupItem *it = (ObGroupItem *) lfirst(lc);

		onboarding_delivery_rewrite(it->d, it->stored, RelationGetDescr(inbox), atts);
	}
	if (!d->decided && w->stale_ent != NULL)
		onboarding_derive_stale(d, w->stale_ent, w->stale_id);
	w->fnew.history = NIL;
	return true;
}

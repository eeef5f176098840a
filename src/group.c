/*-------------------------------------------------------------------------
 *
 * group.c
 *		The group fold: every delivery of a group folded again from nothing.
 *
 * A group is every delivery with the same provider and subject, and the
 * subjects its rows have seen: all the deliveries that can touch its rows.
 * rebuild() folds every group this way; a late delivery does when the
 * bounded refold (window.c) cannot say what the whole fold would give.  The
 * group's deliveries are read through the inbox's group index, prepared
 * again (delivery.c), deduplicated, placed in event order and folded
 * (fold.c); state and history are written back where they change
 * (derive.c), and the outcomes of the deliveries judged otherwise than
 * stored are rewritten.
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
 * The group fold: late deliveries and rebuild()
 * ---------------------------------------------------------------------
 */

/* Event order of two items (see the header). */
static int
item_cmp(const ListCell *a, const ListCell *b)
{
	ObGroupItem *x = (ObGroupItem *) lfirst(a);
	ObGroupItem *y = (ObGroupItem *) lfirst(b);

	if (x->has_at != y->has_at)
		return x->has_at ? 1 : -1;	/* no time at all: before every time */
	if (x->has_at && x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	if (x->d->id != y->d->id)
		return x->d->id < y->d->id ? -1 : 1;
	return 0;
}

/* Arrival order. */
static int
item_id_cmp(const ListCell *a, const ListCell *b)
{
	int64		x = ((ObGroupItem *) lfirst(a))->d->id;
	int64		y = ((ObGroupItem *) lfirst(b))->d->id;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Carry over the sentence of a stored detail that says raw needed the repair. */
static void
group_repair_note(ObDelivery *d, HeapTuple stored, TupleDesc desc, const ObInboxAtts *atts)
{
	static const char prefix[] = "raw body repaired: ";
	bool		isnull;
	Datum		v = heap_getattr(stored, atts->detail, desc, &isnull);
	char	   *detail;
	char	   *start;
	char	   *end;

	if (isnull)
		return;
	detail = TextDatumGetCString(v);
	start = strstr(detail, prefix);
	if (start == NULL)
		return;
	end = strstr(start, "; ");
	if (end != NULL)
		*end = '\0';
	onboarding_note(d, "%s", start);
}

/*
 * A derivation's pool of the group deliveries it has read, by inbox id:
 * each is read and prepared once, however often the group is gathered
 * again (it grows, or others delivered to it while we waited) or a window
 * reads it.
 */
typedef struct PoolEntry
{
	int64		id;
	ObGroupItem *it;
} PoolEntry;

HTAB *
onboarding_group_pool_create(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(PoolEntry);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("onboarding group deliveries", 32, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * A delivery as it was prepared again: prepared is its copy then, and
 * detail the text its detail had (a verdict puts its sentence first, so
 * the text is kept, not only its length; the detail's buffer is kept).
 */
void
onboarding_delivery_reset(ObDelivery *d, const ObDelivery *prepared, const char *detail)
{
	StringInfoData buf = d->detail;

	*d = *prepared;
	resetStringInfo(&buf);
	appendStringInfoString(&buf, detail);
	d->detail = buf;
}

/* Undo what a fold did to a pooled delivery: it is as prepared again. */
void
onboarding_group_item_reset(ObGroupItem *it)
{
	if (it->stored == NULL)
		return;					/* the one being inserted: its caller's */
	onboarding_delivery_reset(it->d, &it->prepared, it->prepared_detail);
	it->touches = NIL;
	it->covered = false;
	it->has_at = false;
	it->at = 0;
	it->seq = 0;
}

/* Stored bodies this backend's group folds and refolds have read again */
static int64 bodies_read_again = 0;

/* How many stored bodies this backend's folds have read again (DEBUG1, tests). */
int64
onboarding_group_bodies_read(void)
{
	return bodies_read_again;
}

/*
 * Prepare a stored delivery as when it arrived: from its kept extraction
 * when it has a current one, else from its body.
 */
static void
group_item_prepare(ObDelivery *d, HeapTuple stored, TupleDesc desc, const ObInboxAtts *atts)
{
	bool		raw_null;
	bool		going;
	Datum		raw;

	if (onboarding_prepare_kept(d, stored, desc, atts, &going))
		return;					/* its body is not read again */
	bodies_read_again++;
	raw = heap_getattr(stored, atts->raw, desc, &raw_null);
	if (d->payload == NULL)
	{
		(void) onboarding_prepare_delivery(d, raw_null ? NULL : DatumGetTextPP(raw));
		return;
	}

	/*
	 * Parsing raw again would only say again whether it needed the repair:
	 * the stored detail says so (rebuild() wrote it from raw in its first
	 * pass), at a fraction of the cost.
	 */
	if (!raw_null)
		group_repair_note(d, stored, desc, atts);
	(void) onboarding_prepare_delivery(d, NULL);
}

/* Read and prepare one stored delivery of a group, as when it arrived. */
ObGroupItem *
onboarding_group_item_read(HeapTuple tup, TupleDesc desc, const ObInboxAtts *atts)
{
	ObGroupItem *it = palloc0(sizeof(ObGroupItem));
	bool		hash_null;
	Datum		hash;

	it->stored = heap_copytuple(tup);
	it->d = palloc(sizeof(ObDelivery));
	onboarding_delivery_init(it->d, it->stored, desc, atts);
	group_item_prepare(it->d, it->stored, desc, atts);
	if (it->d->payload != NULL)
	{
		hash = heap_getattr(it->stored, atts->body_hash, desc, &hash_null);
		it->d->body_hash = hash_null ? onboarding_dedupe_hash(it->d->payload) :
			(uint64) DatumGetInt64(hash);
	}
	it->prepared = *it->d;
	it->prepared_detail = pstrdup(it->d->detail.data);
	return it;
}

/* The item of a stored delivery (inbox id id), from the pool, read into it when new. */
ObGroupItem *
onboarding_group_item_pooled(HTAB *pool, int64 id, HeapTuple tup, TupleDesc desc,
							 const ObInboxAtts *atts)
{
	bool		found;
	PoolEntry  *entry = (PoolEntry *) hash_search(pool, &id, HASH_ENTER, &found);

	if (!found)
		entry->it = onboarding_group_item_read(tup, desc, atts);
	return entry->it;
}

/* A stored delivery read by a group's scan, from the pool when read before. */
static ObGroupItem *
group_scan_item(HTAB *pool, HeapTuple tup, TupleDesc desc, const ObInboxAtts *atts)
{
	bool		isnull;
	int64		id = DatumGetInt64(heap_getattr(tup, atts->id, desc, &isnull));

	return onboarding_group_item_pooled(pool, id, tup, desc, atts);
}

/*
 * The deliveries of a group stored in the inbox (committed, or this
 * transaction's), from the pool when read before.  Deliveries other
 * transactions are still inserting are not theirs to fold yet: they hold
 * the rows they touch, which we lock afterwards.
 */
static List *
group_scan_one(Relation inbox, const ObInboxAtts *atts, ObProvider provider, const char *subject,
			   HTAB *pool)
{
	ObStore    *store = onboarding_store(OB_S_INBOX);
	TupleDesc	desc = RelationGetDescr(inbox);
	SnapshotData dirty;
	ScanKeyData heap_keys[2];
	ScanKeyData index_keys[2];
	List	   *items = NIL;
	bool	   *want;
	bool		pruned;

	onboarding_group_keys(heap_keys, atts->provider, atts->subject, provider, subject);
	onboarding_group_keys(index_keys, 1, 2, provider, subject);

	/*
	 * In every relation that holds inbox rows (its partitions), through the
	 * index the store keeps open (a catalog scan would open and close it
	 * for every group and partition).
	 */
	want = palloc(Max(1, onboarding_store_nparts(store)) * sizeof(bool));
	pruned = onboarding_spread_parts(store, provider, subject, want);
	for (int part = 0; part < onboarding_store_nparts(store); part++)
	{
		Relation	index;
		Relation	heap;
		HeapTuple	tup;

		if (pruned && !want[part])
			continue;			/* none of the group's deliveries there */
		heap = onboarding_store_part(store, part, OB_INBOX_GROUP_INDEX, &index);

		InitDirtySnapshot(dirty);
		if (index == NULL)
		{
			/* (a 0.1.0 schema has no group index: then the heap is scanned) */
			SysScanDesc scan = systable_beginscan(heap, InvalidOid, false, &dirty, 2, heap_keys);

			while (HeapTupleIsValid(tup = systable_getnext(scan)))
				if (!TransactionIdIsValid(dirty.xmin))	/* (not another's, being inserted) */
					items = lappend(items, group_scan_item(pool, tup, desc, atts));
			systable_endscan(scan);
		}
		else
		{
			TupleTableSlot *slot = table_slot_create(heap, NULL);
			IndexScanDesc scan;

			scan = ob_index_beginscan(heap, index, &dirty, 2, 0);
			index_rescan(scan, index_keys, 2, NULL, 0);
			while (index_getnext_slot(scan, ForwardScanDirection, slot))
				if (!TransactionIdIsValid(dirty.xmin))
					items = lappend(items, group_scan_item(pool, ExecFetchSlotHeapTuple(slot, false, NULL),
														   desc, atts));
			index_endscan(scan);
			ExecDropSingleTupleTableSlot(slot);
		}
	}
	return items;
}

/* The deliveries of every subject of a list, each once. */
static List *
group_scan(Relation inbox, const ObInboxAtts *atts, ObProvider provider, List *subjects,
		   HTAB *pool)
{
	List	   *items = NIL;
	ListCell   *ls,
			   *lc,
			   *li;

	foreach(ls, subjects)
	{
		foreach(lc, group_scan_one(inbox, atts, provider, (const char *) lfirst(ls), pool))
		{
			ObGroupItem *it = (ObGroupItem *) lfirst(lc);
			bool		known = false;

			foreach(li, items)
				known |= (((ObGroupItem *) lfirst(li))->d->id == it->d->id);
			if (!known)
				items = lappend(items, it);
		}
	}
	return items;
}

/*
 * Duplicates within the group (the same body as an earlier delivery): a
 * body with a time is a duplicate; one without may be a new occurrence,
 * which the fold decides.
 */
static void
group_dedupe(List *items)
{
	ListCell   *lc,
			   *lo;

	foreach(lc, items)
	{
		ObGroupItem *it = (ObGroupItem *) lfirst(lc);
		ObDelivery *d = it->d;

		d->duplicate_candidate = 0;
		if (d->payload == NULL || d->outcome == OB_DUPLICATE)
			continue;
		foreach(lo, items)
		{
			ObDelivery *o = ((ObGroupItem *) lfirst(lo))->d;

			if (o == d)
				break;
			if (o->payload == NULL || o->body_hash != d->body_hash ||
				!DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(o->payload),
												  JsonbPGetDatum(d->payload))))
				continue;
			if (!d->decided && !d->has_event_at)
				d->duplicate_candidate = o->id;
			else
				onboarding_mark_duplicate(d, o->id);
			break;
		}
	}
}

/*
 * Place every delivery that takes part in the fold, in arrival order: one
 * without a time goes right after the latest event among the deliveries
 * of its rows that arrived before it (a row's checkpoint counts as one).
 * A delivery a checkpoint covers takes no part.
 */
static void
group_place(ObFold *f, List *items)
{
	ListCell   *lc,
			   *lt;

	foreach(lc, items)
	{
		ObGroupItem *it = (ObGroupItem *) lfirst(lc);
		ObDelivery *d = it->d;

		if (d->decided)
			continue;
		it->touches = onboarding_fold_touches(f, d);
		/* folded into a checkpoint of its rows: the fold starts after it */
		if (onboarding_checkpoint_covers(f, it->touches, d->id))
		{
			it->covered = true;
			it->touches = NIL;
			continue;
		}
		if (d->has_event_at)
		{
			ObEffect   *first = (ObEffect *) linitial(d->effects);
			uint64		rank = (uint64) onboarding_status_rank(first->entity, d->provider, first->status);

			it->has_at = true;
			it->at = d->event_at;
			it->seq = (rank << 48) | (d->body_hash & UINT64CONST(0xFFFFFFFFFFFF));
		}
		else
		{
			foreach(lt, it->touches)
			{
				ObEntState *e = ((ObTouch *) lfirst(lt))->ent;

				if (e->has_max_at && (!it->has_at || e->max_at > it->at))
				{
					it->at = e->max_at;
					it->has_at = true;
				}
			}
			it->seq = (UINT64CONST(1) << 63) | (uint64) d->id;
		}
		d->has_order_at = it->has_at;
		d->order_at = it->at;
		/* its rows' latest time, for the deliveries after it */
		foreach(lt, it->touches)
		{
			ObEntState *e = ((ObTouch *) lfirst(lt))->ent;

			if (it->has_at && (!e->has_max_at || e->max_at < it->at))
			{
				e->max_at = it->at;
				e->has_max_at = true;
			}
		}
	}
}

/* Say that an applied delivery is stale: delivery later_id of row e came after it and arrived first. */
void
onboarding_derive_stale(ObDelivery *d, ObEntState *e, int64 later_id)
{
	onboarding_decide(d, OB_STALE,
					  "arrived after a later event of %s %s (delivery %lld); applied at its place in event order",
					  onboarding_table_names[e->table], onboarding_clip(e->key, 200), (long long) later_id);
}

/*
 * Fold the group in event order from nothing (a row with a checkpoint:
 * from it), then say which applied
 * deliveries are stale: they arrived after a later event of a row they
 * touch.  The detail names the first delivery after it in event order
 * that arrived before it (the bounded refold finds the same one).
 */
static void
group_fold(ObFold *f, List *ordered)
{
	ListCell   *lc,
			   *lt;

	foreach(lc, f->ents)
	{
		ObEntState *e = (ObEntState *) lfirst(lc);

		e->exists = false;
		if (e->has_ckpt)
			onboarding_checkpoint_start(f, e);
		e->later = palloc(Max(list_length(ordered), 1) * sizeof(int64));
		e->nlater = 0;
	}
	foreach(lc, ordered)
	{
		ObGroupItem *it = (ObGroupItem *) lfirst(lc);

		onboarding_fold_step(f, it->d, it->touches);
		if (!it->d->decided)
			it->d->outcome = OB_APPLIED;
	}
	for (int i = list_length(ordered) - 1; i >= 0; i--)
	{
		ObGroupItem *it = (ObGroupItem *) list_nth(ordered, i);
		ObDelivery *d = it->d;
		ObEntState *later = NULL;
		int64		later_id = 0;

		if (d->outcome == OB_DUPLICATE)
			continue;
		foreach(lt, it->touches)
		{
			ObEntState *e = ((ObTouch *) lfirst(lt))->ent;

			/*
			 * e->later: the later deliveries that arrived before every one
			 * between them and d, nearest on top (ids rise to the top); the
			 * first one below d's id is the nearest that arrived before d.
			 */
			while (e->nlater > 0 && e->later[e->nlater - 1] > d->id)
				e->nlater--;
			if (e->nlater > 0 && later == NULL)
			{
				later = e;
				later_id = e->later[e->nlater - 1];
			}
			e->later[e->nlater++] = d->id;
		}
		if (later != NULL && d->outcome == OB_APPLIED)
			onboarding_derive_stale(d, later, later_id);
	}
}

/* A delivery of a group whose fold a user's constraint or trigger refused on writing */
typedef struct GroupRefusal
{
	int64		id;
	char	   *why;
} GroupRefusal;

/*
 * Every delivery of a group, the one being inserted (late) included, in
 * arrival order, duplicates found, each placed in event order; f gets the
 * rows they touch.  refused: GroupRefusal *, deliveries left out.
 */
static List *
group_collect(Relation inbox, const ObInboxAtts *atts, ObDelivery *late, List *refused,
			  ObProvider provider, List *subjects, ObFold *f, HTAB *pool)
{
	List	   *items = group_scan(inbox, atts, provider, subjects, pool);
	ListCell   *lc,
			   *lr;

	foreach(lc, items)
	{
		ObGroupItem *it = (ObGroupItem *) lfirst(lc);

		onboarding_group_item_reset(it);
		/* refused on writing in an earlier attempt: out of the fold */
		foreach(lr, refused)
			if (((GroupRefusal *) lfirst(lr))->id == it->d->id && !it->d->decided)
				onboarding_decide(it->d, OB_REFUSED, "%s", ((GroupRefusal *) lfirst(lr))->why);
	}

	if (late != NULL)
	{
		ObGroupItem *it = palloc0(sizeof(ObGroupItem));

		it->d = late;
		items = lappend(items, it);
	}
	list_sort(items, item_id_cmp);
	group_dedupe(items);
	/* (an archived group's rows start from their checkpoints) */
	f->may_have_ckpt = onboarding_checkpoint_in_group(provider, subjects);
	group_place(f, items);
	return items;
}

/*
 * Gather a group and lock its rows.  The group is every delivery that can
 * touch its rows: those of its subjects, of the rows' keys (an override
 * names its entity by key), and of every subject the rows have seen; it
 * grows until that closes.  mode: OB_LOCK_NONE (dry run), OB_LOCK_WAIT, or
 * OB_LOCK_NOWAIT, which returns the first row another transaction holds
 * (else NULL).  *subjects grows with the group.
 */
ObEntState *
onboarding_group_gather(Relation inbox, const ObInboxAtts *atts, ObDelivery *late, List *refused,
			 ObProvider provider, List **subjects, ObLockMode mode, ObFold *f, List **items, HTAB *pool)
{
	for (;;)
	{
		ListCell   *lc,
				   *ls;
		bool		grew = false;

		memset(f, 0, sizeof(ObFold));
		f->provider = provider;
		*items = group_collect(inbox, atts, late, refused, provider, *subjects, f, pool);
		if (mode == OB_LOCK_NOWAIT)
		{
			ObEntState *blocked = onboarding_derive_lock_nowait(provider, list_copy(f->ents));

			if (blocked != NULL)
				return blocked;
		}
		else
			onboarding_derive_lock_rows(provider, list_copy(f->ents), mode == OB_LOCK_NONE);
		foreach(lc, f->ents)
		{
			ObEntState *e = (ObEntState *) lfirst(lc);

			grew |= onboarding_subjects_add(subjects, e->key);
			foreach(ls, onboarding_ent_subjects(e))
				grew |= onboarding_subjects_add(subjects, (const char *) lfirst(ls));
		}
		if (!grew)
			return NULL;
	}
}

/*
 * Which delivery a refusal on writing leaves out of a group's fold: the
 * one whose history row was refused (culprit), else the one being
 * inserted, else the latest arrival that applied.  Returns false when
 * there is none left to leave out.
 */
static bool
group_refuse(ObDelivery *late, List *ordered, const char *why, int64 culprit, List **refused)
{
	ListCell   *lc;
	ObGroupItem *newest = NULL;
	GroupRefusal *r;

	if (late != NULL && !late->decided && (culprit == 0 || culprit == late->id))
	{
		onboarding_decide(late, OB_REFUSED, "%s", why);
		return true;
	}
	foreach(lc, ordered)
	{
		ObGroupItem *it = (ObGroupItem *) lfirst(lc);

		if (it->stored == NULL || (it->d->outcome != OB_APPLIED && it->d->outcome != OB_STALE))
			continue;
		if (culprit != 0 ? it->d->id == culprit : (newest == NULL || it->d->id > newest->d->id))
			newest = it;
	}
	if (newest == NULL)
		return false;
	r = palloc(sizeof(GroupRefusal));
	r->id = newest->d->id;
	r->why = pstrdup(why);
	*refused = lappend(*refused, r);
	return true;
}

/*
 * What a group fold read, for rebuild(): how many stored deliveries and
 * which, the subjects it covered, and the subjects its deliveries have now that are not
 * among them (the rules moved them to another group, which must be folded
 * again too).
 */
static void
group_report(ObGroupReport *report, List *items, List *subjects)
{
	ListCell   *lc,
			   *ls;

	report->deliveries = 0;
	report->ids = palloc(Max(list_length(items), 1) * sizeof(int64));
	report->subjects = NIL;
	report->moved = NIL;
	foreach(lc, subjects)
		(void) onboarding_subjects_add(&report->subjects, (const char *) lfirst(lc));
	foreach(lc, items)
	{
		ObGroupItem *it = (ObGroupItem *) lfirst(lc);
		bool		covered = false;

		if (it->stored == NULL)
			continue;
		report->ids[report->deliveries++] = it->d->id;
		if (it->d->subject == NULL)
			continue;
		foreach(ls, report->subjects)
			covered |= strcmp((const char *) lfirst(ls), it->d->subject) == 0;
		if (!covered)
			(void) onboarding_subjects_add(&report->moved, it->d->subject);
	}
}

/*
 * Fold a group again (see onboarding_group_gather), the one being inserted
 * (late, may be NULL) included.  Deliveries that arrived while we waited for
 * the rows are read again.  Writes state, history (the rows' earlier history
 * is replaced) and the derived columns of the group's other deliveries where
 * they changed; a dry run writes nothing and only judges late.  report
 * (may be NULL) is told what was read.
 */
void
onboarding_group_derive(Relation inbox, const ObInboxAtts *atts, ObDelivery *late,
			 ObProvider provider, List *subjects, bool dry_run, HTAB *pool, ObGroupReport *report)
{
	List	   *refused = NIL;	/* GroupRefusal * */
	char	   *why = NULL;
	int64		culprit = 0;
	ObDelivery	late_prepared;	/* late as prepared, for each attempt */
	char	   *late_detail = NULL;

	if (pool == NULL)
		pool = onboarding_group_pool_create();
	if (late != NULL)
	{
		late_prepared = *late;
		late_detail = pstrdup(late->detail.data);
	}
	for (int attempt = 1; attempt <= OB_MAX_ATTEMPTS; attempt++)
	{
		ObFold		f;
		List	   *items;
		List	   *ordered = NIL;
		ListCell   *lc;
		bool		grew = false;

		/*
		 * Each attempt judges the delivery being inserted afresh (an earlier
		 * one may have called it stale), but for a refusal on writing.
		 */
		if (late != NULL && !(late->decided && late->outcome == OB_REFUSED))
			onboarding_delivery_reset(late, &late_prepared, late_detail);

		(void) onboarding_group_gather(inbox, atts, late, refused, provider, &subjects,
							dry_run ? OB_LOCK_NONE : OB_LOCK_WAIT, &f, &items, pool);

		/* deliveries committed while we waited for the rows: start again */
		if (!dry_run)
		{
			foreach(lc, group_scan(inbox, atts, provider, subjects, pool))
			{
				int64		id = ((ObGroupItem *) lfirst(lc))->d->id;
				ListCell   *li;
				bool		known = false;

				foreach(li, items)
					known |= (((ObGroupItem *) lfirst(li))->d->id == id);
				grew |= !known;
			}
			if (grew)
				continue;
		}

		foreach(lc, items)
		{
			ObGroupItem *it = (ObGroupItem *) lfirst(lc);

			if (it->touches != NIL)
				ordered = lappend(ordered, it);
		}
		list_sort(ordered, item_cmp);
		group_fold(&f, ordered);
		if (dry_run)
			return;

		/*
		 * State, and history: the rows' own, replaced by the fold's from its
		 * first change.  A write a user's foreign key or trigger refused
		 * leaves out the delivery being inserted, or in a replay the group's
		 * latest arrival that applied, and folds again.
		 */
		switch (onboarding_derive_write(&f, true, &why, &culprit))
		{
			case W_DONE:
				break;
			case W_RACED:
				continue;		/* a row another session created meanwhile */
			case W_REFUSED:
				if (!group_refuse(late, ordered, why, culprit, &refused))
					ereport(ERROR,
							(errcode(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION),
							 errmsg("the deliveries of %s subject \"%s\" derive a state that is refused",
									onboarding_provider_name(provider),
									onboarding_clip((const char *) linitial(subjects), 64)),
							 errdetail("%s", why),
							 errhint("A constraint or trigger added to a state table refuses what no single delivery of the group changed; drop or fix it.")));
				attempt--;		/* (not a race: each refusal leaves one out) */
				continue;
		}

		/* the other deliveries' outcomes, where the fold changed them */
		foreach(lc, items)
		{
			ObGroupItem *it = (ObGroupItem *) lfirst(lc);

			if (it->stored != NULL && !it->covered)
				onboarding_delivery_rewrite(it->d, it->stored, RelationGetDescr(inbox), atts);
		}
		if (report != NULL)
			group_report(report, items, subjects);
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not derive the deliveries of %s subject \"%s\" again",
					onboarding_provider_name(provider),
					onboarding_clip((const char *) linitial(subjects), 64)),
			 errdetail("Others delivered to it or created its rows %d times while it was derived.",
					   OB_MAX_ATTEMPTS)));
}

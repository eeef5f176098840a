/*-------------------------------------------------------------------------
 *
 * derive.c
 *		State as the fold of each entity's deliveries in event order: the
 *		incremental path, the rows read and written, the pipeline's way in.
 *
 * Event order (SPEC §6).  Deliveries are ordered by the provider's time;
 * at equal times by the transition graph (s before s' when s -> s' is
 * legal and s' -> s is not, else the order of the labels: rules.c ranks
 * them), then by the body's hash; never by arrival.  A delivery without a
 * time goes right after the latest event among the deliveries of its
 * entities that arrived before it, in arrival order.
 *
 * Folding, each delivery meets the state its entities have just before its
 * place (onboarding_fold_step):
 *
 *		no state yet				-> created in s
 *		s = s0						-> a refresh of the other fields
 *		s0 -> s legal				-> a transition, history row
 *		otherwise					-> illegal_transition, nothing changes
 *
 * The primary effects of a delivery decide its outcome; if one of them is
 * illegal nothing changes.  Consequences on other entities (a Celcoin check
 * moving its proposal, an approved Fitbank closure closing the account)
 * apply only when legal.  Fields take the value of the latest delivery in
 * event order that carries them.  A body with no time that repeats an
 * earlier one is a new occurrence when its entity has moved on since, a
 * duplicate otherwise.
 *
 * Two paths, one fold (fold.c).  A delivery that comes after the latest
 * event of every row it touches (last_event_at, or for one without a time,
 * an id beyond last_inbox_id) takes the incremental path, here: the rules
 * applied to the stored state, and the rows written back.  Any other
 * delivery is late: it is folded in at its place by the bounded refold
 * (window.c), or, where that cannot say, its group — every delivery with
 * the same provider and subject, which are all the deliveries that can
 * touch its rows — is folded again from nothing (group.c), as rebuild()
 * does for every group.  So live, late and replay can never diverge.
 * `stale` marks a delivery applied at its place that arrived after a later
 * event of its entity.
 *
 * The rows a delivery touches are locked all or none, in a fixed order
 * (lock.c).  A row that does not exist yet is created with its final
 * values by a speculative insertion; if another session created it
 * meanwhile, the delivery is derived again through its group.  This file
 * also reads and writes the rows a fold made (store.c underneath:
 * state rows, history, what a user added binding the writes), and
 * delivery.c reads and prepares each stored delivery a fold needs, and
 * rewrites its derived columns when the fold judged it anew.
 *
 * The pipeline's one way in is onboarding_process_delivery() (at the end):
 * prepare, dedupe, derive, for the inbox trigger, rebuild() and explain().
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

const char *const onboarding_table_names[OB_NTABLES] = {"account", "proposal", "document", "closure"};

static ObTableCols table_cols[OB_NTABLES];
static ObHistoryCols history_cols;

/* The table and status column an entity's status lives in. */
ObTable
onboarding_derive_table(ObEntity entity, int *col)
{
	*col = 0;
	switch (entity)
	{
		case OB_ACCOUNT:
			return OB_T_ACCOUNT;
		case OB_PROPOSAL:
			return OB_T_PROPOSAL;
		case OB_BACKGROUND_CHECK:
			*col = 1;
			return OB_T_PROPOSAL;
		case OB_DOCUMENTSCOPY:
			*col = 2;
			return OB_T_PROPOSAL;
		case OB_DOCUMENT:
			return OB_T_DOCUMENT;
		case OB_CLOSURE:
		default:
			return OB_T_CLOSURE;
	}
}

/* The entity of a table's status column (inverse of onboarding_derive_table). */
ObEntity
onboarding_derive_entity(ObTable table, int col)
{
	static const ObEntity map[OB_NTABLES][OB_MAX_STATUS_COLS] = {
		{OB_ACCOUNT}, {OB_PROPOSAL, OB_BACKGROUND_CHECK, OB_DOCUMENTSCOPY}, {OB_DOCUMENT}, {OB_CLOSURE}
	};

	return map[table][col];
}

/* The graph of a table's status column. */
ObGraph
onboarding_derive_graph(ObTable table, int col)
{
	return onboarding_entity_graph(onboarding_derive_entity(table, col));
}

/* 0-based position of a column of an open table. */
static int
derive_col(ObStore *s, const char *name)
{
	return onboarding_store_attnum(s, name) - 1;
}

/*
 * 0-based position of a column added after 0.1.0, or -1 while the schema
 * is still 0.1.0's (between installing the new library and ALTER
 * EXTENSION ... UPDATE).
 */
static int
derive_col_optional(ObStore *s, const char *name)
{
	TupleDesc	desc = onboarding_store_desc(s);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	return -1;
}

/* The open state table of a row target, its column positions resolved. */
ObStore *
onboarding_derive_open(ObTable which, ObTableCols **colsp)
{
	ObStore    *s = onboarding_store((ObStoreId) which);
	ObTableCols *cols = &table_cols[which];
	const ObStateTable *t = &onboarding_state_tables[which];

	*colsp = cols;
	if (cols->serial == onboarding_store_serial(s))
		return s;
	cols->natts = onboarding_store_desc(s)->natts;
	cols->provider = derive_col(s, "provider");
	cols->key = derive_col(s, t->keycol);
	for (int c = 0; c < t->nstatus; c++)
	{
		cols->status[c] = derive_col(s, t->statuscol[c]);
		cols->statustime[c] = t->statustime[c] ? derive_col(s, t->statustime[c]) : -1;
	}
	cols->provider_status = derive_col(s, "provider_status");
	for (int f = 0; f < t->nfields; f++)
		cols->fields[f] = derive_col(s, onboarding_field_names[t->fields[f]]);
	cols->first_event_at = derive_col(s, "first_event_at");
	cols->last_event_at = derive_col(s, "last_event_at");
	cols->last_inbox_id = derive_col(s, "last_inbox_id");
	cols->last_seen_id = derive_col(s, "last_seen_id");
	cols->last_received_at = derive_col_optional(s, "last_received_at");
	cols->subjects = derive_col_optional(s, "subjects");
	cols->flow = t->has_flow ? derive_col(s, "flow") : -1;
	if (cols->owned != NULL)
		pfree(cols->owned);
	cols->owned = MemoryContextAlloc(TopMemoryContext, cols->natts * sizeof(bool));
	for (int i = 0; i < cols->natts; i++)
		cols->owned[i] = onboarding_state_column(which,
												 NameStr(TupleDescAttr(onboarding_store_desc(s), i)->attname));
	cols->serial = onboarding_store_serial(s);
	return s;
}

/* onboarding.history, open, its column positions resolved. */
ObStore *
onboarding_derive_open_history(void)
{
	ObStore    *s = onboarding_store(OB_S_HISTORY);
	ObHistoryCols *cols = &history_cols;

	if (cols->serial == onboarding_store_serial(s))
		return s;
	cols->natts = onboarding_store_desc(s)->natts;
	cols->provider = derive_col(s, "provider");
	cols->entity = derive_col(s, "entity");
	cols->entity_key = derive_col(s, "entity_key");
	cols->from_status = derive_col(s, "from_status");
	cols->to_status = derive_col(s, "to_status");
	cols->event_at = derive_col(s, "event_at");
	cols->inbox_id = derive_col(s, "inbox_id");
	cols->reason = derive_col(s, "reason");
	cols->serial = onboarding_store_serial(s);
	return s;
}

/*
 * Write a row back: an update of the one found (or its deletion, when the
 * fold left it without a state), or a new row.  Returns false when a new
 * row lost a race with another session creating it.
 */
static bool
ent_write(ObEntState *e)
{
	ObTableCols *cols;
	ObStore    *s = onboarding_derive_open(e->table, &cols);

	if (e->in_table)
	{
		if (e->exists)
			onboarding_store_update(s, &e->row, e->values, e->nulls);
		else
		{
			onboarding_store_delete(s, &e->row, e->values);
			e->in_table = false;
		}
		return true;
	}
	if (!e->exists)
		return true;
	if (!onboarding_store_create(s, e->values, e->nulls, &e->row))
		return false;
	e->in_table = true;
	return true;
}

/*
 * The rows a replay derived (rebuild(): onboarding_derive_seen_begin() to
 * _end()), each by a 64-bit hash of table, provider and key, so that
 * rebuild() can delete the rows it did not derive instead of emptying the
 * tables (a user's foreign key may point at them).
 */
static HTAB *derive_seen = NULL;

/* The hash a row is seen by. */
static uint64
derive_seen_hash(int table, Oid provider, const char *key)
{
	uint64		h = hash_bytes_extended((const unsigned char *) key, strlen(key),
										((uint64) table << 32) | provider);

	return h;
}

/* Remember a row a replay derived. */
static void
derive_seen_add(ObProvider provider, ObEntState *e)
{
	uint64		h;

	if (derive_seen == NULL)
		return;
	h = derive_seen_hash(e->table, onboarding_provider_oid(provider), e->key);
	(void) hash_search(derive_seen, &h, HASH_ENTER, NULL);
}

/* Start remembering the rows a replay derives (in memory context cxt). */
void
onboarding_derive_seen_begin(MemoryContext cxt)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(uint64);
	ctl.hcxt = cxt;
	derive_seen = hash_create("onboarding rows derived", 1024, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Did the replay derive the row of state table (0 .. 3), provider and key? */
bool
onboarding_derive_seen(int table, Oid provider, const char *key)
{
	uint64		h = derive_seen_hash(table, provider, key);

	return derive_seen != NULL && hash_search(derive_seen, &h, HASH_FIND, NULL) != NULL;
}

/* Stop remembering. */
void
onboarding_derive_seen_end(void)
{
	if (derive_seen != NULL)
		hash_destroy(derive_seen);
	derive_seen = NULL;
}

/*
 * Write every row of a fold: new ones first, so that one another session
 * created meanwhile is found before anything else is written.  Returns
 * false (nothing written) in that case.
 */
bool
onboarding_fold_write_rows(ObFold *f)
{
	ListCell   *lc;
	List	   *stored = NIL;	/* rows in their table already: rewritten after */

	foreach(lc, f->ents)
	{
		ObEntState *e = (ObEntState *) lfirst(lc);

		if (e->in_table)
			stored = lappend(stored, e);
		else if (!ent_write(e))
			return false;
	}
	/* (a row created just above holds its values already: no second version) */
	foreach(lc, stored)
		(void) ent_write((ObEntState *) lfirst(lc));
	list_free(stored);
	foreach(lc, f->ents)
		derive_seen_add(f->provider, (ObEntState *) lfirst(lc));
	return true;
}

/*
 * The delivery whose history row is being written (0: none), so that a
 * refusal on writing it (a user's unique index on history, judged only on
 * writing) is laid on the delivery that made the row.
 */
static int64 writing_delivery = 0;

/* The values of a history row the fold made, for the history table. */
void
onboarding_hist_values(Oid provider, ObHistRow *h, Datum **valuesp, bool **nullsp)
{
	ObHistoryCols *cols = &history_cols;
	Datum	   *values = palloc(cols->natts * sizeof(Datum));
	bool	   *nulls = palloc(cols->natts * sizeof(bool));

	for (int i = 0; i < cols->natts; i++)
		nulls[i] = true;
#define SET(col, datum) (values[cols->col] = (datum), nulls[cols->col] = false)
	SET(provider, ObjectIdGetDatum(provider));
	SET(entity, CStringGetTextDatum(onboarding_entity_names[h->entity]));
	SET(entity_key, CStringGetTextDatum(h->key));
	if (h->from)
		SET(from_status, CStringGetTextDatum(h->from));
	SET(to_status, CStringGetTextDatum(h->to));
	if (h->has_at)
		SET(event_at, TimestampTzGetDatum(h->at));
	SET(inbox_id, Int64GetDatum(h->inbox_id));
	if (h->reason)
		SET(reason, CStringGetTextDatum(h->reason));
#undef SET
	*valuesp = values;
	*nullsp = nulls;
}

/* Append the history rows a fold made, in the order it made them. */
static void
fold_write_history(ObFold *f)
{
	ListCell   *lc;
	ObStore    *s;
	Oid			provider = onboarding_provider_oid(f->provider);

	if (f->history == NIL)
		return;
	s = onboarding_derive_open_history();
	foreach(lc, f->history)
	{
		Datum	   *values;
		bool	   *nulls;

		onboarding_hist_values(provider, (ObHistRow *) lfirst(lc), &values, &nulls);
		writing_delivery = ((ObHistRow *) lfirst(lc))->inbox_id;
		onboarding_store_append(s, values, nulls);
		writing_delivery = 0;
	}
	f->history = NIL;
}

/*
 * A group fold's history: each of its rows' status columns gets the
 * fold's rows in event order, keeping the stored ones that begin it
 * unchanged (a late delivery changes history from its place on).
 */
static void
group_write_history(ObFold *f)
{
	ListCell   *lc,
			   *lh;
	ObStore    *s = onboarding_derive_open_history();
	Oid			provider = onboarding_provider_oid(f->provider);

	foreach(lc, f->ents)
	{
		ObEntState *e = (ObEntState *) lfirst(lc);

		for (int c = 0; c < onboarding_state_tables[e->table].nstatus; c++)
		{
			ObEntity	entity = onboarding_derive_entity(e->table, c);
			int			n = 0;
			int			kept;
			Datum	  **values = palloc(Max(list_length(f->history), 1) * sizeof(Datum *));
			bool	  **nulls = palloc(Max(list_length(f->history), 1) * sizeof(bool *));

			foreach(lh, f->history)
			{
				ObHistRow  *h = (ObHistRow *) lfirst(lh);

				if (h->entity == entity && strcmp(h->key, e->key) == 0)
				{
					onboarding_hist_values(provider, h, &values[n], &nulls[n]);
					n++;
				}
			}
			kept = onboarding_store_history_keep(provider, onboarding_entity_names[entity],
												 e->key, n, values, nulls);
			for (int i = kept; i < n; i++)
			{
				writing_delivery = DatumGetInt64(values[i][history_cols.inbox_id]);
				onboarding_store_append(s, values[i], nulls[i]);
			}
			writing_delivery = 0;
		}
	}
	f->history = NIL;
}

/* Does a fold write a table a user added to (bind.c)? */
bool
onboarding_fold_bound(ObFold *f)
{
	ListCell   *lc;

	if (onboarding_store_bind(onboarding_derive_open_history()) != NULL)
		return true;
	foreach(lc, f->ents)
	{
		ObTableCols *cols;

		if (onboarding_store_bind(onboarding_derive_open(((ObEntState *) lfirst(lc))->table, &cols)) != NULL)
			return true;
	}
	return false;
}

/* Write a fold's rows and history (group: a group fold's, which replaces history). */
static bool
fold_write_all(ObFold *f, bool group)
{
	if (!onboarding_fold_write_rows(f))
		return false;
	if (group)
		group_write_history(f);
	else
		fold_write_history(f);
	return true;
}

/*
 * Write what a fold made.  When a user added to one of the tables it writes,
 * the writes go through the executor (store.c, bind.c) in a subtransaction of
 * their own, their AFTER triggers fired at the end; a constraint or trigger
 * that refuses them (an integrity constraint violation, class 23, or a
 * trigger's RAISE EXCEPTION, P0001) rolls them back, *why says what refused,
 * and *culprit which delivery's history row was being written then (0: a state
 * row).  A unique violation of a state table's primary key is another session
 * that created the row first (W_RACED). Any other error is raised.
 */
ObWriteResult
onboarding_derive_write(ObFold *f, bool group, char **why, int64 *culprit)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ObBindBracket br;
	volatile ObWriteResult result = W_DONE;

	if (!onboarding_fold_bound(f))
		return fold_write_all(f, group) ? W_DONE : W_RACED;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		onboarding_bind_begin(&br);
		if (fold_write_all(f, group))
			onboarding_store_bracket_end(&br);
		else
		{
			onboarding_bind_abort(&br);
			result = W_RACED;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		onboarding_store_clear_bound();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		onboarding_bind_abort(&br);
		*culprit = writing_delivery;
		writing_delivery = 0;
		if (edata->sqlerrcode == ERRCODE_UNIQUE_VIOLATION &&
			onboarding_store_is_primary_key(edata->table_name, edata->constraint_name))
			return W_RACED;
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION &&
			edata->sqlerrcode != ERRCODE_RAISE_EXCEPTION)
			ReThrowError(edata);
		*why = psprintf("refused on writing: %s%s%s", edata->message,
						edata->detail ? " (" : "", edata->detail ? edata->detail : "");
		if (edata->detail)
			*why = psprintf("%s)", *why);
		FreeErrorData(edata);
		return W_REFUSED;
	}
	PG_END_TRY();
	if (result == W_DONE)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return result;
}

/* ---------------------------------------------------------------------
 * The incremental path
 * ---------------------------------------------------------------------
 */

/* Does the delivery come after the latest event of a row it touches? */
static bool
derive_in_order(ObDelivery *d, ObEntState *e)
{
	ObTableCols *cols;

	if (!e->in_table)
		return true;
	(void) onboarding_derive_open(e->table, &cols);

	/*
	 * Arrival is the inbox id: a delivery processed after one that arrived
	 * later (two sessions) may not simply follow it, since a delivery
	 * without a time is placed among those that arrived before it.
	 */
	if (!e->nulls[cols->last_inbox_id] && d->id <= DatumGetInt64(e->values[cols->last_inbox_id]))
		return false;
	if (d->has_event_at)
		return e->nulls[cols->last_event_at] ||
			d->event_at > DatumGetTimestampTz(e->values[cols->last_event_at]);
	return true;
}

/*
 * Is d late: placed before what one of its rows has seen, or creating a
 * row while a delivery of its group is placed after it?
 */
static bool
derive_late(ObDelivery *d, ObFold *f)
{
	ListCell   *lc;
	bool		creates = false;

	foreach(lc, f->ents)
	{
		ObEntState *e = (ObEntState *) lfirst(lc);

		if (!derive_in_order(d, e))
			return true;
		creates |= !e->in_table;
	}
	return creates && onboarding_window_later(d);
}

/* Where a late delivery's group starts: its subject, its rows' keys and subjects. */
List *
onboarding_derive_subjects(ObDelivery *d, ObFold *f)
{
	List	   *subjects = NIL;
	ListCell   *lc,
			   *ls;

	(void) onboarding_subjects_add(&subjects, d->subject);
	foreach(lc, f->ents)
	{
		ObEntState *e = (ObEntState *) lfirst(lc);

		(void) onboarding_subjects_add(&subjects, e->key);
		foreach(ls, onboarding_ent_subjects(e))
			(void) onboarding_subjects_add(&subjects, (const char *) lfirst(ls));
	}
	return subjects;
}

/*
 * The rows of a delivery, for a transaction that holds none yet: all or none
 * (see onboarding_derive_lock_rows) — and when the delivery turns out late,
 * the rows of its whole group in the same attempt, so that a single delivery
 * never waits holding a row, on the late path either.  Returns whether the
 * delivery is late; the group's deliveries it read are left in pool.
 */
static bool
derive_lock_fresh(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, ObFold *f, HTAB *pool,
				  ObWindow *w)
{
	for (;;)
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		ObEntState *volatile blocked = NULL;
		volatile bool late = false;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			blocked = onboarding_derive_lock_nowait(d->provider, list_copy(f->ents));
			if (blocked == NULL)
			{
				late = derive_late(d, f);
				/* late: its window if that says it all, else its group's rows too */
				if (late && !onboarding_window_plan(inbox, atts, d, f, pool, w))
				{
					ObFold		g;
					List	   *items;
					List	   *subjects = onboarding_derive_subjects(d, f);

					blocked = onboarding_group_gather(inbox, atts, d, NIL, d->provider, &subjects,
										   OB_LOCK_NOWAIT, &g, &items, pool);
				}
			}
		}
		PG_CATCH();
		{
			onboarding_derive_subxact_rethrow(cxt, owner);
		}
		PG_END_TRY();
		if (blocked == NULL)
		{
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			return late;
		}
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		CHECK_FOR_INTERRUPTS();
		/* wait until whoever holds it is done, then let go of it again */
		(void) onboarding_derive_lock_attempt(d->provider, list_make1(blocked), OB_LOCK_WAIT, false);
	}
}

/*
 * Derive state from a classified delivery.  Sets d->outcome (and
 * d->decided when not applied).  A dry run (explain) reads without locking
 * and writes nothing.
 */
void
onboarding_derive(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, bool dry_run)
{
	ObFold		f = {0};
	List	   *touches;
	ListCell   *lc;
	bool		late = false;
	HTAB	   *pool = NULL;
	char	   *why = NULL;
	int64		culprit = 0;
	ObWindow	w = {0};

	Assert(d->effects != NIL);
	f.provider = d->provider;
	onboarding_store_begin();
	touches = onboarding_fold_touches(&f, d);
	if (!dry_run && !onboarding_store_holds_rows())
	{
		pool = onboarding_group_pool_create();
		late = derive_lock_fresh(inbox, atts, d, &f, pool, &w);
	}
	else
	{
		onboarding_derive_lock_rows(d->provider, list_copy(f.ents), dry_run);
		late = derive_late(d, &f);
		if (late && !dry_run)
		{
			pool = onboarding_group_pool_create();
			(void) onboarding_window_plan(inbox, atts, d, &f, pool, &w);
		}
	}
	if (late)
	{
		/* what its arrival changes, or its whole group */
		if (!w.ready || !onboarding_window_write(inbox, atts, d, &w))
			onboarding_group_derive(inbox, atts, d, d->provider, onboarding_derive_subjects(d, &f), dry_run, pool, NULL);
		return;
	}

	/* its place: its time, or the latest of its rows' (it comes right after) */
	d->has_order_at = d->has_event_at;
	d->order_at = d->event_at;
	if (!d->has_event_at)
		foreach(lc, f.ents)
		{
			ObEntState *e = (ObEntState *) lfirst(lc);
			ObTableCols *cols;

			(void) onboarding_derive_open(e->table, &cols);
			if (e->in_table && !e->nulls[cols->last_event_at] &&
				(!d->has_order_at || DatumGetTimestampTz(e->values[cols->last_event_at]) > d->order_at))
			{
				d->order_at = DatumGetTimestampTz(e->values[cols->last_event_at]);
				d->has_order_at = true;
			}
		}
	onboarding_fold_step(&f, d, touches);
	if (dry_run || d->outcome == OB_DUPLICATE)
		return;
	switch (onboarding_derive_write(&f, false, &why, &culprit))
	{
		case W_DONE:
			break;
		case W_RACED:
			/* a new row another session created meanwhile: the long way */
			d->decided = false;
			d->outcome = OB_APPLIED;
			d->duplicate_of = 0;
			onboarding_group_derive(inbox, atts, d, d->provider, onboarding_derive_subjects(d, &f), false, pool, NULL);
			break;
		case W_REFUSED:
			d->decided = false;
			onboarding_decide(d, OB_REFUSED, "%s", why);
			break;
	}
}

/*
 * rebuild(): fold one group again over the rows it derived before; report
 * (may be NULL) says what it read.
 */
void
onboarding_derive_group(Relation inbox, const ObInboxAtts *atts, ObProvider provider,
						const char *subject, ObGroupReport *report)
{
	onboarding_store_begin();
	onboarding_group_derive(inbox, atts, NULL, provider, list_make1(pstrdup(subject)), false, NULL,
							report);
}

/*
 * Run the pipeline on one delivery: prepare, dedupe, derive.  On return
 * d->outcome, d->detail and the detected columns are set and state has
 * been derived.
 *
 * Live processing (the trigger), replay (rebuild()) and the dry run
 * (explain()) all come through here, so that every check runs alike for
 * the three; they differ only in how a duplicate is found (live: the
 * inbox's hash index, under the hash lock; replay: original, the first
 * delivery with the same body, which the caller knows; dry run: the index,
 * without a lock) and in what derivation does: live and dry run derive
 * (the dry run writes nothing); replay stops before, since rebuild()
 * folds each group of deliveries afterwards (onboarding_derive_group).
 *
 * A body that repeats an earlier one is a duplicate, except when it has no
 * event time of its own: then it may be a new occurrence of a status that
 * recurs (providers that send no time send the same body again), which
 * only derivation can tell (d->duplicate_candidate).
 */
void
onboarding_process_delivery(Relation inbox, const ObInboxAtts *atts, ObDelivery *d,
							text *raw, ObRunMode mode, int64 original)
{
	bool		going = onboarding_prepare_delivery(d, raw);

	if (d->payload == NULL)
		return;
	d->body_hash = onboarding_dedupe_hash(d->payload);
	if (mode != OB_RUN_REPLAY)
		original = onboarding_dedupe_find(atts, d, mode == OB_RUN_LIVE);
	if (original != 0 && original != d->id)
	{
		if (going && !d->has_event_at)
			d->duplicate_candidate = original;
		else
		{
			onboarding_mark_duplicate(d, original);
			/*
			 * A duplicate sorts after its original (rebuild() takes the first
			 * id); not a row logical replication applies, whose id is the
			 * publisher's (README, "Replicas").
			 */
			if (mode == OB_RUN_LIVE && original > d->id &&
				SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA)
				d->id = onboarding_delivery_new_id();
			return;
		}
	}
	if (!going || mode == OB_RUN_REPLAY)
		return;
	onboarding_derive(inbox, atts, d, mode == OB_RUN_DRY);
	if (!d->decided)
		d->outcome = OB_APPLIED;
}

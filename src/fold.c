/*-------------------------------------------------------------------------
 *
 * fold.c
 *		The fold rules: one delivery folded onto the state of the rows it
 *		touches, at its place in event order.
 *
 * Rules only: no locks, no row read or written (the state tables are opened
 * for their column positions, nothing else).  A fold (ObFold) holds the rows
 * it knows (ObEntState, values as their table's columns);
 * onboarding_fold_touches says which rows a delivery's effects touch (adding
 * those the fold does not know yet, empty), and onboarding_fold_step judges
 * each status column by SPEC §6 (the table in derive.c's header), applies the
 * legal ones with their fields and bookkeeping, and makes the history rows. 
 * The incremental path (derive.c), the group fold (group.c) and the bounded
 * refold (window.c) all fold through here, so the three can never judge a
 * delivery otherwise.  The suite `fold` tests these rules on their own,
 * through explain().
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

/* The verdict of §6 for one status column */
typedef enum Verdict
{
	V_CREATE,					/* first status of the row or column */
	V_REFRESH,					/* same status: other fields only */
	V_CHANGE,					/* legal transition */
	V_ILLEGAL
} Verdict;

static const char *const verdict_names[] = {"create", "refresh", "change", "illegal"};

/* The row of (table, key) the fold knows, added when new. */
static ObEntState *
fold_ent(ObFold *f, ObTable table, const char *key)
{
	ListCell   *lc;
	ObEntState *e;
	ObTableCols *cols;

	foreach(lc, f->ents)
	{
		e = (ObEntState *) lfirst(lc);
		if (e->table == table && strcmp(e->key, key) == 0)
			return e;
	}
	(void) onboarding_derive_open(table, &cols);
	e = palloc0(sizeof(ObEntState));
	e->table = table;
	e->key = pstrdup(key);
	e->values = palloc0(cols->natts * sizeof(Datum));
	e->nulls = palloc(cols->natts * sizeof(bool));
	memset(e->nulls, true, cols->natts * sizeof(bool));
	ItemPointerSetInvalid(&e->row.tid);
	f->ents = lappend(f->ents, e);
	return e;
}

/* The rows a delivery touches, each with the effects on its columns. */
List *
onboarding_fold_touches(ObFold *f, ObDelivery *d)
{
	List	   *touches = NIL;
	ListCell   *lc,
			   *lt;

	foreach(lc, d->effects)
	{
		ObEffect   *e = (ObEffect *) lfirst(lc);
		int			col;
		ObTable		table = onboarding_derive_table(e->entity, &col);
		ObTouch    *t = NULL;

		foreach(lt, touches)
		{
			ObTouch    *x = (ObTouch *) lfirst(lt);

			if (x->ent->table == table && strcmp(x->ent->key, e->key) == 0)
				t = x;
		}
		if (t == NULL)
		{
			t = palloc0(sizeof(ObTouch));
			t->ent = fold_ent(f, table, e->key);
			touches = lappend(touches, t);
		}
		/* the first (primary) effect on a column wins */
		if (t->effect[col] == NULL)
			t->effect[col] = e;
	}
	return touches;
}

/* The current status of a column of a row, or NULL. */
static const char *
ent_status(ObEntState *e, int col)
{
	ObTableCols *cols;
	int			st;

	if (!e->exists)
		return NULL;
	(void) onboarding_derive_open(e->table, &cols);
	st = cols->status[col];
	if (e->nulls[st])
		return NULL;
	return onboarding_status_from_oid(onboarding_derive_graph(e->table, col), DatumGetObjectId(e->values[st]));
}

/* SQL's LEAST/GREATEST of two nullable times (NULLs ignored). */
void
onboarding_derive_bound(Datum *value, bool *isnull, bool has_t, TimestampTz t, bool greatest)
{
	if (!has_t)
		return;
	if (*isnull || (greatest ? t > DatumGetTimestampTz(*value) : t < DatumGetTimestampTz(*value)))
		*value = TimestampTzGetDatum(t);
	*isnull = false;
}

/* Add s to a list of distinct strings; true when it was not there yet. */
bool
onboarding_subjects_add(List **list, const char *s)
{
	ListCell   *lc;

	if (s == NULL)
		return false;
	foreach(lc, *list)
		if (strcmp((const char *) lfirst(lc), s) == 0)
			return false;
	*list = lappend(*list, pstrdup(s));
	return true;
}

/* The subjects of the deliveries that touched a row (its subjects column). */
List *
onboarding_ent_subjects(ObEntState *e)
{
	ObTableCols *cols;
	List	   *out = NIL;
	Datum	   *elems;
	bool	   *enulls;
	int			n;

	(void) onboarding_derive_open(e->table, &cols);
	if (cols->subjects < 0 || e->nulls[cols->subjects])
		return NIL;
	deconstruct_array(DatumGetArrayTypeP(e->values[cols->subjects]), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &enulls, &n);
	for (int i = 0; i < n; i++)
		if (!enulls[i])
			(void) onboarding_subjects_add(&out, TextDatumGetCString(elems[i]));
	return out;
}

/*
 * A row's subjects (a sorted text[], or (Datum) 0 for NULL) with one more:
 * the same array when it holds it already.  Kept sorted, so that the same
 * set of deliveries writes the same value whatever their order.  Also the
 * state tables' update trigger keeps them (state.c).
 */
Datum
onboarding_subjects_with(Datum current, const char *subject)
{
	Datum	   *elems = NULL;
	bool	   *enulls;
	int			n = 0;
	Datum	   *out;
	int			k = 0;
	bool		placed = false;

	if (current != (Datum) 0)
		deconstruct_array(DatumGetArrayTypeP(current), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &enulls, &n);
	out = palloc((n + 1) * sizeof(Datum));
	for (int i = 0; i < n; i++)
	{
		text	   *t = DatumGetTextPP(elems[i]);
		int			len = VARSIZE_ANY_EXHDR(t);
		int			c = strncmp(VARDATA_ANY(t), subject, len);

		if (c == 0)
			c = (subject[len] == '\0') ? 0 : -1;
		if (c == 0)
			return current;
		if (c > 0 && !placed)
		{
			out[k++] = CStringGetTextDatum(subject);
			placed = true;
		}
		out[k++] = elems[i];
	}
	if (!placed)
		out[k++] = CStringGetTextDatum(subject);
	return PointerGetDatum(construct_array(out, k, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Remember on a row the subject of a delivery that touches it: a late
 * delivery folds again every delivery of every subject its rows name (one,
 * unless a delivery keys one entity by another's id, as a Celcoin creation
 * whose onboardingId is not its proposalId).
 */
void
onboarding_ent_add_subject(ObEntState *e, const char *subject)
{
	ObTableCols *cols;

	(void) onboarding_derive_open(e->table, &cols);
	if (cols->subjects < 0 || subject == NULL)
		return;
	e->values[cols->subjects] =
		onboarding_subjects_with(e->nulls[cols->subjects] ? (Datum) 0 : e->values[cols->subjects],
								 subject);
	e->nulls[cols->subjects] = false;
}

/*
 * What every delivery that touches a row leaves on it, whatever its
 * verdict: the span of its events (a delivery without a time counts at the
 * time of the event it follows), when it was last received, and which
 * delivery is the latest in event order (the fold meets them in that
 * order, so the one at hand).
 */
static void
fold_bookkeep(ObDelivery *d, ObEntState *e)
{
	ObTableCols *cols;

	(void) onboarding_derive_open(e->table, &cols);
	onboarding_derive_bound(&e->values[cols->first_event_at], &e->nulls[cols->first_event_at],
				 d->has_order_at, d->order_at, false);
	onboarding_derive_bound(&e->values[cols->last_event_at], &e->nulls[cols->last_event_at],
				 d->has_order_at, d->order_at, true);
	if (cols->last_received_at >= 0)
		onboarding_derive_bound(&e->values[cols->last_received_at], &e->nulls[cols->last_received_at],
					 d->has_received_at, d->received_at, true);
	e->values[cols->last_inbox_id] = e->values[cols->last_seen_id] = Int64GetDatum(d->id);
	e->nulls[cols->last_inbox_id] = e->nulls[cols->last_seen_id] = false;
	onboarding_ent_add_subject(e, d->subject);
}

/* The verdict of §6 for one effect at its place. */
static Verdict
fold_verdict(ObDelivery *d, ObTouch *t, int col, ObEffect *e)
{
	const char *s0 = ent_status(t->ent, col);

	if (s0 == NULL)
		return V_CREATE;
	if (strcmp(s0, e->status) == 0)
		return V_REFRESH;
	if (d->forced)
		return V_CHANGE;
	if (!onboarding_transition_legal(e->entity, d->provider, s0, e->status))
		return V_ILLEGAL;

	/*
	 * A move with a guard (onboarding.status_guard) is made only from the
	 * states it names: a Celcoin check starts its proposal's analysis only
	 * from created or pending; later stages stay where they are.
	 */
	if (e->only_from != NULL && !onboarding_status_in(s0, e->only_from))
		return V_ILLEGAL;
	return V_CHANGE;
}

/* Write the statuses, times and fields an applied delivery brings to a row. */
static void
fold_apply(ObFold *f, ObDelivery *d, ObTouch *t)
{
	ObEntState *e = t->ent;
	const ObStateTable *def = &onboarding_state_tables[e->table];
	ObTableCols *cols;
	ObStore    *s;
	const char *provider_status = NULL;
	int			flow = 0;
	bool		checks_unset;

	s = onboarding_derive_open(e->table, &cols);
	if (!e->exists)
	{
		/*
		 * The pipeline's columns start from nothing; a user's keep what the
		 * row has (a late delivery folds a stored row again), and a row the
		 * pipeline creates gets their defaults.
		 */
		for (int i = 0; i < cols->natts; i++)
			if (cols->owned[i])
				e->nulls[i] = true;
		if (!e->in_table && onboarding_store_bind(s) != NULL)
			onboarding_bind_defaults(onboarding_store_bind(s), e->values, e->nulls);
		e->values[cols->provider] = ObjectIdGetDatum(onboarding_provider_oid(d->provider));
		e->nulls[cols->provider] = false;
		e->values[cols->key] = CStringGetTextDatum(e->key);
		e->nulls[cols->key] = false;
	}
	checks_unset = def->nstatus > 1 && e->nulls[cols->status[1]] && e->nulls[cols->status[2]];

	for (int c = 0; c < def->nstatus; c++)
	{
		ObEffect   *ef = t->effect[c];

		if (ef != NULL && ef->primary && !d->forced && c == 0)
			provider_status = ef->label ? ef->label : ef->status_raw;
		if (t->next[c] == NULL)
			continue;
		if (t->changed[c])
		{
			ObHistRow  *h = palloc0(sizeof(ObHistRow));

			if (c > 0)
				flow = c;		/* 1: background check first, 2: documentscopy first */
			h->entity = onboarding_derive_entity(e->table, c);
			h->key = e->key;
			h->from = ent_status(e, c);
			h->to = t->next[c];
			h->has_at = d->has_event_at;
			h->at = d->event_at;
			h->inbox_id = d->id;
			h->reason = d->forced && ef && strcmp(d->event_type, "force_status") == 0 &&
				ef->carried[OB_F_REASON] == OB_CARRIED ?
				TextDatumGetCString(ef->values[OB_F_REASON]) : NULL;
			f->history = lappend(f->history, h);
		}
		e->values[cols->status[c]] = ObjectIdGetDatum(onboarding_status_oid(onboarding_derive_graph(e->table, c),
																			t->next[c]));
		e->nulls[cols->status[c]] = false;
		if (cols->statustime[c] >= 0)
			onboarding_derive_bound(&e->values[cols->statustime[c]], &e->nulls[cols->statustime[c]],
						 d->has_event_at, d->event_at, true);
	}
	if (provider_status != NULL)
	{
		e->values[cols->provider_status] = CStringGetTextDatum(provider_status);
		e->nulls[cols->provider_status] = false;
		if (e->set != NULL)
			e->set[cols->provider_status] = true;
	}

	/* other fields: the first effect on this row that carries one provides it */
	for (int fi = 0; fi < def->nfields; fi++)
	{
		ObField		field = def->fields[fi];
		ObEffect   *src = NULL;

		for (int c = 0; c < def->nstatus && src == NULL; c++)
			if (t->effect[c] != NULL && t->effect[c]->carried[field] != OB_NOT_CARRIED)
				src = t->effect[c];
		if (src == NULL)
			continue;
		/* typed by extraction; OB_CARRIED_NULL: an operator emptied it */
		e->nulls[cols->fields[fi]] = (src->carried[field] == OB_CARRIED_NULL);
		if (src->carried[field] == OB_CARRIED)
			e->values[cols->fields[fi]] = src->values[field];
		if (e->set != NULL)
			e->set[cols->fields[fi]] = true;
	}

	/* proposal.flow: set once, by the first check in event order */
	if (cols->flow >= 0 && flow > 0 && e->nulls[cols->flow] && checks_unset)
	{
		e->values[cols->flow] = Int16GetDatum((int16) flow);
		e->nulls[cols->flow] = false;
	}
	e->exists = true;
}

/* A row as it was before a step, to put back if the step is refused */
typedef struct EntUndo
{
	ObEntState *ent;
	bool		exists;
	Datum	   *values;
	bool	   *nulls;
	int			history;		/* length of the fold's history then */
} EntUndo;

/*
 * Before a step that touches a bound table (one a user added to): keep
 * what its rows are (EntUndo *), to undo the step if a user's constraint
 * refuses it.  NIL when no touched table is bound.
 */
static List *
fold_undo_save(ObFold *f, List *touches)
{
	ListCell   *lc;
	List	   *undo = NIL;
	bool		bound = false;

	foreach(lc, touches)
	{
		ObTableCols *cols;

		bound |= onboarding_store_bind(onboarding_derive_open(((ObTouch *) lfirst(lc))->ent->table, &cols)) != NULL;
	}
	if (!bound && (touches == NIL || onboarding_store_bind(onboarding_derive_open_history()) == NULL))
		return NIL;
	foreach(lc, touches)
	{
		ObEntState *e = ((ObTouch *) lfirst(lc))->ent;
		ObTableCols *cols;
		EntUndo    *u = palloc(sizeof(EntUndo));

		(void) onboarding_derive_open(e->table, &cols);
		u->ent = e;
		u->exists = e->exists;
		u->values = palloc(cols->natts * sizeof(Datum));
		u->nulls = palloc(cols->natts * sizeof(bool));
		memcpy(u->values, e->values, cols->natts * sizeof(Datum));
		memcpy(u->nulls, e->nulls, cols->natts * sizeof(bool));
		u->history = list_length(f->history);
		undo = lappend(undo, u);
	}
	return undo;
}

/* Put the rows of a refused step back as fold_undo_save() kept them. */
static void
fold_undo(ObFold *f, List *undo)
{
	ListCell   *lc;

	foreach(lc, undo)
	{
		EntUndo    *u = (EntUndo *) lfirst(lc);
		ObTableCols *cols;

		(void) onboarding_derive_open(u->ent->table, &cols);
		u->ent->exists = u->exists;
		memcpy(u->ent->values, u->values, cols->natts * sizeof(Datum));
		memcpy(u->ent->nulls, u->nulls, cols->natts * sizeof(bool));
		f->history = list_truncate(f->history, u->history);
	}
}

/*
 * Would a user's constraint refuse one of the rows a step made (bind.c)?
 * Returns why, or NULL.
 */
static char *
fold_judge(List *touches)
{
	ListCell   *lc;

	foreach(lc, touches)
	{
		ObEntState *e = ((ObTouch *) lfirst(lc))->ent;
		ObTableCols *cols;
		ObBind	   *b = onboarding_store_bind(onboarding_derive_open(e->table, &cols));
		char	   *why;

		if (b == NULL || !e->exists)
			continue;
		why = onboarding_bind_judge(b, e->values, e->nulls, e->in_table ? &e->row.tid : NULL, true);
		if (why != NULL)
			return psprintf("%s %s: %s", onboarding_table_names[e->table], onboarding_clip(e->key, 200), why);
	}
	return NULL;
}

/*
 * Would a user's constraint on history refuse one of the history rows the
 * fold made from the first'th on?  Returns why, or NULL.
 */
static char *
fold_judge_history(ObFold *f, int first)
{
	ObBind	   *b = onboarding_store_bind(onboarding_derive_open_history());
	Oid			provider = onboarding_provider_oid(f->provider);

	if (b == NULL)
		return NULL;
	for (int i = first; i < list_length(f->history); i++)
	{
		ObHistRow  *h = (ObHistRow *) list_nth(f->history, i);
		Datum	   *values;
		bool	   *nulls;
		char	   *why;

		onboarding_hist_values(provider, h, &values, &nulls);
		onboarding_bind_defaults(b, values, nulls);
		why = onboarding_bind_judge(b, values, nulls, NULL, false);
		if (why != NULL)
			return psprintf("%s %s: %s", onboarding_entity_names[h->entity],
							onboarding_clip(h->key, 200), why);
	}
	return NULL;
}

/*
 * One step of the fold: the delivery meets the state its rows have just
 * before its place.  Decides it as a duplicate (a time-less repeat whose
 * entity has not moved on) or an illegal transition, or applies it (the
 * outcome then stays undecided: applied, or stale for the caller to say);
 * records each effect's verdict for explain().
 */
void
onboarding_fold_step(ObFold *f, ObDelivery *d, List *touches)
{
	ListCell   *lc;
	ObTouch    *bad = NULL;
	int			badcol = 0;
	List	   *undo;
	char	   *why;

	if (d->duplicate_candidate != 0)
	{
		ObEffect   *first = (ObEffect *) linitial(d->effects);
		int			col;
		ObTable		table = onboarding_derive_table(first->entity, &col);

		foreach(lc, touches)
		{
			ObTouch    *t = (ObTouch *) lfirst(lc);
			const char *s0;

			if (t->ent->table != table || strcmp(t->ent->key, first->key) != 0)
				continue;
			s0 = ent_status(t->ent, col);
			if (s0 != NULL && strcmp(s0, first->status) == 0)
			{
				onboarding_mark_duplicate(d, d->duplicate_candidate);
				return;
			}
		}
	}

	foreach(lc, touches)
	{
		ObTouch    *t = (ObTouch *) lfirst(lc);

		for (int c = 0; c < onboarding_state_tables[t->ent->table].nstatus; c++)
		{
			ObEffect   *e = t->effect[c];
			Verdict		v;

			t->next[c] = NULL;
			t->changed[c] = false;
			if (e == NULL)
				continue;
			v = fold_verdict(d, t, c, e);
			e->from = ent_status(t->ent, c);
			e->verdict = verdict_names[v];
			if (v == V_ILLEGAL)
			{
				if (!e->primary)
					e->verdict = "skipped";
				else if (bad == NULL)
				{
					bad = t;
					badcol = c;
				}
				continue;
			}
			t->next[c] = e->status; /* a refresh rewrites it, and its time */
			t->changed[c] = (v != V_REFRESH);
		}
	}

	if (bad != NULL)
	{
		ObEffect   *e = bad->effect[badcol];

		onboarding_decide(d, OB_ILLEGAL, "%s %s: %s -> %s is not a legal transition",
						  onboarding_entity_names[e->entity], onboarding_clip(bad->ent->key, 200),
						  ent_status(bad->ent, badcol), e->status);
		foreach(lc, touches)
		{
			ObTouch    *t = (ObTouch *) lfirst(lc);

			if (t->ent->exists)
				fold_bookkeep(d, t->ent);
		}
		return;
	}
	undo = fold_undo_save(f, touches);
	foreach(lc, touches)
	{
		ObTouch    *t = (ObTouch *) lfirst(lc);
		bool		any = false;

		for (int c = 0; c < onboarding_state_tables[t->ent->table].nstatus; c++)
			any |= (t->next[c] != NULL);
		if (any)
			fold_apply(f, d, t);
		if (t->ent->exists)
			fold_bookkeep(d, t->ent);
	}

	/*
	 * A user's constraint on a row the step made refuses the delivery: the
	 * fold goes on as if it had not been applied (as for an illegal one).
	 */
	if (undo != NULL &&
		((why = fold_judge(touches)) != NULL ||
		 (why = fold_judge_history(f, ((EntUndo *) linitial(undo))->history)) != NULL))
	{
		fold_undo(f, undo);
		onboarding_decide(d, OB_REFUSED, "%s", why);
		foreach(lc, touches)
		{
			ObTouch    *t = (ObTouch *) lfirst(lc);

			if (t->ent->exists)
				fold_bookkeep(d, t->ent);
		}
	}
}

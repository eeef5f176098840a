/*-------------------------------------------------------------------------
 *
 * derive.c
 *		State as the fold of each entity's deliveries in event order: lock,
 *		place, judge, write state and history.
 *
 * Event order (SPEC §6).  Deliveries are ordered by the provider's time;
 * at equal times by the transition graph (s before s' when s -> s' is
 * legal and s' -> s is not, else the order of the labels: rules.c ranks
 * them), then by the body's hash; never by arrival.  A delivery without a
 * time goes right after the latest event among the deliveries of its
 * entities that arrived before it, in arrival order.
 *
 * Folding, each delivery meets the state its entities have just before its
 * place (fold_step):
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
 * Two paths, one fold.  A delivery that comes after the latest event of
 * every row it touches (last_event_at, or for one without a time, an id
 * beyond last_inbox_id) takes the incremental path: fold_step on the
 * stored state, and the rows written back.  Any other delivery is late:
 * its group, every delivery with the same provider and subject (which are
 * all the deliveries that can touch its rows), is folded again from
 * nothing — state, history in event order, and the outcomes of those
 * deliveries — by derive_group(), which rebuild() runs for every group.
 * So live, late and replay can never diverge.  `stale` marks a delivery
 * applied at its place that arrived after a later event of its entity.
 *
 * Serialisation.  Rows are locked with FOR UPDATE strength (row locks, not
 * lock-table entries, so a million-row COPY is fine) in a fixed order
 * (table, then key); a delivery that touches several rows and is the first
 * of its transaction takes them all or none (derive_lock_rows).  A row
 * that does not exist yet is created with its final values by a
 * speculative insertion; if another session created it meanwhile, the
 * delivery is derived again through its group.  store.c does the reading
 * and writing; delivery.c reads and prepares each stored delivery a fold
 * needs, and rewrites its derived columns when the fold judged it anew.
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

/* The state tables, in locking order */
typedef enum ObTable
{
	OB_T_ACCOUNT = 0,
	OB_T_PROPOSAL,
	OB_T_DOCUMENT,
	OB_T_CLOSURE,
	OB_NTABLES
} ObTable;


#define OB_MAX_STATUS_COLS OB_MAX_STATE_STATUSES
#define OB_MAX_ATTEMPTS 8		/* rounds of lock-or-create before giving up */

static const char *const table_names[OB_NTABLES] = {"account", "proposal", "document", "closure"};

/* What the pipeline knows of each state table (catalog.c) */
typedef ObStateTable TableDef;

#define tables onboarding_state_tables

/*
 * Column positions (0-based) of a state table, resolved for the table as
 * opened in the current transaction.
 */
typedef struct TableCols
{
	uint64		serial;			/* of the open table they were resolved for */
	int			natts;
	int			provider;
	int			key;
	int			status[OB_MAX_STATUS_COLS];
	int			statustime[OB_MAX_STATUS_COLS];	/* -1: last_event_at */
	int			provider_status;
	int			fields[OB_MAX_STATE_FIELDS];
	int			first_event_at;
	int			last_event_at;
	int			last_inbox_id;
	int			last_seen_id;
	int			last_received_at;	/* -1: none (a 0.1.0 schema) */
	int			subjects;		/* -1: none (a 0.1.0 schema) */
	int			flow;			/* -1: none */
	bool	   *owned;			/* per attribute: a column the pipeline writes
								 * (the others are a user's, kept as they are) */
} TableCols;

/* The same for onboarding.history */
typedef struct HistoryCols
{
	uint64		serial;
	int			natts;
	int			provider;
	int			entity;
	int			entity_key;
	int			from_status;
	int			to_status;
	int			event_at;
	int			inbox_id;
	int			reason;
} HistoryCols;

static TableCols table_cols[OB_NTABLES];
static HistoryCols history_cols;

/* The table and status column an entity's status lives in. */
static ObTable
derive_table(ObEntity entity, int *col)
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

/* The entity of a table's status column (the inverse of derive_table). */
static ObEntity
derive_entity(ObTable table, int col)
{
	static const ObEntity map[OB_NTABLES][OB_MAX_STATUS_COLS] = {
		{OB_ACCOUNT}, {OB_PROPOSAL, OB_BACKGROUND_CHECK, OB_DOCUMENTSCOPY}, {OB_DOCUMENT}, {OB_CLOSURE}
	};

	return map[table][col];
}

/* The graph of a table's status column. */
static ObGraph
derive_graph(ObTable table, int col)
{
	return onboarding_entity_graph(derive_entity(table, col));
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
static ObStore *
derive_open(ObTable which, TableCols **colsp)
{
	ObStore    *s = onboarding_store((ObStoreId) which);
	TableCols  *cols = &table_cols[which];
	const TableDef *t = &tables[which];

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
static ObStore *
derive_open_history(void)
{
	ObStore    *s = onboarding_store(OB_S_HISTORY);
	HistoryCols *cols = &history_cols;

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

/* One entity row: its state as the fold has it */
typedef struct EntState
{
	ObTable		table;
	char	   *key;
	bool		in_table;		/* found (and locked) in its table */
	bool		exists;			/* has a state in the fold */
	ObStoreRow	row;
	Datum	   *values;			/* its columns */
	bool	   *nulls;
	/* group fold */
	bool		has_max_at;		/* latest time among deliveries placed so far */
	TimestampTz max_at;
	int64	   *later;			/* ids of later deliveries that may make an
								 * earlier one stale, nearest on top (group_fold) */
	int			nlater;
	/* bounded refold: fields and provider_status the fold has set */
	bool	   *set;
} EntState;

/* What one delivery does to one entity row */
typedef struct Touch
{
	EntState   *ent;
	ObEffect   *effect[OB_MAX_STATUS_COLS];
	const char *next[OB_MAX_STATUS_COLS];
	bool		changed[OB_MAX_STATUS_COLS];
} Touch;

/* A history row the fold made */
typedef struct HistRow
{
	ObEntity	entity;
	const char *key;
	const char *from;
	const char *to;
	bool		has_at;
	TimestampTz at;
	int64		inbox_id;
	const char *reason;
} HistRow;

/* A fold: the rows it knows, and the history it makes */
typedef struct Fold
{
	ObProvider	provider;
	List	   *ents;			/* EntState * */
	List	   *history;		/* HistRow *, in the order made */
} Fold;

/* A bounded refold, planned: what it writes */
typedef struct Window
{
	bool		ready;			/* planned: write it (window_write) */
	Fold		fnew;			/* the rows with L, their final values */
	List	   *rewrite;		/* GroupItem * judged otherwise than stored */
	List	   *removed;		/* ItemPointer: history rows no longer made */
	List	   *added;			/* HistRow *: history rows newly made */
	EntState   *stale_ent;		/* L is stale: the row, */
	int64		stale_id;		/* and the delivery after it that came first */
	int			read;			/* deliveries read after L's place */
} Window;

/* The verdict of §6 for one status column */
typedef enum Verdict
{
	V_CREATE,					/* first status of the row or column */
	V_REFRESH,					/* same status: other fields only */
	V_CHANGE,					/* legal transition */
	V_ILLEGAL
} Verdict;

static const char *const verdict_names[] = {"create", "refresh", "change", "illegal"};

static void derive_group(Relation inbox, const ObInboxAtts *atts, ObDelivery *late,
						 ObProvider provider, List *subjects, bool dry_run, HTAB *pool);
static HTAB *group_pool_create(void);
static EntState *group_gather(Relation inbox, const ObInboxAtts *atts, ObDelivery *late, List *refused,
							  ObProvider provider, List **subjects, ObLockMode mode, Fold *f,
							  List **items, HTAB *pool);
static EntState *derive_lock_nowait(ObProvider provider, List *ents);
static void hist_values(Oid provider, HistRow *h, Datum **valuesp, bool **nullsp);
static void derive_stale(ObDelivery *d, EntState *e, int64 later_id);

static bool window_plan(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, Fold *f,
						HTAB *pool, Window *w);
static void window_write(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, Window *w);

/* The row of (table, key) the fold knows, added when new. */
static EntState *
fold_ent(Fold *f, ObTable table, const char *key)
{
	ListCell   *lc;
	EntState   *e;
	TableCols  *cols;

	foreach(lc, f->ents)
	{
		e = (EntState *) lfirst(lc);
		if (e->table == table && strcmp(e->key, key) == 0)
			return e;
	}
	(void) derive_open(table, &cols);
	e = palloc0(sizeof(EntState));
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
static List *
fold_touches(Fold *f, ObDelivery *d)
{
	List	   *touches = NIL;
	ListCell   *lc,
			   *lt;

	foreach(lc, d->effects)
	{
		ObEffect   *e = (ObEffect *) lfirst(lc);
		int			col;
		ObTable		table = derive_table(e->entity, &col);
		Touch	   *t = NULL;

		foreach(lt, touches)
		{
			Touch	   *x = (Touch *) lfirst(lt);

			if (x->ent->table == table && strcmp(x->ent->key, e->key) == 0)
				t = x;
		}
		if (t == NULL)
		{
			t = palloc0(sizeof(Touch));
			t->ent = fold_ent(f, table, e->key);
			touches = lappend(touches, t);
		}
		/* the first (primary) effect on a column wins */
		if (t->effect[col] == NULL)
			t->effect[col] = e;
	}
	return touches;
}

/* Locking order: table, then key. */
static int
ent_cmp(const ListCell *a, const ListCell *b)
{
	EntState   *x = (EntState *) lfirst(a);
	EntState   *y = (EntState *) lfirst(b);

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* The current status of a column of a row, or NULL. */
static const char *
ent_status(EntState *e, int col)
{
	TableCols  *cols;
	int			st;

	if (!e->exists)
		return NULL;
	(void) derive_open(e->table, &cols);
	st = cols->status[col];
	if (e->nulls[st])
		return NULL;
	return onboarding_status_from_oid(derive_graph(e->table, col), DatumGetObjectId(e->values[st]));
}

/* SQL's LEAST/GREATEST of two nullable times (NULLs ignored). */
static void
derive_bound(Datum *value, bool *isnull, bool has_t, TimestampTz t, bool greatest)
{
	if (!has_t)
		return;
	if (*isnull || (greatest ? t > DatumGetTimestampTz(*value) : t < DatumGetTimestampTz(*value)))
		*value = TimestampTzGetDatum(t);
	*isnull = false;
}

/* Add s to a list of distinct strings; true when it was not there yet. */
static bool
subjects_add(List **list, const char *s)
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
static List *
ent_subjects(EntState *e)
{
	TableCols  *cols;
	List	   *out = NIL;
	Datum	   *elems;
	bool	   *enulls;
	int			n;

	(void) derive_open(e->table, &cols);
	if (cols->subjects < 0 || e->nulls[cols->subjects])
		return NIL;
	deconstruct_array(DatumGetArrayTypeP(e->values[cols->subjects]), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &enulls, &n);
	for (int i = 0; i < n; i++)
		if (!enulls[i])
			(void) subjects_add(&out, TextDatumGetCString(elems[i]));
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
static void
ent_add_subject(EntState *e, const char *subject)
{
	TableCols  *cols;

	(void) derive_open(e->table, &cols);
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
fold_bookkeep(ObDelivery *d, EntState *e)
{
	TableCols  *cols;

	(void) derive_open(e->table, &cols);
	derive_bound(&e->values[cols->first_event_at], &e->nulls[cols->first_event_at],
				 d->has_order_at, d->order_at, false);
	derive_bound(&e->values[cols->last_event_at], &e->nulls[cols->last_event_at],
				 d->has_order_at, d->order_at, true);
	if (cols->last_received_at >= 0)
		derive_bound(&e->values[cols->last_received_at], &e->nulls[cols->last_received_at],
					 d->has_received_at, d->received_at, true);
	e->values[cols->last_inbox_id] = e->values[cols->last_seen_id] = Int64GetDatum(d->id);
	e->nulls[cols->last_inbox_id] = e->nulls[cols->last_seen_id] = false;
	ent_add_subject(e, d->subject);
}

/* The verdict of §6 for one effect at its place. */
static Verdict
fold_verdict(ObDelivery *d, Touch *t, int col, ObEffect *e)
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
fold_apply(Fold *f, ObDelivery *d, Touch *t)
{
	EntState   *e = t->ent;
	const TableDef *def = &tables[e->table];
	TableCols  *cols;
	ObStore    *s;
	const char *provider_status = NULL;
	int			flow = 0;
	bool		checks_unset;

	s = derive_open(e->table, &cols);
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
			HistRow    *h = palloc0(sizeof(HistRow));

			if (c > 0)
				flow = c;		/* 1: background check first, 2: documentscopy first */
			h->entity = derive_entity(e->table, c);
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
		e->values[cols->status[c]] = ObjectIdGetDatum(onboarding_status_oid(derive_graph(e->table, c),
																			t->next[c]));
		e->nulls[cols->status[c]] = false;
		if (cols->statustime[c] >= 0)
			derive_bound(&e->values[cols->statustime[c]], &e->nulls[cols->statustime[c]],
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
	EntState   *ent;
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
fold_undo_save(Fold *f, List *touches)
{
	ListCell   *lc;
	List	   *undo = NIL;
	bool		bound = false;

	foreach(lc, touches)
	{
		TableCols  *cols;

		bound |= onboarding_store_bind(derive_open(((Touch *) lfirst(lc))->ent->table, &cols)) != NULL;
	}
	if (!bound && (touches == NIL || onboarding_store_bind(derive_open_history()) == NULL))
		return NIL;
	foreach(lc, touches)
	{
		EntState   *e = ((Touch *) lfirst(lc))->ent;
		TableCols  *cols;
		EntUndo    *u = palloc(sizeof(EntUndo));

		(void) derive_open(e->table, &cols);
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
fold_undo(Fold *f, List *undo)
{
	ListCell   *lc;

	foreach(lc, undo)
	{
		EntUndo    *u = (EntUndo *) lfirst(lc);
		TableCols  *cols;

		(void) derive_open(u->ent->table, &cols);
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
		EntState   *e = ((Touch *) lfirst(lc))->ent;
		TableCols  *cols;
		ObBind	   *b = onboarding_store_bind(derive_open(e->table, &cols));
		char	   *why;

		if (b == NULL || !e->exists)
			continue;
		why = onboarding_bind_judge(b, e->values, e->nulls, e->in_table ? &e->row.tid : NULL, true);
		if (why != NULL)
			return psprintf("%s %s: %s", table_names[e->table], onboarding_clip(e->key, 200), why);
	}
	return NULL;
}

/*
 * Would a user's constraint on history refuse one of the history rows the
 * fold made from the first'th on?  Returns why, or NULL.
 */
static char *
fold_judge_history(Fold *f, int first)
{
	ObBind	   *b = onboarding_store_bind(derive_open_history());
	Oid			provider = onboarding_provider_oid(f->provider);

	if (b == NULL)
		return NULL;
	for (int i = first; i < list_length(f->history); i++)
	{
		HistRow    *h = (HistRow *) list_nth(f->history, i);
		Datum	   *values;
		bool	   *nulls;
		char	   *why;

		hist_values(provider, h, &values, &nulls);
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
static void
fold_step(Fold *f, ObDelivery *d, List *touches)
{
	ListCell   *lc;
	Touch	   *bad = NULL;
	int			badcol = 0;
	List	   *undo;
	char	   *why;

	if (d->duplicate_candidate != 0)
	{
		ObEffect   *first = (ObEffect *) linitial(d->effects);
		int			col;
		ObTable		table = derive_table(first->entity, &col);

		foreach(lc, touches)
		{
			Touch	   *t = (Touch *) lfirst(lc);
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
		Touch	   *t = (Touch *) lfirst(lc);

		for (int c = 0; c < tables[t->ent->table].nstatus; c++)
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
			Touch	   *t = (Touch *) lfirst(lc);

			if (t->ent->exists)
				fold_bookkeep(d, t->ent);
		}
		return;
	}
	undo = fold_undo_save(f, touches);
	foreach(lc, touches)
	{
		Touch	   *t = (Touch *) lfirst(lc);
		bool		any = false;

		for (int c = 0; c < tables[t->ent->table].nstatus; c++)
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
			Touch	   *t = (Touch *) lfirst(lc);

			if (t->ent->exists)
				fold_bookkeep(d, t->ent);
		}
	}
}

/* ---------------------------------------------------------------------
 * Reading and writing rows
 * ---------------------------------------------------------------------
 */

/*
 * Lock a row (read it as the snapshot sees it, for a dry run).  Returns
 * false when mode is OB_LOCK_NOWAIT and another transaction holds it.
 */
static bool
ent_lock(ObProvider provider, EntState *e, ObLockMode mode)
{
	TableCols  *cols;
	ObStore    *s = derive_open(e->table, &cols);
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
static void
derive_subxact_rethrow(MemoryContext cxt, ResourceOwner owner)
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
static EntState *
derive_lock_attempt(ObProvider provider, List *ents, ObLockMode mode, bool keep)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	EntState   *volatile blocked = NULL;
	ListCell   *lc;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		foreach(lc, ents)
		{
			EntState   *e = (EntState *) lfirst(lc);

			if (!ent_lock(provider, e, mode))
			{
				blocked = e;
				break;
			}
		}
	}
	PG_CATCH();
	{
		derive_subxact_rethrow(cxt, owner);
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
static void
derive_lock_rows(ObProvider provider, List *ents, bool dry_run)
{
	ListCell   *lc;

	list_sort(ents, ent_cmp);
	if (dry_run)
	{
		foreach(lc, ents)
			(void) ent_lock(provider, (EntState *) lfirst(lc), OB_LOCK_NONE);
		return;
	}
	if (list_length(ents) > 1 && !onboarding_store_holds_rows())
	{
		for (;;)
		{
			EntState   *blocked = derive_lock_attempt(provider, ents, OB_LOCK_NOWAIT, true);

			if (blocked == NULL)
				return;
			CHECK_FOR_INTERRUPTS();
			/* wait until whoever holds it is done, then let go of it again */
			(void) derive_lock_attempt(provider, list_make1(blocked), OB_LOCK_WAIT, false);
		}
	}
	foreach(lc, ents)
		(void) ent_lock(provider, (EntState *) lfirst(lc), OB_LOCK_WAIT);
}

/*
 * Write a row back: an update of the one found (or its deletion, when the
 * fold left it without a state), or a new row.  Returns false when a new
 * row lost a race with another session creating it.
 */
static bool
ent_write(EntState *e)
{
	TableCols  *cols;
	ObStore    *s = derive_open(e->table, &cols);

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
derive_seen_add(ObProvider provider, EntState *e)
{
	uint64		h;

	if (derive_seen == NULL)
		return;
	h = derive_seen_hash(e->table, onboarding_provider_oid(provider), e->key);
	(void) hash_search(derive_seen, &h, HASH_ENTER, NULL);
}

/* Start remembering the rows a replay derives (in the current memory context). */
void
onboarding_derive_seen_begin(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(uint64);
	ctl.hcxt = CurrentMemoryContext;
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
static bool
fold_write_rows(Fold *f)
{
	ListCell   *lc;
	List	   *stored = NIL;	/* rows in their table already: rewritten after */

	foreach(lc, f->ents)
	{
		EntState   *e = (EntState *) lfirst(lc);

		if (e->in_table)
			stored = lappend(stored, e);
		else if (!ent_write(e))
			return false;
	}
	/* (a row created just above holds its values already: no second version) */
	foreach(lc, stored)
		(void) ent_write((EntState *) lfirst(lc));
	list_free(stored);
	foreach(lc, f->ents)
		derive_seen_add(f->provider, (EntState *) lfirst(lc));
	return true;
}

/*
 * The delivery whose history row is being written (0: none), so that a
 * refusal on writing it (a user's unique index on history, judged only on
 * writing) is laid on the delivery that made the row.
 */
static int64 writing_delivery = 0;

/* The values of a history row the fold made, for the history table. */
static void
hist_values(Oid provider, HistRow *h, Datum **valuesp, bool **nullsp)
{
	HistoryCols *cols = &history_cols;
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
fold_write_history(Fold *f)
{
	ListCell   *lc;
	ObStore    *s;
	Oid			provider = onboarding_provider_oid(f->provider);

	if (f->history == NIL)
		return;
	s = derive_open_history();
	foreach(lc, f->history)
	{
		Datum	   *values;
		bool	   *nulls;

		hist_values(provider, (HistRow *) lfirst(lc), &values, &nulls);
		writing_delivery = ((HistRow *) lfirst(lc))->inbox_id;
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
group_write_history(Fold *f)
{
	ListCell   *lc,
			   *lh;
	ObStore    *s = derive_open_history();
	Oid			provider = onboarding_provider_oid(f->provider);

	foreach(lc, f->ents)
	{
		EntState   *e = (EntState *) lfirst(lc);

		for (int c = 0; c < tables[e->table].nstatus; c++)
		{
			ObEntity	entity = derive_entity(e->table, c);
			int			n = 0;
			int			kept;
			Datum	  **values = palloc(Max(list_length(f->history), 1) * sizeof(Datum *));
			bool	  **nulls = palloc(Max(list_length(f->history), 1) * sizeof(bool *));

			foreach(lh, f->history)
			{
				HistRow    *h = (HistRow *) lfirst(lh);

				if (h->entity == entity && strcmp(h->key, e->key) == 0)
				{
					hist_values(provider, h, &values[n], &nulls[n]);
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

/* How a fold's writes went */
typedef enum WriteResult
{
	W_DONE,
	W_RACED,					/* a row another session created meanwhile */
	W_REFUSED					/* a user's constraint or trigger refused them */
} WriteResult;

/* Does a fold write a table a user added to (bind.c)? */
static bool
fold_bound(Fold *f)
{
	ListCell   *lc;

	if (onboarding_store_bind(derive_open_history()) != NULL)
		return true;
	foreach(lc, f->ents)
	{
		TableCols  *cols;

		if (onboarding_store_bind(derive_open(((EntState *) lfirst(lc))->table, &cols)) != NULL)
			return true;
	}
	return false;
}

/* Write a fold's rows and history (group: a group fold's, which replaces history). */
static bool
fold_write_all(Fold *f, bool group)
{
	if (!fold_write_rows(f))
		return false;
	if (group)
		group_write_history(f);
	else
		fold_write_history(f);
	return true;
}

/*
 * Write what a fold made.  When a user added to one of the tables it
 * writes, the writes go through the executor (store.c, bind.c) in a
 * subtransaction of their own, their AFTER triggers fired at the end;
 * a constraint or trigger that refuses them (an integrity constraint
 * violation, class 23, or a trigger's RAISE EXCEPTION, P0001) rolls them
 * back, *why says what refused, and *culprit which delivery's history
 * row was being written then (0: a state row).  A unique violation of a state table's
 * primary key is another session that created the row first (W_RACED).
 * Any other error is raised.
 */
static WriteResult
derive_write(Fold *f, bool group, char **why, int64 *culprit)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ObBindBracket br;
	volatile WriteResult result = W_DONE;

	if (!fold_bound(f))
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
derive_in_order(ObDelivery *d, EntState *e)
{
	TableCols  *cols;

	if (!e->in_table)
		return true;
	(void) derive_open(e->table, &cols);

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

/* Where a late delivery's group starts: its subject, its rows' keys and subjects. */
static List *
derive_subjects(ObDelivery *d, Fold *f)
{
	List	   *subjects = NIL;
	ListCell   *lc,
			   *ls;

	(void) subjects_add(&subjects, d->subject);
	foreach(lc, f->ents)
	{
		EntState   *e = (EntState *) lfirst(lc);

		(void) subjects_add(&subjects, e->key);
		foreach(ls, ent_subjects(e))
			(void) subjects_add(&subjects, (const char *) lfirst(ls));
	}
	return subjects;
}

/* Lock rows without waiting; the first one held by another transaction, or NULL. */
static EntState *
derive_lock_nowait(ObProvider provider, List *ents)
{
	ListCell   *lc;

	list_sort(ents, ent_cmp);
	foreach(lc, ents)
	{
		EntState   *e = (EntState *) lfirst(lc);

		if (!ent_lock(provider, e, OB_LOCK_NOWAIT))
			return e;
	}
	return NULL;
}

/*
 * The rows of a delivery, for a transaction that holds none yet: all or
 * none (see derive_lock_rows) — and when the delivery turns out late, the
 * rows of its whole group in the same attempt, so that a single delivery
 * never waits holding a row, on the late path either.  Returns whether
 * the delivery is late; the group's deliveries it read are left in pool.
 */
static bool
derive_lock_fresh(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, Fold *f, HTAB *pool,
				  Window *w)
{
	for (;;)
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		EntState   *volatile blocked = NULL;
		volatile bool late = false;
		ListCell   *lc;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			blocked = derive_lock_nowait(d->provider, list_copy(f->ents));
			if (blocked == NULL)
			{
				foreach(lc, f->ents)
					late |= !derive_in_order(d, (EntState *) lfirst(lc));
				/* late: its window if that says it all, else its group's rows too */
				if (late && !window_plan(inbox, atts, d, f, pool, w))
				{
					Fold		g;
					List	   *items;
					List	   *subjects = derive_subjects(d, f);

					blocked = group_gather(inbox, atts, d, NIL, d->provider, &subjects,
										   OB_LOCK_NOWAIT, &g, &items, pool);
				}
			}
		}
		PG_CATCH();
		{
			derive_subxact_rethrow(cxt, owner);
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
		(void) derive_lock_attempt(d->provider, list_make1(blocked), OB_LOCK_WAIT, false);
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
	Fold		f = {0};
	List	   *touches;
	ListCell   *lc;
	bool		late = false;
	HTAB	   *pool = NULL;
	char	   *why = NULL;
	int64		culprit = 0;
	Window		w = {0};

	Assert(d->effects != NIL);
	f.provider = d->provider;
	onboarding_store_begin();
	touches = fold_touches(&f, d);
	if (!dry_run && !onboarding_store_holds_rows())
	{
		pool = group_pool_create();
		late = derive_lock_fresh(inbox, atts, d, &f, pool, &w);
	}
	else
	{
		derive_lock_rows(d->provider, list_copy(f.ents), dry_run);
		foreach(lc, f.ents)
			late |= !derive_in_order(d, (EntState *) lfirst(lc));
		if (late && !dry_run)
		{
			pool = group_pool_create();
			(void) window_plan(inbox, atts, d, &f, pool, &w);
		}
	}
	if (late)
	{
		/* what its arrival changes, or its whole group */
		if (w.ready)
			window_write(inbox, atts, d, &w);
		else
			derive_group(inbox, atts, d, d->provider, derive_subjects(d, &f), dry_run, pool);
		return;
	}

	/* its place: its time, or the latest of its rows' (it comes right after) */
	d->has_order_at = d->has_event_at;
	d->order_at = d->event_at;
	if (!d->has_event_at)
		foreach(lc, f.ents)
		{
			EntState   *e = (EntState *) lfirst(lc);
			TableCols  *cols;

			(void) derive_open(e->table, &cols);
			if (e->in_table && !e->nulls[cols->last_event_at] &&
				(!d->has_order_at || DatumGetTimestampTz(e->values[cols->last_event_at]) > d->order_at))
			{
				d->order_at = DatumGetTimestampTz(e->values[cols->last_event_at]);
				d->has_order_at = true;
			}
		}
	fold_step(&f, d, touches);
	if (dry_run || d->outcome == OB_DUPLICATE)
		return;
	switch (derive_write(&f, false, &why, &culprit))
	{
		case W_DONE:
			break;
		case W_RACED:
			/* a new row another session created meanwhile: the long way */
			d->decided = false;
			d->outcome = OB_APPLIED;
			d->duplicate_of = 0;
			derive_group(inbox, atts, d, d->provider, derive_subjects(d, &f), false, pool);
			break;
		case W_REFUSED:
			d->decided = false;
			onboarding_decide(d, OB_REFUSED, "%s", why);
			break;
	}
}

/* ---------------------------------------------------------------------
 * The group fold: late deliveries and rebuild()
 * ---------------------------------------------------------------------
 */

/* A delivery of a group, as the fold sees it */
typedef struct GroupItem
{
	ObDelivery *d;
	ObDelivery	prepared;		/* *d as prepared, before any fold judged it */
	char	   *prepared_detail;	/* its detail then */
	HeapTuple	stored;			/* its inbox row; NULL for the one being inserted */
	List	   *touches;		/* Touch *, when it takes part in the fold */
	bool		has_at;			/* its place: time ... */
	TimestampTz at;
	uint64		seq;			/* ... and tie-break */
} GroupItem;

/* Event order of two items (see the header). */
static int
item_cmp(const ListCell *a, const ListCell *b)
{
	GroupItem  *x = (GroupItem *) lfirst(a);
	GroupItem  *y = (GroupItem *) lfirst(b);

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
	int64		x = ((GroupItem *) lfirst(a))->d->id;
	int64		y = ((GroupItem *) lfirst(b))->d->id;

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
 * again (it grows, or others delivered to it while we waited).
 */
typedef struct PoolEntry
{
	int64		id;
	GroupItem  *it;
} PoolEntry;

static HTAB *
group_pool_create(void)
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
static void
delivery_reset(ObDelivery *d, const ObDelivery *prepared, const char *detail)
{
	StringInfoData buf = d->detail;

	*d = *prepared;
	resetStringInfo(&buf);
	appendStringInfoString(&buf, detail);
	d->detail = buf;
}

/* Undo what a fold did to a pooled delivery: it is as prepared again. */
static void
group_item_reset(GroupItem *it)
{
	if (it->stored == NULL)
		return;					/* the one being inserted: its caller's */
	delivery_reset(it->d, &it->prepared, it->prepared_detail);
	it->touches = NIL;
	it->has_at = false;
	it->at = 0;
	it->seq = 0;
}

/* Read and prepare one stored delivery of a group, as when it arrived. */
static GroupItem *
group_item_read(HeapTuple tup, TupleDesc desc, const ObInboxAtts *atts)
{
	GroupItem  *it = palloc0(sizeof(GroupItem));
	bool		raw_null;
	bool		hash_null;
	Datum		raw;
	Datum		hash;

	it->stored = heap_copytuple(tup);
	it->d = palloc(sizeof(ObDelivery));
	onboarding_delivery_init(it->d, it->stored, desc, atts);
	raw = heap_getattr(it->stored, atts->raw, desc, &raw_null);
	if (it->d->payload == NULL)
		(void) onboarding_prepare_delivery(it->d, raw_null ? NULL : DatumGetTextPP(raw));
	else
	{
		/*
		 * Parsing raw again would only say again whether it needed the
		 * repair: the stored detail says so (rebuild() wrote it from raw in
		 * its first pass), at a fraction of the cost.
		 */
		if (!raw_null)
			group_repair_note(it->d, it->stored, desc, atts);
		(void) onboarding_prepare_delivery(it->d, NULL);
	}
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
	Oid			index = onboarding_inbox_oids()->group_index;
	TupleDesc	desc = RelationGetDescr(inbox);
	SnapshotData dirty;
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *items = NIL;

	InitDirtySnapshot(dirty);
	ScanKeyEntryInitialize(&keys[0], 0, atts->provider, BTEqualStrategyNumber, InvalidOid,
						   InvalidOid, F_ENUM_EQ, ObjectIdGetDatum(onboarding_provider_oid(provider)));
	ScanKeyEntryInitialize(&keys[1], 0, atts->subject, BTEqualStrategyNumber, InvalidOid,
						   DEFAULT_COLLATION_OID, F_TEXTEQ, CStringGetTextDatum(subject));
	/* (a 0.1.0 schema has no group index: then the heap is scanned) */
	scan = systable_beginscan(inbox, index, OidIsValid(index), &dirty, 2, keys);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		int64		id;
		PoolEntry  *entry;
		bool		found;

		if (TransactionIdIsValid(dirty.xmin))
			continue;			/* another transaction is inserting it */
		id = DatumGetInt64(heap_getattr(tup, atts->id, desc, &isnull));
		entry = (PoolEntry *) hash_search(pool, &id, HASH_ENTER, &found);
		if (!found)
			entry->it = group_item_read(tup, desc, atts);
		items = lappend(items, entry->it);
	}
	systable_endscan(scan);
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
			GroupItem  *it = (GroupItem *) lfirst(lc);
			bool		known = false;

			foreach(li, items)
				known |= (((GroupItem *) lfirst(li))->d->id == it->d->id);
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
		GroupItem  *it = (GroupItem *) lfirst(lc);
		ObDelivery *d = it->d;

		d->duplicate_candidate = 0;
		if (d->payload == NULL || d->outcome == OB_DUPLICATE)
			continue;
		foreach(lo, items)
		{
			ObDelivery *o = ((GroupItem *) lfirst(lo))->d;

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
 * of its rows that arrived before it.
 */
static void
group_place(Fold *f, List *items)
{
	ListCell   *lc,
			   *lt;

	foreach(lc, items)
	{
		GroupItem  *it = (GroupItem *) lfirst(lc);
		ObDelivery *d = it->d;

		if (d->decided)
			continue;
		it->touches = fold_touches(f, d);
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
				EntState   *e = ((Touch *) lfirst(lt))->ent;

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
			EntState   *e = ((Touch *) lfirst(lt))->ent;

			if (it->has_at && (!e->has_max_at || e->max_at < it->at))
			{
				e->max_at = it->at;
				e->has_max_at = true;
			}
		}
	}
}

/* Say that an applied delivery is stale: delivery later_id of row e came after it and arrived first. */
static void
derive_stale(ObDelivery *d, EntState *e, int64 later_id)
{
	onboarding_decide(d, OB_STALE,
					  "arrived after a later event of %s %s (delivery %lld); applied at its place in event order",
					  table_names[e->table], onboarding_clip(e->key, 200), (long long) later_id);
}

/*
 * Fold the group in event order from nothing, then say which applied
 * deliveries are stale: they arrived after a later event of a row they
 * touch.  The detail names the first delivery after it in event order
 * that arrived before it (the bounded refold finds the same one).
 */
static void
group_fold(Fold *f, List *ordered)
{
	ListCell   *lc,
			   *lt;

	foreach(lc, f->ents)
	{
		EntState   *e = (EntState *) lfirst(lc);

		e->exists = false;
		e->later = palloc(Max(list_length(ordered), 1) * sizeof(int64));
		e->nlater = 0;
	}
	foreach(lc, ordered)
	{
		GroupItem  *it = (GroupItem *) lfirst(lc);

		fold_step(f, it->d, it->touches);
		if (!it->d->decided)
			it->d->outcome = OB_APPLIED;
	}
	for (int i = list_length(ordered) - 1; i >= 0; i--)
	{
		GroupItem  *it = (GroupItem *) list_nth(ordered, i);
		ObDelivery *d = it->d;
		EntState   *later = NULL;
		int64		later_id = 0;

		if (d->outcome == OB_DUPLICATE)
			continue;
		foreach(lt, it->touches)
		{
			EntState   *e = ((Touch *) lfirst(lt))->ent;

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
			derive_stale(d, later, later_id);
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
			  ObProvider provider, List *subjects, Fold *f, HTAB *pool)
{
	List	   *items = group_scan(inbox, atts, provider, subjects, pool);
	ListCell   *lc,
			   *lr;

	foreach(lc, items)
	{
		GroupItem  *it = (GroupItem *) lfirst(lc);

		group_item_reset(it);
		/* refused on writing in an earlier attempt: out of the fold */
		foreach(lr, refused)
			if (((GroupRefusal *) lfirst(lr))->id == it->d->id && !it->d->decided)
				onboarding_decide(it->d, OB_REFUSED, "%s", ((GroupRefusal *) lfirst(lr))->why);
	}

	if (late != NULL)
	{
		GroupItem  *it = palloc0(sizeof(GroupItem));

		it->d = late;
		items = lappend(items, it);
	}
	list_sort(items, item_id_cmp);
	group_dedupe(items);
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
static EntState *
group_gather(Relation inbox, const ObInboxAtts *atts, ObDelivery *late, List *refused,
			 ObProvider provider, List **subjects, ObLockMode mode, Fold *f, List **items, HTAB *pool)
{
	for (;;)
	{
		ListCell   *lc,
				   *ls;
		bool		grew = false;

		memset(f, 0, sizeof(Fold));
		f->provider = provider;
		*items = group_collect(inbox, atts, late, refused, provider, *subjects, f, pool);
		if (mode == OB_LOCK_NOWAIT)
		{
			EntState   *blocked = derive_lock_nowait(provider, list_copy(f->ents));

			if (blocked != NULL)
				return blocked;
		}
		else
			derive_lock_rows(provider, list_copy(f->ents), mode == OB_LOCK_NONE);
		foreach(lc, f->ents)
		{
			EntState   *e = (EntState *) lfirst(lc);

			grew |= subjects_add(subjects, e->key);
			foreach(ls, ent_subjects(e))
				grew |= subjects_add(subjects, (const char *) lfirst(ls));
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
	GroupItem  *newest = NULL;
	GroupRefusal *r;

	if (late != NULL && !late->decided && (culprit == 0 || culprit == late->id))
	{
		onboarding_decide(late, OB_REFUSED, "%s", why);
		return true;
	}
	foreach(lc, ordered)
	{
		GroupItem  *it = (GroupItem *) lfirst(lc);

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
 * Fold a group again (see group_gather), the one being inserted (late,
 * may be NULL) included.  Deliveries that arrived while we waited for the
 * rows are read again.  Writes state, history (the rows' earlier history
 * is replaced) and the derived columns of the group's other deliveries
 * where they changed; a dry run writes nothing and only judges late.
 */
static void
derive_group(Relation inbox, const ObInboxAtts *atts, ObDelivery *late,
			 ObProvider provider, List *subjects, bool dry_run, HTAB *pool)
{
	List	   *refused = NIL;	/* GroupRefusal * */
	char	   *why = NULL;
	int64		culprit = 0;
	ObDelivery	late_prepared;	/* late as prepared, for each attempt */
	char	   *late_detail = NULL;

	if (pool == NULL)
		pool = group_pool_create();
	if (late != NULL)
	{
		late_prepared = *late;
		late_detail = pstrdup(late->detail.data);
	}
	for (int attempt = 1; attempt <= OB_MAX_ATTEMPTS; attempt++)
	{
		Fold		f;
		List	   *items;
		List	   *ordered = NIL;
		ListCell   *lc;
		bool		grew = false;

		/*
		 * Each attempt judges the delivery being inserted afresh (an earlier
		 * one may have called it stale), but for a refusal on writing.
		 */
		if (late != NULL && !(late->decided && late->outcome == OB_REFUSED))
			delivery_reset(late, &late_prepared, late_detail);

		(void) group_gather(inbox, atts, late, refused, provider, &subjects,
							dry_run ? OB_LOCK_NONE : OB_LOCK_WAIT, &f, &items, pool);

		/* deliveries committed while we waited for the rows: start again */
		if (!dry_run)
		{
			foreach(lc, group_scan(inbox, atts, provider, subjects, pool))
			{
				int64		id = ((GroupItem *) lfirst(lc))->d->id;
				ListCell   *li;
				bool		known = false;

				foreach(li, items)
					known |= (((GroupItem *) lfirst(li))->d->id == id);
				grew |= !known;
			}
			if (grew)
				continue;
		}

		foreach(lc, items)
		{
			GroupItem  *it = (GroupItem *) lfirst(lc);

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
		switch (derive_write(&f, true, &why, &culprit))
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
			GroupItem  *it = (GroupItem *) lfirst(lc);

			if (it->stored != NULL)
				onboarding_delivery_rewrite(it->d, it->stored, RelationGetDescr(inbox), atts);
		}
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
 * L's share.
 *
 * The old fold must give back what is stored (the outcomes of the
 * deliveries it meets); where it does not, or where the window cannot say
 * what the whole fold would (a delivery without a time in the group,
 * events at the same time as L's or each other's, a delivery that touches
 * rows L does not, several subjects, a user's additions to the tables, an
 * illegal delivery that L makes legal), the group is folded whole, as
 * before.  So the two paths can never disagree on a result.
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
window_col(const TableDef *def, TableCols *cols, int i)
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
static EntState *
window_copy(EntState *e)
{
	TableCols  *cols;
	EntState   *c = palloc(sizeof(EntState));

	(void) derive_open(e->table, &cols);
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
window_before(ObProvider provider, EntState *e, TimestampTz t)
{
	const TableDef *def = &tables[e->table];
	TableCols  *cols;
	bool		existed = false;
	bool		checked = false;

	(void) derive_open(e->table, &cols);
	for (int c = 0; c < def->nstatus; c++)
	{
		char	   *status;

		if (!onboarding_store_history_before(onboarding_provider_oid(provider),
											 onboarding_entity_names[derive_entity(e->table, c)],
											 e->key, t, &status))
			return false;
		e->nulls[cols->status[c]] = (status == NULL);
		if (status != NULL)
			e->values[cols->status[c]] =
				ObjectIdGetDatum(onboarding_status_oid(derive_graph(e->table, c), status));
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
window_same(Fold *a, Fold *b)
{
	ListCell   *la,
			   *lb;

	forboth(la, a->ents, lb, b->ents)
	{
		EntState   *x = (EntState *) lfirst(la);
		EntState   *y = (EntState *) lfirst(lb);
		const TableDef *def = &tables[x->table];
		TableCols  *cols;
		TupleDesc	desc = onboarding_store_desc(derive_open(x->table, &cols));

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
			if (!x->nulls[i] && !datumIsEqual(x->values[i], y->values[i], att->attbyval, att->attlen))
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
window_final(Window *w, Fold *old, List *stored, ObDelivery *late, bool converged)
{
	ListCell   *ln,
			   *lo,
			   *ls;

	forthree(ln, w->fnew.ents, lo, old->ents, ls, stored)
	{
		EntState   *n = (EntState *) lfirst(ln);
		EntState   *o = (EntState *) lfirst(lo);
		EntState   *s = (EntState *) lfirst(ls);
		const TableDef *def = &tables[n->table];
		TableCols  *cols;
		TupleDesc	desc = onboarding_store_desc(derive_open(n->table, &cols));

		for (int i = 0; i < cols->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			WinCol		kind = window_col(def, cols, i);
			bool		new_set,
						old_set;

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
				 (!s->nulls[i] && !datumIsEqual(s->values[i], o->values[i], att->attbyval, att->attlen))))
				return false;	/* the old fold does not give back what is stored */
			if ((kind == WC_STATUS || kind == WC_FLOW) &&
				(s->nulls[i] != o->nulls[i] ||
				 (!s->nulls[i] && !datumIsEqual(s->values[i], o->values[i], att->attbyval, att->attlen))))
				return false;
			if (!new_set)
			{
				if (old_set)
					return false;	/* its value before the place is not known */
				n->values[i] = s->values[i];
				n->nulls[i] = s->nulls[i];
			}
		}
		n->exists = true;
		/* what adds up over every delivery: L's share */
		derive_bound(&n->values[cols->first_event_at], &n->nulls[cols->first_event_at],
					 late->has_order_at, late->order_at, false);
		if (cols->last_received_at >= 0)
			derive_bound(&n->values[cols->last_received_at], &n->nulls[cols->last_received_at],
						 late->has_received_at, late->received_at, true);
		ent_add_subject(n, late->subject);
	}
	return true;
}

/* Do two history rows say the same? */
static bool
hist_same(const HistRow *a, const HistRow *b)
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
window_history(Window *w, Fold *old)
{
	ListCell   *lo,
			   *ln;
	Oid			provider = onboarding_provider_oid(old->provider);

	foreach(lo, old->history)
	{
		HistRow    *h = (HistRow *) lfirst(lo);
		bool		kept = false;
		ItemPointer tid;

		foreach(ln, w->fnew.history)
			kept |= hist_same(h, (HistRow *) lfirst(ln));
		if (kept)
			continue;
		tid = palloc(sizeof(ItemPointerData));
		if (!h->has_at ||
			!onboarding_store_history_find(provider, onboarding_entity_names[h->entity], h->key,
										   h->at, h->inbox_id, h->from, h->to, tid))
			return false;
		w->removed = lappend(w->removed, tid);
	}
	foreach(ln, w->fnew.history)
	{
		HistRow    *h = (HistRow *) lfirst(ln);
		bool		known = false;

		foreach(lo, old->history)
			known |= hist_same(h, (HistRow *) lfirst(lo));
		if (!known)
			w->added = lappend(w->added, h);
	}
	return true;
}

/*
 * The deliveries of a group after time t in event time, read one by one
 * (the inbox's group index is (provider, subject, event_at, body_hash)).
 * Deliveries other transactions are still inserting are left out, as the
 * group fold leaves them (they hold the rows they touch).
 */
typedef struct WindowScan
{
	SysScanDesc scan;
	SnapshotData dirty;
	ScanKeyData keys[3];
} WindowScan;

static void
window_scan_begin(WindowScan *ws, Relation inbox, const ObInboxAtts *atts, ObProvider provider,
				  const char *subject, bool timeless, TimestampTz t)
{
	InitDirtySnapshot(ws->dirty);
	ScanKeyEntryInitialize(&ws->keys[0], 0, atts->provider, BTEqualStrategyNumber, InvalidOid,
						   InvalidOid, F_ENUM_EQ, ObjectIdGetDatum(onboarding_provider_oid(provider)));
	ScanKeyEntryInitialize(&ws->keys[1], 0, atts->subject, BTEqualStrategyNumber, InvalidOid,
						   DEFAULT_COLLATION_OID, F_TEXTEQ, CStringGetTextDatum(subject));
	if (timeless)
		ScanKeyEntryInitialize(&ws->keys[2], SK_ISNULL | SK_SEARCHNULL, atts->event_at,
							   InvalidStrategy, InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
	else
		ScanKeyEntryInitialize(&ws->keys[2], 0, atts->event_at, BTGreaterEqualStrategyNumber,
							   InvalidOid, InvalidOid, F_TIMESTAMPTZ_GE, TimestampTzGetDatum(t));
	ws->scan = systable_beginscan(inbox, onboarding_inbox_oids()->group_index, true, &ws->dirty,
								  3, ws->keys);
}

/* The next stored delivery, or NULL at the end. */
static HeapTuple
window_scan_next(WindowScan *ws)
{
	HeapTuple	tup;

	while (HeapTupleIsValid(tup = systable_getnext(ws->scan)))
		if (!TransactionIdIsValid(ws->dirty.xmin))
			return tup;
	return NULL;
}

/* The stored outcome of an inbox row. */
static ObOutcome
window_outcome(HeapTuple tup, TupleDesc desc, const ObInboxAtts *atts)
{
	bool		isnull;
	Oid			oid = DatumGetObjectId(heap_getattr(tup, atts->outcome, desc, &isnull));

	for (int o = 0; o < OB_NOUTCOMES; o++)
		if (!isnull && onboarding_outcome_oid((ObOutcome) o) == oid)
			return (ObOutcome) o;
	return OB_NOUTCOMES;
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
	SnapshotData dirty;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *newer = NIL;

	InitDirtySnapshot(dirty);
	ScanKeyEntryInitialize(&key, 0, atts->id, BTGreaterStrategyNumber, InvalidOid, InvalidOid,
						   F_INT8GT, Int64GetDatum(d->id));
	scan = systable_beginscan(inbox, onboarding_inbox_oids()->pkey_index, true, &dirty, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		v;

		if (TransactionIdIsValid(dirty.xmin))
			continue;			/* another transaction's, still being inserted */
		v = heap_getattr(tup, atts->provider, desc, &isnull);
		if (isnull || DatumGetObjectId(v) != provider)
			continue;
		v = heap_getattr(tup, atts->subject, desc, &isnull);
		if (!isnull && strcmp(TextDatumGetCString(v), d->subject) == 0)
			newer = lappend(newer, heap_copytuple(tup));
	}
	systable_endscan(scan);
	return newer;
}

/* Does a delivery touch row e (by table and key)? */
static bool
window_touches(List *touches, EntState *e)
{
	ListCell   *lc;

	foreach(lc, touches)
	{
		EntState   *x = ((Touch *) lfirst(lc))->ent;

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
				   HeapTuple x, HTAB *pool, Window *w)
{
	TupleDesc	desc = RelationGetDescr(inbox);
	GroupItem  *it;
	PoolEntry  *entry;
	Fold		scratch = {0};
	List	   *touches;
	EntState   *row;
	WindowScan	ws;
	HeapTuple	tup;
	bool		isnull;
	int64		id = DatumGetInt64(heap_getattr(x, atts->id, desc, &isnull));
	bool		found;
	int64		ref = 0;
	int			read = 0;
	bool		unsure = false;

	/* (read apart from the pool: a pooled item may be judged again meanwhile) */
	it = group_item_read(x, desc, atts);
	if (it->d->decided || !it->d->has_event_at)
		return false;
	scratch.provider = late->provider;
	touches = fold_touches(&scratch, it->d);
	if (list_length(touches) != 1)
		return false;
	row = ((Touch *) linitial(touches))->ent;

	window_scan_begin(&ws, inbox, atts, late->provider, late->subject, false, it->d->event_at);
	while (ref == 0 && (tup = window_scan_next(&ws)) != NULL)
	{
		ObOutcome	was = window_outcome(tup, desc, atts);
		int64		other = DatumGetInt64(heap_getattr(tup, atts->id, desc, &isnull));
		TimestampTz at = DatumGetTimestampTz(heap_getattr(tup, atts->event_at, desc, &isnull));
		GroupItem  *o;
		Fold		f2 = {0};

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
		entry = (PoolEntry *) hash_search(pool, &other, HASH_ENTER, &found);
		if (!found)
			entry->it = group_item_read(tup, desc, atts);
		o = entry->it;
		if (o->prepared.decided)
			continue;
		f2.provider = late->provider;
		if (window_touches(fold_touches(&f2, &o->prepared), row))
			ref = other;
	}
	systable_endscan(ws.scan);
	if (unsure)
		return false;
	if (ref == 0 && window_touches(late_touches, row))
		ref = late->id;
	if (ref != 0)
		derive_stale(it->d, row, ref);
	w->rewrite = lappend(w->rewrite, it);
	return true;
}

/*
 * Plan the bounded refold of late delivery d, whose rows f holds (locked,
 * as stored).  Reads only; returns whether w is ready to write.  When not,
 * d is as it came and the caller folds the group whole.
 */
static bool
window_plan(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, Fold *f, HTAB *pool,
			Window *w)
{
	ObDelivery	prepared = *d;
	char	   *detail = pstrdup(d->detail.data);
	TupleDesc	desc = RelationGetDescr(inbox);
	List	   *subjects;
	List	   *stored = NIL;
	List	   *touches;
	List	   *stale_from;		/* L's rows, in its touches' order */
	List	   *newer;			/* HeapTuple: arrived after L, derived before */
	Fold		old = {0};
	WindowScan	ws;
	HeapTuple	tup;
	ListCell   *lc;
	bool		converged = false;
	bool		stale_known = false;
	TimestampTz prev_at = 0;

	memset(w, 0, sizeof(Window));
	if (!onboarding_inbox_oids()->group_by_time || !d->has_event_at || d->forced ||
		d->duplicate_candidate != 0 || fold_bound(f))
		return false;
	foreach(lc, f->ents)
		if (!((EntState *) lfirst(lc))->in_table)
			return false;
	subjects = derive_subjects(d, f);
	if (list_length(subjects) != 1)
		return false;
	newer = window_newer(inbox, atts, d);

	/* a delivery without a time takes its place by arrival: fold it whole */
	window_scan_begin(&ws, inbox, atts, d->provider, d->subject, true, 0);
	tup = window_scan_next(&ws);
	systable_endscan(ws.scan);
	if (tup != NULL)
		return false;

	/* the rows just before L's place, in both folds */
	w->fnew.provider = old.provider = d->provider;
	foreach(lc, f->ents)
	{
		EntState   *e = window_copy((EntState *) lfirst(lc));

		stored = lappend(stored, window_copy((EntState *) lfirst(lc)));
		if (!window_before(d->provider, e, d->event_at))
			return false;
		w->fnew.ents = lappend(w->fnew.ents, e);
		old.ents = lappend(old.ents, window_copy(e));
	}

	/* L at its place */
	d->has_order_at = true;
	d->order_at = d->event_at;
	touches = fold_touches(&w->fnew, d);
	stale_from = NIL;
	foreach(lc, touches)
		stale_from = lappend(stale_from, ((Touch *) lfirst(lc))->ent);
	fold_step(&w->fnew, d, touches);
	stale_known = d->decided;	/* an illegal L is not stale */

	/* then the deliveries after it, in both folds, until they meet */
	window_scan_begin(&ws, inbox, atts, d->provider, d->subject, false, d->event_at);
	while (!(converged && stale_known) && (tup = window_scan_next(&ws)) != NULL)
	{
		ObOutcome	was = window_outcome(tup, desc, atts);
		bool		isnull;
		int64		id = DatumGetInt64(heap_getattr(tup, atts->id, desc, &isnull));
		PoolEntry  *entry;
		bool		found;
		GroupItem  *it;
		List	   *tnew;
		List	   *told;
		bool		old_illegal;
		bool		new_illegal;
		char	   *old_detail;
		int			nents = list_length(f->ents);

		/* what L cannot change: duplicates, bodies no rule reads */
		if (was == OB_DUPLICATE || was == OB_UNRECOGNIZED || was == OB_INVALID)
			continue;
		if (was != OB_APPLIED && was != OB_STALE && was != OB_ILLEGAL)
			goto fold_whole;	/* refused: judged against a user's additions */
		if (++w->read > OB_WINDOW_MAX)
			goto fold_whole;
		entry = (PoolEntry *) hash_search(pool, &id, HASH_ENTER, &found);
		if (!found)
			entry->it = group_item_read(tup, desc, atts);
		it = entry->it;
		group_item_reset(it);
		if (it->d->decided || it->d->forced || !it->d->has_event_at ||
			it->d->duplicate_candidate != 0 || it->d->event_at == d->event_at ||
			(w->read > 1 && it->d->event_at == prev_at))
			goto fold_whole;	/* not as stored, or its place needs the group */
		prev_at = it->d->event_at;
		it->d->has_order_at = true;
		it->d->order_at = it->d->event_at;

		if (converged)
		{
			/* only the delivery that makes L stale is still sought */
			Fold		scratch = {0};

			scratch.provider = d->provider;
			tnew = fold_touches(&scratch, it->d);
		}
		else
		{
			tnew = fold_touches(&w->fnew, it->d);
			told = fold_touches(&old, it->d);
			if (list_length(w->fnew.ents) != nents || list_length(old.ents) != nents)
				goto fold_whole;	/* it touches rows L does not */

			fold_step(&old, it->d, told);
			old_illegal = it->d->decided;
			old_detail = pstrdup(it->d->detail.data);
			if (old_illegal != (was == OB_ILLEGAL) ||
				(old_illegal && it->d->outcome != OB_ILLEGAL))
				goto fold_whole;	/* the old fold does not give back what is stored */
			group_item_reset(it);
			it->d->has_order_at = true;
			it->d->order_at = it->d->event_at;
			fold_step(&w->fnew, it->d, tnew);
			new_illegal = it->d->decided;
			if (new_illegal && it->d->outcome != OB_ILLEGAL)
				goto fold_whole;
			if (old_illegal && !new_illegal)
				goto fold_whole;	/* whether it is stale needs every later arrival */
			if (new_illegal && (!old_illegal || strcmp(old_detail, it->d->detail.data) != 0))
				w->rewrite = lappend(w->rewrite, it);
			converged = window_same(&w->fnew, &old);
		}

		/* L is stale when a delivery after it arrived before it (group_fold) */
		if (!stale_known && it->d->id < d->id)
		{
			EntState   *first = (EntState *) linitial(stale_from);

			if (window_touches(tnew, first))
			{
				w->stale_ent = first;
				w->stale_id = it->d->id;
				stale_known = true;
			}
			else if (list_length(stale_from) > 1)
				goto fold_whole;	/* (several rows: the whole group says which) */
		}
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
			goto fold_whole;
		break;
	}
	systable_endscan(ws.scan);
	ws.scan = NULL;

	if (!window_final(w, &old, stored, d, converged) || !window_history(w, &old))
		goto fold_whole;

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
			goto fold_whole;
	}
	w->ready = true;
	ereport(DEBUG1,
			(errmsg_internal("late delivery %lld refolded from its place; stored deliveries prepared again: %d, history rows removed: %d, added: %d, other outcomes rewritten: %d",
							 (long long) d->id, w->read, list_length(w->removed),
							 list_length(w->added), list_length(w->rewrite))));
	return true;

fold_whole:
	ereport(DEBUG1,
			(errmsg_internal("late delivery %lld folds its whole group", (long long) d->id)));
	if (ws.scan != NULL)
		systable_endscan(ws.scan);
	delivery_reset(d, &prepared, detail);
	memset(w, 0, sizeof(Window));
	return false;
}

/*
 * Write a planned bounded refold: the rows, the history rows that change,
 * and the derived columns of the deliveries judged otherwise.
 */
static void
window_write(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, Window *w)
{
	ListCell   *lc;
	ObStore    *s;
	Oid			provider = onboarding_provider_oid(w->fnew.provider);

	if (!fold_write_rows(&w->fnew))
		elog(ERROR, "a row of a bounded refold was not in its table");
	foreach(lc, w->removed)
		onboarding_store_history_delete((ItemPointer) lfirst(lc));
	s = derive_open_history();
	foreach(lc, w->added)
	{
		Datum	   *values;
		bool	   *nulls;

		hist_values(provider, (HistRow *) lfirst(lc), &values, &nulls);
		onboarding_store_append(s, values, nulls);
	}
	foreach(lc, w->rewrite)
	{
		GroupItem  *it = (GroupItem *) lfirst(lc);

		onboarding_delivery_rewrite(it->d, it->stored, RelationGetDescr(inbox), atts);
	}
	if (!d->decided && w->stale_ent != NULL)
		derive_stale(d, w->stale_ent, w->stale_id);
	w->fnew.history = NIL;
}

/*
 * rebuild(): fold one group from nothing (the state tables are empty).
 */
void
onboarding_derive_group(Relation inbox, const ObInboxAtts *atts, ObProvider provider,
						const char *subject)
{
	onboarding_store_begin();
	derive_group(inbox, atts, NULL, provider, list_make1(pstrdup(subject)), false, NULL);
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
		original = onboarding_dedupe_find(inbox, atts, d, mode == OB_RUN_LIVE);
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

/*-------------------------------------------------------------------------
 *
 * derive.c
 *		Apply a classified delivery to the state tables: lock, order,
 *		check, write state and history.
 *
 * For every row a delivery touches (an account, a proposal, a document, a
 * closure request) it compares the event's time t and status s with the
 * status s0 and its time t0 (SPEC §6).  A proposal carries three statuses
 * (its own and its two checks), each with its own time, since Celcoin runs
 * the checks in parallel; the other rows have one, timed by last_event_at.
 *
 *		no row yet					-> created in s
 *		t < t0						-> stale, nothing changes
 *		s = s0						-> refresh of the other fields
 *		s0 -> s legal				-> applied, history row
 *		t = t0 and s -> s0 legal	-> stale (it precedes the current state)
 *		otherwise					-> illegal_transition, nothing changes
 *
 * A NULL t is newer than any time.  The primary effects of a delivery
 * decide its outcome; if one of them is stale or illegal nothing changes.
 * Consequences on other entities (a Celcoin check moving its proposal, an
 * approved Fitbank closure closing the account) apply only when legal.
 *
 * Serialisation and order.  Rows are locked with FOR UPDATE strength (row
 * locks, not lock-table entries, so a million-row COPY is fine), in a fixed
 * order (table, then key) so that two deliveries never wait on each other
 * in a cycle.  A row that does not exist yet can only be created, so its
 * content is known at once: it is inserted right there, in that same order,
 * and the insertion is its lock (a speculative insertion, as for INSERT ...
 * ON CONFLICT DO NOTHING; if another session created it first, we lock
 * that one instead).  store.c does the reading and writing.  If the
 * delivery then turns out stale or illegal elsewhere, the rows it created
 * are deleted again.  rebuild() replays deliveries in inbox id order, so
 * live processing must also happen in id order for each row: each row
 * remembers the last id processed against it (last_seen_id, written for
 * every outcome), and a delivery whose id is lower than that takes a fresh
 * one before it goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/resowner.h"

/* The state tables, in locking order */
typedef enum ObTable
{
	OB_T_ACCOUNT = 0,
	OB_T_PROPOSAL,
	OB_T_DOCUMENT,
	OB_T_CLOSURE,
	OB_NTABLES
} ObTable;

/* Column name of each field */
static const char *const field_names[OB_NFIELDS] = {
	[OB_F_ENABLED] = "enabled",
	[OB_F_TAX_ID] = "tax_id",
	[OB_F_TAX_ID_RAW] = "tax_id_raw",
	[OB_F_HOLDER_NAME] = "holder_name",
	[OB_F_BANK] = "bank",
	[OB_F_BRANCH] = "branch",
	[OB_F_NUMBER] = "number",
	[OB_F_DIGIT] = "digit",
	[OB_F_REASON] = "reason",
	[OB_F_CLIENT_CODE] = "client_code",
	[OB_F_PERSON_TYPE] = "person_type",
	[OB_F_ACCOUNT_KEY] = "account_key",
	[OB_F_MESSAGE] = "message",
	[OB_F_DOCUMENT_TYPE] = "document_type",
	[OB_F_DOCUMENT_TYPE_RAW] = "document_type_raw",
	[OB_F_SIGNER] = "signer",
	[OB_F_FILE_NAME] = "file_name",
	[OB_F_URL] = "url",
	[OB_F_EXPIRES_AT] = "expires_at",
	[OB_F_PARTNER_ID] = "partner_id",
	[OB_F_BUSINESS_UNIT_ID] = "business_unit_id",
	[OB_F_ACCOUNTS_KEY] = "accounts_key",
};

#define OB_MAX_STATUS_COLS 3
#define OB_MAX_ATTEMPTS 8		/* rounds of lock-or-create before giving up */
#define OB_MAX_TABLE_FIELDS 16

static const char *const table_names[OB_NTABLES] = {"account", "proposal", "document", "closure"};

/* What the pipeline knows of each state table */
typedef struct TableDef
{
	const char *keycol;
	int			nstatus;
	const char *statuscol[OB_MAX_STATUS_COLS];
	const char *statustime[OB_MAX_STATUS_COLS];	/* NULL: last_event_at */
	int			nfields;
	ObField		fields[OB_MAX_TABLE_FIELDS];
	bool		has_flow;		/* proposal.flow: which check came first */
} TableDef;

static const TableDef tables[OB_NTABLES] = {
	{"account_key", 1, {"status"}, {NULL},
		11, {OB_F_ENABLED, OB_F_TAX_ID, OB_F_TAX_ID_RAW, OB_F_HOLDER_NAME, OB_F_BANK,
			OB_F_BRANCH, OB_F_NUMBER, OB_F_DIGIT, OB_F_REASON, OB_F_PARTNER_ID,
		OB_F_BUSINESS_UNIT_ID}, false},
	{"proposal_key", 3, {"status", "background_check", "documentscopy"},
		{"status_at", "background_check_at", "documentscopy_at"},
		9, {OB_F_TAX_ID, OB_F_TAX_ID_RAW, OB_F_PERSON_TYPE, OB_F_CLIENT_CODE, OB_F_ACCOUNT_KEY,
		OB_F_MESSAGE, OB_F_PARTNER_ID, OB_F_BUSINESS_UNIT_ID, OB_F_ACCOUNTS_KEY}, true},
	{"document_key", 1, {"status"}, {NULL},
		13, {OB_F_DOCUMENT_TYPE, OB_F_DOCUMENT_TYPE_RAW, OB_F_SIGNER, OB_F_ACCOUNT_KEY,
			OB_F_TAX_ID, OB_F_TAX_ID_RAW, OB_F_FILE_NAME, OB_F_URL, OB_F_EXPIRES_AT,
		OB_F_REASON, OB_F_MESSAGE, OB_F_PARTNER_ID, OB_F_BUSINESS_UNIT_ID}, false},
	{"account_key", 1, {"status"}, {NULL},
		3, {OB_F_MESSAGE, OB_F_PARTNER_ID, OB_F_BUSINESS_UNIT_ID}, false},
};

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
	int			fields[OB_MAX_TABLE_FIELDS];
	int			first_event_at;
	int			last_event_at;
	int			last_inbox_id;
	int			last_seen_id;
	int			last_received_at;	/* -1: none (a 0.1.0 schema) */
	int			flow;			/* -1: none */
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

/* One row a delivery touches, and what it does to each status column */
typedef struct RowTarget
{
	ObTable		table;
	char	   *key;
	bool		exists;
	bool		created_here;	/* inserted by this delivery (before a restart) */
	ObStoreRow	row;			/* where it is */
	Datum	   *values;			/* its columns, as found or last written */
	bool	   *nulls;
	const char *cur[OB_MAX_STATUS_COLS];	/* current statuses; NULL when unset */
	bool		has_t0[OB_MAX_STATUS_COLS];
	TimestampTz t0[OB_MAX_STATUS_COLS]; /* time of each current status */
	int64		seen_id;
	ObEffect   *effect[OB_MAX_STATUS_COLS];	/* the effect on each status column */
	const char *next[OB_MAX_STATUS_COLS];	/* statuses to write; NULL = untouched */
	bool		changed[OB_MAX_STATUS_COLS];	/* created or moved: a history row */
	bool		write;			/* anything to write besides last_seen_id */
} RowTarget;

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
		cols->fields[f] = derive_col(s, field_names[t->fields[f]]);
	cols->first_event_at = derive_col(s, "first_event_at");
	cols->last_event_at = derive_col(s, "last_event_at");
	cols->last_inbox_id = derive_col(s, "last_inbox_id");
	cols->last_seen_id = derive_col(s, "last_seen_id");
	cols->last_received_at = derive_col_optional(s, "last_received_at");
	cols->flow = t->has_flow ? derive_col(s, "flow") : -1;
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

/*
 * The value of a field, as its column's type reads the text detect.c made
 * of it (a canonical tax id, an ISO time, a document type label...).
 */
static Datum
derive_field_datum(ObField field, const char *v)
{
	switch (field)
	{
		case OB_F_ENABLED:
		case OB_F_SIGNER:
			return DirectFunctionCall1(boolin, CStringGetDatum(v));
		case OB_F_TAX_ID:
			{
				int64		taxid;
				const char *problem = onboarding_taxid_parse(v, strlen(v), &taxid);

				if (problem != NULL)
					elog(ERROR, "tax id \"%s\" passed as valid is not: %s", v, problem);
				return Int64GetDatum(taxid);
			}
		case OB_F_DOCUMENT_TYPE:
			{
				Oid			label = onboarding_enum_oid(OB_ENUM_DOCUMENT_TYPE, v);

				if (!OidIsValid(label))
					elog(ERROR, "\"%s\" is not a label of onboarding.document_type", v);
				return ObjectIdGetDatum(label);
			}
		case OB_F_EXPIRES_AT:
			return DirectFunctionCall3(timestamptz_in, CStringGetDatum(v),
									   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		case OB_F_ACCOUNTS_KEY:
			return DirectFunctionCall1(jsonb_in, CStringGetDatum(v));
		default:
			return CStringGetTextDatum(v);
	}
}

/* Find or add the row target of an effect. */
static RowTarget *
derive_target(List **targets, ObEffect *e)
{
	int			col;
	ObTable		table = derive_table(e->entity, &col);
	ListCell   *lc;
	RowTarget  *r;

	foreach(lc, *targets)
	{
		r = (RowTarget *) lfirst(lc);
		if (r->table == table && strcmp(r->key, e->key) == 0)
			break;
	}
	if (lc == NULL)
	{
		r = palloc0(sizeof(RowTarget));
		r->table = table;
		r->key = e->key;
		*targets = lappend(*targets, r);
	}
	/* the first (primary) effect on a column wins */
	if (r->effect[col] == NULL)
		r->effect[col] = e;
	return r;
}

/* Locking order: table, then key. */
static int
derive_target_cmp(const ListCell *a, const ListCell *b)
{
	RowTarget  *ra = (RowTarget *) lfirst(a);
	RowTarget  *rb = (RowTarget *) lfirst(b);

	if (ra->table != rb->table)
		return ra->table < rb->table ? -1 : 1;
	return strcmp(ra->key, rb->key);
}

/*
 * Lock a row (read it as the snapshot sees it, for a dry run) and read its
 * statuses and ordering columns.
 */
static bool
derive_lock(ObDelivery *d, RowTarget *r, ObLockMode mode)
{
	const TableDef *t = &tables[r->table];
	TableCols  *cols;
	ObStore    *s = derive_open(r->table, &cols);
	ObFound		found;

	r->values = palloc(cols->natts * sizeof(Datum));
	r->nulls = palloc(cols->natts * sizeof(bool));
	found = onboarding_store_find(s, d->provider, r->key, mode, r->values, r->nulls, &r->row);
	if (found == OB_WOULD_BLOCK)
		return false;
	r->exists = (found == OB_FOUND);
	r->created_here = false;
	for (int c = 0; c < OB_MAX_STATUS_COLS; c++)
	{
		r->cur[c] = NULL;
		r->has_t0[c] = false;
	}
	r->seen_id = 0;
	if (!r->exists)
		return true;
	for (int c = 0; c < t->nstatus; c++)
	{
		int			st = cols->status[c];
		int			tt = cols->statustime[c] >= 0 ? cols->statustime[c] : cols->last_event_at;

		if (!r->nulls[st])
			r->cur[c] = onboarding_status_from_oid(derive_graph(r->table, c),
												   DatumGetObjectId(r->values[st]));
		r->has_t0[c] = !r->nulls[tt];
		if (r->has_t0[c])
			r->t0[c] = DatumGetTimestampTz(r->values[tt]);
	}
	if (!r->nulls[cols->last_seen_id])
		r->seen_id = DatumGetInt64(r->values[cols->last_seen_id]);
	return true;
}

/* The verdict of §6 for one status column */
typedef enum Verdict
{
	V_CREATE,					/* first status of the row or column */
	V_REFRESH,					/* same status: other fields only */
	V_CHANGE,					/* legal transition */
	V_STALE,
	V_ILLEGAL
} Verdict;

static const char *const verdict_names[] = {"create", "refresh", "change", "stale", "illegal"};

/* Apply the rules of SPEC §6 to one effect on its row. */
static Verdict
derive_verdict(ObDelivery *d, RowTarget *r, int col, ObEffect *e)
{
	const char *s0 = r->cur[col];
	bool		timed = d->has_event_at && r->has_t0[col];

	if (!r->exists || r->created_here || s0 == NULL)
		return V_CREATE;
	if (d->forced)
		return strcmp(s0, e->status) == 0 ? V_REFRESH : V_CHANGE;
	if (timed && d->event_at < r->t0[col])
		return V_STALE;
	if (strcmp(s0, e->status) == 0)
		return V_REFRESH;
	if (onboarding_transition_legal(e->entity, d->provider, s0, e->status))
		return V_CHANGE;
	if (timed && d->event_at == r->t0[col] &&
		onboarding_transition_legal(e->entity, d->provider, e->status, s0))
		return V_STALE;
	return V_ILLEGAL;
}

/*
 * Judge every effect.  Returns false (with the outcome decided) when a
 * primary effect is stale or illegal; secondary effects that do not apply
 * are dropped.
 */
static bool
derive_judge(ObDelivery *d, List *targets)
{
	ListCell   *lc;

	foreach(lc, targets)
	{
		RowTarget  *r = (RowTarget *) lfirst(lc);

		r->write = false;
		for (int c = 0; c < tables[r->table].nstatus; c++)
		{
			ObEffect   *e = r->effect[c];
			Verdict		v;

			r->next[c] = NULL;
			r->changed[c] = false;
			if (e == NULL)
				continue;
			v = derive_verdict(d, r, c, e);

			/*
			 * A Celcoin check moves its proposal to in_analysis only from
			 * created or pending (SPEC §5); later stages stay where they are.
			 */
			if (!e->primary && e->entity == OB_PROPOSAL && v == V_CHANGE &&
				strcmp(e->status, "in_analysis") == 0 &&
				strcmp(r->cur[c], "created") != 0 && strcmp(r->cur[c], "pending") != 0)
				v = V_ILLEGAL;

			e->from = r->exists ? r->cur[c] : NULL;
			e->verdict = verdict_names[v];
			if (v == V_STALE || v == V_ILLEGAL)
			{
				if (!e->primary)
				{
					e->verdict = "skipped";
					r->effect[c] = NULL;
					continue;
				}
				if (v == V_STALE)
					return onboarding_decide(d, OB_STALE,
									 "%s %s is %s since %s; this %s event of %s precedes it",
									 onboarding_entity_names[e->entity], r->key, r->cur[c],
									 onboarding_time_text(r->t0[c]), e->status,
									 onboarding_time_text(d->event_at));
				return onboarding_decide(d, OB_ILLEGAL,
								 "%s %s: %s -> %s is not a legal transition",
								 onboarding_entity_names[e->entity], r->key, r->cur[c], e->status);
			}
			r->next[c] = e->status;	/* a refresh rewrites it, and its time */
			r->changed[c] = (v != V_REFRESH);
			r->write = true;
		}
	}
	return true;
}

/*
 * Rewrite a row with only its delivery ids changed: last_seen_id, and with
 * both, last_inbox_id too (after a renumbering).
 */
static void
derive_touch(ObDelivery *d, RowTarget *r, bool both)
{
	TableCols  *cols;
	ObStore    *s = derive_open(r->table, &cols);

	r->values[cols->last_seen_id] = Int64GetDatum(d->id);
	if (both)
		r->values[cols->last_inbox_id] = Int64GetDatum(d->id);
	onboarding_store_update(s, &r->row, r->values, r->nulls);
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

/*
 * Insert or update one row.  Returns false when an insert lost a race with
 * another session creating the same row.
 */
static bool
derive_write(ObDelivery *d, RowTarget *r)
{
	const TableDef *t = &tables[r->table];
	TableCols  *cols;
	ObStore    *s = derive_open(r->table, &cols);
	Datum	   *values = palloc(cols->natts * sizeof(Datum));
	bool	   *nulls = palloc(cols->natts * sizeof(bool));
	const char *provider_status = NULL;
	int			flow = 0;
	bool		inserting = !r->exists;

	if (inserting)
	{
		for (int i = 0; i < cols->natts; i++)
			nulls[i] = true;
		values[cols->provider] = ObjectIdGetDatum(onboarding_provider_oid(d->provider));
		nulls[cols->provider] = false;
		values[cols->key] = CStringGetTextDatum(r->key);
		nulls[cols->key] = false;
	}
	else
	{
		memcpy(values, r->values, cols->natts * sizeof(Datum));
		memcpy(nulls, r->nulls, cols->natts * sizeof(bool));
	}

	/* statuses (each with its own time, where it has one) */
	for (int c = 0; c < t->nstatus; c++)
	{
		ObEffect   *e = r->effect[c];

		if (e != NULL && e->primary && !d->forced && c == 0)
			provider_status = e->label ? e->label : e->status_raw;
		if (e != NULL && r->changed[c] && c > 0)
			flow = c;			/* 1: background check first, 2: documentscopy first */
		if (r->next[c] == NULL)
			continue;
		values[cols->status[c]] = ObjectIdGetDatum(onboarding_status_oid(derive_graph(r->table, c),
																		 r->next[c]));
		nulls[cols->status[c]] = false;
		if (cols->statustime[c] >= 0)
			derive_bound(&values[cols->statustime[c]], &nulls[cols->statustime[c]],
						 d->has_event_at, d->event_at, true);
	}
	if (provider_status != NULL)
	{
		values[cols->provider_status] = CStringGetTextDatum(provider_status);
		nulls[cols->provider_status] = false;
	}

	/* other fields: the first effect on this row that carries one provides it */
	for (int f = 0; f < t->nfields; f++)
	{
		const char *v = NULL;

		for (int c = 0; c < t->nstatus && v == NULL; c++)
			if (r->effect[c] != NULL)
				v = r->effect[c]->fields[t->fields[f]];
		if (v == NULL)
			continue;
		values[cols->fields[f]] = derive_field_datum(t->fields[f], v);
		nulls[cols->fields[f]] = false;
	}

	derive_bound(&values[cols->first_event_at], &nulls[cols->first_event_at],
				 d->has_event_at, d->event_at, false);
	derive_bound(&values[cols->last_event_at], &nulls[cols->last_event_at],
				 d->has_event_at, d->event_at, true);
	if (cols->last_received_at >= 0)
		derive_bound(&values[cols->last_received_at], &nulls[cols->last_received_at],
					 d->has_received_at, d->received_at, true);
	values[cols->last_inbox_id] = values[cols->last_seen_id] = Int64GetDatum(d->id);
	nulls[cols->last_inbox_id] = nulls[cols->last_seen_id] = false;

	/* proposal.flow: set once, by the first check to arrive before any other */
	if (cols->flow >= 0 && flow > 0 && nulls[cols->flow] &&
		(inserting || (r->nulls[cols->status[1]] && r->nulls[cols->status[2]])))
	{
		values[cols->flow] = Int16GetDatum((int16) flow);
		nulls[cols->flow] = false;
	}

	if (inserting)
	{
		if (!onboarding_store_create(s, values, nulls, &r->row))
			return false;
		r->exists = true;
		r->created_here = true;
	}
	else
		onboarding_store_update(s, &r->row, values, nulls);
	r->values = values;
	r->nulls = nulls;
	return true;
}

/* One history row per status column that changed. */
static void
derive_history(ObDelivery *d, RowTarget *r)
{
	for (int c = 0; c < tables[r->table].nstatus; c++)
	{
		ObStore    *s;
		HistoryCols *cols = &history_cols;
		Datum	   *values;
		bool	   *nulls;
		ObEffect   *e = r->effect[c];
		const char *from = r->created_here ? NULL : r->cur[c];
		const char *reason = d->forced && e ? e->fields[OB_F_REASON] : NULL;

		if (!r->changed[c])
			continue;
		s = derive_open_history();
		values = palloc(cols->natts * sizeof(Datum));
		nulls = palloc(cols->natts * sizeof(bool));
		for (int i = 0; i < cols->natts; i++)
			nulls[i] = true;
#define SET(col, datum) (values[cols->col] = (datum), nulls[cols->col] = false)
		SET(provider, ObjectIdGetDatum(onboarding_provider_oid(d->provider)));
		SET(entity, CStringGetTextDatum(onboarding_entity_names[derive_entity(r->table, c)]));
		SET(entity_key, CStringGetTextDatum(r->key));
		if (from)
			SET(from_status, CStringGetTextDatum(from));
		SET(to_status, CStringGetTextDatum(r->next[c]));
		if (d->has_event_at)
			SET(event_at, TimestampTzGetDatum(d->event_at));
		SET(inbox_id, Int64GetDatum(d->id));
		if (reason)
			SET(reason, CStringGetTextDatum(reason));
#undef SET
		onboarding_store_append(s, values, nulls);
	}
}

/*
 * Lock a row, or create it when it does not exist yet (see the header):
 * its statuses are those of the effects on it.  Another session creating
 * it first makes us lock that one.  Returns false when mode is
 * OB_LOCK_NOWAIT and the row is held by another transaction.
 */
static bool
derive_lock_or_create(ObDelivery *d, RowTarget *r, ObLockMode mode)
{
	for (int attempt = 1; attempt <= OB_MAX_ATTEMPTS; attempt++)
	{
		if (!derive_lock(d, r, mode))
			return false;
		if (r->exists || mode == OB_LOCK_NONE)
			return true;
		for (int c = 0; c < tables[r->table].nstatus; c++)
		{
			r->next[c] = r->effect[c] ? r->effect[c]->status : NULL;
			r->changed[c] = (r->next[c] != NULL);
		}
		if (derive_write(d, r))
			return true;		/* inserted: r->created_here */
	}
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not lock or create onboarding.%s row \"%s\"",
					table_names[r->table], onboarding_clip(r->key, 64)),
			 errdetail("The row was created and removed again by others %d times.",
					   OB_MAX_ATTEMPTS)));
	return false;				/* keep compiler quiet */
}

/*
 * Run a lock attempt in a subtransaction of its own; with keep, its locks
 * stay with the transaction when every row was had, otherwise (and always
 * without keep) the subtransaction rolls back and the locks are let go.
 * Returns the row that would have blocked, or NULL.
 */
static RowTarget *
derive_lock_attempt(ObDelivery *d, List *targets, ObLockMode mode, bool keep)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	RowTarget  *volatile blocked = NULL;
	ListCell   *lc;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		foreach(lc, targets)
		{
			RowTarget  *r = (RowTarget *) lfirst(lc);

			if (!derive_lock_or_create(d, r, mode))
			{
				blocked = r;
				break;
			}
		}
	}
	PG_CATCH();
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
 * Lock every row of a delivery that touches several (a consequence on
 * another entity, several files), or none: a transaction that waits for
 * one row while it holds another can close a cycle with a transaction
 * that takes the same rows in another order (several deliveries in one
 * transaction).  So the rows are taken without waiting, in a
 * subtransaction; if one is held, the subtransaction lets go of the
 * others, we wait for that one holding nothing, and start again.  A
 * transaction of one delivery therefore never waits while it holds a row,
 * and can never be the one a deadlock is broken on.  Only the first such
 * delivery of a transaction needs this: once it holds rows, a transaction
 * is one of several deliveries anyway.
 */
static void
derive_lock_all_or_none(ObDelivery *d, List *targets)
{
	for (;;)
	{
		RowTarget  *blocked = derive_lock_attempt(d, targets, OB_LOCK_NOWAIT, true);

		if (blocked == NULL)
			return;
		CHECK_FOR_INTERRUPTS();
		/* wait until whoever holds it is done, then let go of it again */
		(void) derive_lock_attempt(d, list_make1(blocked), OB_LOCK_WAIT, false);
	}
}

/*
 * The part of a derivation that touches tables: lock (creating what is
 * new), renumber, judge, write, and write history.
 */
static void
derive_locked(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, List *targets,
			  bool dry_run)
{
	ListCell   *lc;
	bool		renumber = false;

	if (dry_run)
		foreach(lc, targets)
			(void) derive_lock_or_create(d, (RowTarget *) lfirst(lc), OB_LOCK_NONE);
	else if (list_length(targets) > 1 && !onboarding_store_holds_rows())
		derive_lock_all_or_none(d, targets);
	else
		foreach(lc, targets)
			(void) derive_lock_or_create(d, (RowTarget *) lfirst(lc), OB_LOCK_WAIT);
	foreach(lc, targets)
	{
		RowTarget  *r = (RowTarget *) lfirst(lc);

		if (r->exists && !r->created_here && r->seen_id > d->id)
			renumber = true;
	}
	if (renumber && !dry_run)
	{
		d->id = onboarding_next_inbox_id(inbox, atts);
		foreach(lc, targets)
		{
			RowTarget  *r = (RowTarget *) lfirst(lc);

			if (r->created_here)
				derive_touch(d, r, true);
		}
	}

	if (!derive_judge(d, targets))
	{
		/* stale or illegal: undo what was created, remember the rest saw it */
		if (!dry_run)
			foreach(lc, targets)
			{
				RowTarget  *r = (RowTarget *) lfirst(lc);

				if (r->created_here)
					onboarding_store_delete(onboarding_store((ObStoreId) r->table), &r->row, r->values);
				else if (r->exists)
					derive_touch(d, r, false);
			}
		return;
	}
	if (!dry_run)
	{
		foreach(lc, targets)
		{
			RowTarget  *r = (RowTarget *) lfirst(lc);

			if (r->created_here)
				continue;		/* written when it was created */
			if (!r->write)
				derive_touch(d, r, false);
			else if (!derive_write(d, r))
				elog(ERROR, "locked row of onboarding.%s vanished", table_names[r->table]);
		}
		foreach(lc, targets)
			derive_history(d, (RowTarget *) lfirst(lc));
	}
}

/*
 * Derive state from a detected delivery: classify, lock (creating what is
 * new), order, judge, write.  Sets d->outcome (and d->decided when not
 * applied) and may renumber d->id.  A dry run (explain) reads without
 * locking and writes nothing.
 */
void
onboarding_derive(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, bool dry_run)
{
	List	   *targets = NIL;
	ListCell   *lc;

	if (d->effects == NIL)
	{
		onboarding_decide(d, OB_UNRECOGNIZED, "the delivery asks for no state change");
		return;
	}
	Assert(d->provider >= 0 && d->provider < OB_NPROVIDERS);

	if (!onboarding_rules_classify(d))
		return;
	foreach(lc, d->effects)
		(void) derive_target(&targets, (ObEffect *) lfirst(lc));
	list_sort(targets, derive_target_cmp);

	onboarding_store_begin();
	derive_locked(inbox, atts, d, targets, dry_run);
}

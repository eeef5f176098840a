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
 * Serialisation and order.  Rows are locked with SELECT ... FOR UPDATE
 * (row locks, not lock-table entries, so a million-row COPY is fine), in a
 * fixed order (table, then key) so that two deliveries never wait on each
 * other in a cycle.  A row that does not exist yet can only be created, so
 * its content is known at once: it is inserted right there, in that same
 * order, and the insertion is its lock (INSERT ... ON CONFLICT DO NOTHING;
 * if another session created it first, we lock that one instead).  If the
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

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

/* The state tables, in locking order */
typedef enum ObTable
{
	OB_T_ACCOUNT = 0,
	OB_T_PROPOSAL,
	OB_T_DOCUMENT,
	OB_T_CLOSURE,
	OB_NTABLES
} ObTable;

/* SQL name and type of each field */
static const struct
{
	const char *name;
	const char *type;
}			field_sql[OB_NFIELDS] = {
	[OB_F_ENABLED] = {"enabled", "pg_catalog.bool"},
	[OB_F_TAX_ID] = {"tax_id", "onboarding.taxid"},
	[OB_F_TAX_ID_RAW] = {"tax_id_raw", "pg_catalog.text"},
	[OB_F_HOLDER_NAME] = {"holder_name", "pg_catalog.text"},
	[OB_F_BANK] = {"bank", "pg_catalog.text"},
	[OB_F_BRANCH] = {"branch", "pg_catalog.text"},
	[OB_F_NUMBER] = {"number", "pg_catalog.text"},
	[OB_F_DIGIT] = {"digit", "pg_catalog.text"},
	[OB_F_REASON] = {"reason", "pg_catalog.text"},
	[OB_F_CLIENT_CODE] = {"client_code", "pg_catalog.text"},
	[OB_F_PERSON_TYPE] = {"person_type", "pg_catalog.text"},
	[OB_F_ACCOUNT_KEY] = {"account_key", "pg_catalog.text"},
	[OB_F_MESSAGE] = {"message", "pg_catalog.text"},
	[OB_F_DOCUMENT_TYPE] = {"document_type", "onboarding.document_type"},
	[OB_F_DOCUMENT_TYPE_RAW] = {"document_type_raw", "pg_catalog.text"},
	[OB_F_SIGNER] = {"signer", "pg_catalog.bool"},
	[OB_F_FILE_NAME] = {"file_name", "pg_catalog.text"},
	[OB_F_URL] = {"url", "pg_catalog.text"},
	[OB_F_EXPIRES_AT] = {"expires_at", "pg_catalog.timestamptz"},
	[OB_F_PARTNER_ID] = {"partner_id", "pg_catalog.text"},
	[OB_F_BUSINESS_UNIT_ID] = {"business_unit_id", "pg_catalog.text"},
	[OB_F_ACCOUNTS_KEY] = {"accounts_key", "pg_catalog.jsonb"},
};

#define OB_MAX_STATUS_COLS 3
#define OB_MAX_ATTEMPTS 8		/* rounds of lock-or-create before giving up */
#define OB_MAX_TABLE_FIELDS 16

/* What the pipeline knows of each state table */
typedef struct TableDef
{
	const char *name;
	const char *keycol;
	int			nstatus;
	const char *statuscol[OB_MAX_STATUS_COLS];
	const char *statustype[OB_MAX_STATUS_COLS];
	const char *statustime[OB_MAX_STATUS_COLS];	/* NULL: last_event_at */
	int			nfields;
	ObField		fields[OB_MAX_TABLE_FIELDS];
	bool		has_flow;		/* proposal.flow: which check came first */
} TableDef;

static const TableDef tables[OB_NTABLES] = {
	{"account", "account_key", 1, {"status"}, {"onboarding.account_status"}, {NULL},
		11, {OB_F_ENABLED, OB_F_TAX_ID, OB_F_TAX_ID_RAW, OB_F_HOLDER_NAME, OB_F_BANK,
			OB_F_BRANCH, OB_F_NUMBER, OB_F_DIGIT, OB_F_REASON, OB_F_PARTNER_ID,
		OB_F_BUSINESS_UNIT_ID}, false},
	{"proposal", "proposal_key", 3, {"status", "background_check", "documentscopy"},
		{"onboarding.proposal_status", "onboarding.check_status", "onboarding.check_status"},
		{"status_at", "background_check_at", "documentscopy_at"},
		9, {OB_F_TAX_ID, OB_F_TAX_ID_RAW, OB_F_PERSON_TYPE, OB_F_CLIENT_CODE, OB_F_ACCOUNT_KEY,
		OB_F_MESSAGE, OB_F_PARTNER_ID, OB_F_BUSINESS_UNIT_ID, OB_F_ACCOUNTS_KEY}, true},
	{"document", "document_key", 1, {"status"}, {"onboarding.document_status"}, {NULL},
		13, {OB_F_DOCUMENT_TYPE, OB_F_DOCUMENT_TYPE_RAW, OB_F_SIGNER, OB_F_ACCOUNT_KEY,
			OB_F_TAX_ID, OB_F_TAX_ID_RAW, OB_F_FILE_NAME, OB_F_URL, OB_F_EXPIRES_AT,
		OB_F_REASON, OB_F_MESSAGE, OB_F_PARTNER_ID, OB_F_BUSINESS_UNIT_ID}, false},
	{"closure", "account_key", 1, {"status"}, {"onboarding.closure_status"}, {NULL},
		3, {OB_F_MESSAGE, OB_F_PARTNER_ID, OB_F_BUSINESS_UNIT_ID}, false},
};

/* Prepared plans per table, kept for the life of the backend */
typedef struct TablePlans
{
	SPIPlanPtr	peek;			/* lock without FOR UPDATE, for explain() */
	SPIPlanPtr	lock;
	SPIPlanPtr	insert;
	SPIPlanPtr	update;
	SPIPlanPtr	touch;			/* last_seen_id only */
	SPIPlanPtr	reid;			/* last_inbox_id and last_seen_id: after a renumbering */
	SPIPlanPtr	remove;			/* a row this delivery created after all */
} TablePlans;

static TablePlans plans[OB_NTABLES];
static SPIPlanPtr history_plan = NULL;

/* Set while a force_status() delivery writes state; see the state trigger. */
static bool override_active = false;

/* Set while a derivation writes state; see the state trigger. */
static bool pipeline_writing = false;

/* One row a delivery touches, and what it does to each status column */
typedef struct RowTarget
{
	ObTable		table;
	char	   *key;
	bool		exists;
	bool		created_here;	/* inserted by this delivery (before a restart) */
	const char *cur[OB_MAX_STATUS_COLS];	/* current statuses; NULL when unset */
	bool		has_t0[OB_MAX_STATUS_COLS];
	TimestampTz t0[OB_MAX_STATUS_COLS]; /* time of each current status */
	int64		seen_id;
	ObEffect   *effect[OB_MAX_STATUS_COLS];	/* the effect on each status column */
	const char *next[OB_MAX_STATUS_COLS];	/* statuses to write; NULL = untouched */
	bool		changed[OB_MAX_STATUS_COLS];	/* created or moved: a history row */
	bool		write;			/* anything to write besides last_seen_id */
} RowTarget;

/* Is a force_status() delivery writing state right now? */
bool
onboarding_state_override(void)
{
	return override_active;
}

/* Is a derivation writing state right now? */
bool
onboarding_pipeline_writing(void)
{
	return pipeline_writing;
}

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

/* Number of parameters of the insert and update plans of a table. */
static int
derive_nparams(const TableDef *t)
{
	/* provider, key, statuses, provider_status, fields, event_at, inbox id, flow */
	return 2 + t->nstatus + 1 + t->nfields + 2 + (t->has_flow ? 1 : 0);
}

/* Append the condition that picks one row: provider $1, key $2 (qualified operators). */
static void
derive_where_key(StringInfo sql, const TableDef *t)
{
	appendStringInfo(sql, " WHERE provider OPERATOR(pg_catalog.=) $1::onboarding.provider"
					 " AND %s OPERATOR(pg_catalog.=) $2", t->keycol);
}

/* Prepare the plans of a table (once per backend). */
static void
derive_prepare_table(ObTable which)
{
	const TableDef *t = &tables[which];
	TablePlans *p = &plans[which];
	StringInfoData sql;
	Oid			types[2 + OB_MAX_STATUS_COLS + 1 + OB_MAX_TABLE_FIELDS + 3];
	int			n = derive_nparams(t);
	int			param;
	int			tparam = 2 + t->nstatus + 1 + t->nfields + 1;	/* event_at */

	for (int i = 0; i < n; i++)
		types[i] = TEXTOID;
	types[tparam - 1] = TIMESTAMPTZOID;
	types[tparam] = INT8OID;
	if (t->has_flow)
		types[tparam + 1] = INT4OID;

	initStringInfo(&sql);

	/* lock */
	appendStringInfoString(&sql, "SELECT ");
	for (int c = 0; c < t->nstatus; c++)
		appendStringInfo(&sql, "%s::pg_catalog.text, ", t->statuscol[c]);
	for (int c = 0; c < t->nstatus; c++)
		appendStringInfo(&sql, "%s, ", t->statustime[c] ? t->statustime[c] : "last_event_at");
	appendStringInfo(&sql, "last_seen_id FROM onboarding.%s", t->name);
	derive_where_key(&sql, t);
	p->peek = onboarding_spi_prepare(sql.data, 2, types);
	appendStringInfoString(&sql, " FOR UPDATE");
	p->lock = onboarding_spi_prepare(sql.data, 2, types);

	/* insert */
	resetStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO onboarding.%s (provider, %s", t->name, t->keycol);
	for (int c = 0; c < t->nstatus; c++)
		appendStringInfo(&sql, ", %s", t->statuscol[c]);
	appendStringInfoString(&sql, ", provider_status");
	for (int f = 0; f < t->nfields; f++)
		appendStringInfo(&sql, ", %s", field_sql[t->fields[f]].name);
	appendStringInfoString(&sql, ", first_event_at, last_event_at, last_inbox_id, last_seen_id");
	for (int c = 0; c < t->nstatus; c++)
		if (t->statustime[c])
			appendStringInfo(&sql, ", %s", t->statustime[c]);
	if (t->has_flow)
		appendStringInfoString(&sql, ", flow");
	appendStringInfoString(&sql, ") VALUES ($1::onboarding.provider, $2");
	param = 3;
	for (int c = 0; c < t->nstatus; c++)
		appendStringInfo(&sql, ", $%d::%s", param++, t->statustype[c]);
	appendStringInfo(&sql, ", $%d", param++);
	for (int f = 0; f < t->nfields; f++)
		appendStringInfo(&sql, ", $%d::%s", param++, field_sql[t->fields[f]].type);
	appendStringInfo(&sql, ", $%d, $%d, $%d, $%d", param, param, param + 1, param + 1);
	for (int c = 0; c < t->nstatus; c++)
		if (t->statustime[c])
			appendStringInfo(&sql, ", CASE WHEN $%d IS NOT NULL THEN $%d END", 3 + c, param);
	if (t->has_flow)
		appendStringInfo(&sql, ", $%d::pg_catalog.int2", param + 2);
	appendStringInfo(&sql, ") ON CONFLICT (provider, %s) DO NOTHING", t->keycol);
	p->insert = onboarding_spi_prepare(sql.data, n, types);

	/* update */
	resetStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE onboarding.%s SET ", t->name);
	param = 3;
	for (int c = 0; c < t->nstatus; c++)
		appendStringInfo(&sql, "%s = COALESCE($%d::%s, %s), ",
						 t->statuscol[c], param++, t->statustype[c], t->statuscol[c]);
	appendStringInfo(&sql, "provider_status = COALESCE($%d, provider_status)", param++);
	for (int f = 0; f < t->nfields; f++)
		appendStringInfo(&sql, ", %s = COALESCE($%d::%s, %s)", field_sql[t->fields[f]].name,
						 param++, field_sql[t->fields[f]].type, field_sql[t->fields[f]].name);
	appendStringInfo(&sql, ", first_event_at = LEAST(first_event_at, $%d)"
					 ", last_event_at = GREATEST(last_event_at, $%d)"
					 ", last_inbox_id = $%d, last_seen_id = $%d",
					 param, param, param + 1, param + 1);
	for (int c = 0; c < t->nstatus; c++)
		if (t->statustime[c])
			appendStringInfo(&sql, ", %s = CASE WHEN $%d IS NOT NULL THEN GREATEST(%s, $%d) ELSE %s END",
							 t->statustime[c], 3 + c, t->statustime[c], param, t->statustime[c]);
	if (t->has_flow)
		appendStringInfo(&sql, ", flow = COALESCE(flow, CASE WHEN background_check IS NULL"
						 " AND documentscopy IS NULL THEN $%d::pg_catalog.int2 END)", param + 2);
	derive_where_key(&sql, t);
	p->update = onboarding_spi_prepare(sql.data, n, types);

	/* touch: remember that a delivery was processed against the row */
	resetStringInfo(&sql);
	types[2] = INT8OID;
	appendStringInfo(&sql, "UPDATE onboarding.%s SET last_seen_id = $3", t->name);
	derive_where_key(&sql, t);
	p->touch = onboarding_spi_prepare(sql.data, 3, types);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE onboarding.%s SET last_inbox_id = $3, last_seen_id = $3", t->name);
	derive_where_key(&sql, t);
	p->reid = onboarding_spi_prepare(sql.data, 3, types);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM onboarding.%s", t->name);
	derive_where_key(&sql, t);
	p->remove = onboarding_spi_prepare(sql.data, 2, types);
	pfree(sql.data);
}

/* Prepare every plan the derivation uses, once per backend. */
static void
derive_prepare(void)
{
	Oid			types[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID, INT8OID, TEXTOID};

	if (history_plan != NULL)
		return;
	for (int t = 0; t < OB_NTABLES; t++)
		derive_prepare_table((ObTable) t);
	history_plan = onboarding_spi_prepare("INSERT INTO onboarding.history"
								  " (provider, entity, entity_key, from_status, to_status,"
								  "  event_at, inbox_id, reason)"
								  " VALUES ($1::onboarding.provider, $2, $3, $4, $5, $6, $7, $8)",
								  8, types);
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
 * Lock a row (SELECT ... FOR UPDATE; a plain SELECT for a dry run) and read
 * its statuses and ordering columns.
 */
static void
derive_lock(ObDelivery *d, RowTarget *r, bool dry_run)
{
	const TableDef *t = &tables[r->table];
	Datum		args[2];
	bool		isnull;

	args[0] = CStringGetTextDatum(onboarding_provider_names[d->provider]);
	args[1] = CStringGetTextDatum(r->key);
	if (SPI_execute_plan(dry_run ? plans[r->table].peek : plans[r->table].lock,
						 args, NULL, dry_run, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not lock onboarding.%s row", t->name);
	r->exists = SPI_processed > 0;
	for (int c = 0; c < OB_MAX_STATUS_COLS; c++)
	{
		r->cur[c] = NULL;
		r->has_t0[c] = false;
	}
	r->seen_id = 0;
	if (!r->exists)
		return;
	for (int c = 0; c < t->nstatus; c++)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *s = SPI_getvalue(tup, desc, c + 1);

		r->cur[c] = s ? onboarding_status_label(onboarding_entity_graph(derive_entity(r->table, c)), s) : NULL;
		r->t0[c] = DatumGetTimestampTz(SPI_getbinval(tup, desc, t->nstatus + c + 1, &isnull));
		r->has_t0[c] = !isnull;
	}
	r->seen_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											 2 * t->nstatus + 1, &isnull));
	if (isnull)
		r->seen_id = 0;
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
 * Run one of a table's row plans (touch, reid, remove) for a row; with_id
 * passes the delivery's id as $3.
 */
static void
derive_row_plan(ObDelivery *d, RowTarget *r, SPIPlanPtr plan, bool with_id, int expected)
{
	Datum		args[3];

	args[0] = CStringGetTextDatum(onboarding_provider_names[d->provider]);
	args[1] = CStringGetTextDatum(r->key);
	args[2] = Int64GetDatum(d->id);
	if (SPI_execute_plan(plan, args, NULL, false, 0) != expected)
		elog(ERROR, "could not update onboarding.%s", tables[r->table].name);
}

/*
 * Insert or update one row.  Returns false when an insert lost a race with
 * another session creating the same row.
 */
static bool
derive_write(ObDelivery *d, RowTarget *r)
{
	const TableDef *t = &tables[r->table];
	int			n PG_USED_FOR_ASSERTS_ONLY = derive_nparams(t);
	Datum		args[2 + OB_MAX_STATUS_COLS + 1 + OB_MAX_TABLE_FIELDS + 3];
	char		nulls[2 + OB_MAX_STATUS_COLS + 1 + OB_MAX_TABLE_FIELDS + 3];
	const char *provider_status = NULL;
	int			flow = 0;
	int			i = 0;
	int			rc;
	bool		inserting = !r->exists;

	memset(nulls, ' ', sizeof(nulls));
	args[i++] = CStringGetTextDatum(onboarding_provider_names[d->provider]);
	args[i++] = CStringGetTextDatum(r->key);
	for (int c = 0; c < t->nstatus; c++, i++)
	{
		ObEffect   *e = r->effect[c];

		if (r->next[c] != NULL)
			args[i] = CStringGetTextDatum(r->next[c]);
		else
			nulls[i] = 'n';
		if (e != NULL && e->primary && !d->forced && c == 0)
			provider_status = e->label ? e->label : e->status_raw;
		if (e != NULL && r->changed[c] && c > 0)
			flow = c;			/* 1: background check first, 2: documentscopy first */
	}
	if (provider_status != NULL)
		args[i] = CStringGetTextDatum(provider_status);
	else
		nulls[i] = 'n';
	i++;
	for (int f = 0; f < t->nfields; f++, i++)
	{
		const char *v = NULL;

		/* the first effect on this row that carries the field provides it */
		for (int c = 0; c < t->nstatus && v == NULL; c++)
			if (r->effect[c] != NULL)
				v = r->effect[c]->fields[t->fields[f]];
		if (v != NULL)
			args[i] = CStringGetTextDatum(v);
		else
			nulls[i] = 'n';
	}
	if (d->has_event_at)
		args[i] = TimestampTzGetDatum(d->event_at);
	else
		nulls[i] = 'n';
	i++;
	args[i++] = Int64GetDatum(d->id);
	if (t->has_flow)
	{
		if (flow > 0)
			args[i] = Int32GetDatum(flow);
		else
			nulls[i] = 'n';
		i++;
	}
	Assert(i == n);

	override_active = d->forced;
	PG_TRY();
	{
		rc = SPI_execute_plan(inserting ? plans[r->table].insert : plans[r->table].update,
							  args, nulls, false, 0);
	}
	PG_FINALLY();
	{
		override_active = false;
	}
	PG_END_TRY();
	if (rc != (inserting ? SPI_OK_INSERT : SPI_OK_UPDATE))
		elog(ERROR, "could not write onboarding.%s", t->name);
	if (inserting && SPI_processed == 0)
		return false;
	if (inserting)
	{
		r->exists = true;
		r->created_here = true;
	}
	return true;
}

/* One history row per status column that changed. */
static void
derive_history(ObDelivery *d, RowTarget *r)
{
	for (int c = 0; c < tables[r->table].nstatus; c++)
	{
		Datum		args[8];
		char		nulls[8];
		ObEffect   *e = r->effect[c];
		const char *from = r->created_here ? NULL : r->cur[c];
		const char *reason = d->forced && e ? e->fields[OB_F_REASON] : NULL;

		if (!r->changed[c])
			continue;
		memset(nulls, ' ', sizeof(nulls));
		args[0] = CStringGetTextDatum(onboarding_provider_names[d->provider]);
		args[1] = CStringGetTextDatum(onboarding_entity_names[derive_entity(r->table, c)]);
		args[2] = CStringGetTextDatum(r->key);
		if (from)
			args[3] = CStringGetTextDatum(from);
		else
			nulls[3] = 'n';
		args[4] = CStringGetTextDatum(r->next[c]);
		if (d->has_event_at)
			args[5] = TimestampTzGetDatum(d->event_at);
		else
			nulls[5] = 'n';
		args[6] = Int64GetDatum(d->id);
		if (reason)
			args[7] = CStringGetTextDatum(reason);
		else
			nulls[7] = 'n';
		if (SPI_execute_plan(history_plan, args, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write onboarding.history");
	}
}

/*
 * Lock a row, or create it when it does not exist yet (see the header):
 * its statuses are those of the effects on it.  Another session creating
 * it first makes us lock that one.
 */
static void
derive_lock_or_create(ObDelivery *d, RowTarget *r, bool dry_run)
{
	for (int attempt = 1; attempt <= OB_MAX_ATTEMPTS; attempt++)
	{
		derive_lock(d, r, dry_run);
		if (r->exists || dry_run)
			return;
		for (int c = 0; c < tables[r->table].nstatus; c++)
		{
			r->next[c] = r->effect[c] ? r->effect[c]->status : NULL;
			r->changed[c] = (r->next[c] != NULL);
		}
		if (derive_write(d, r))
			return;				/* inserted: r->created_here */
	}
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not lock or create onboarding.%s row \"%s\"",
					tables[r->table].name, r->key),
			 errdetail("The row was created and removed again by others %d times.",
					   OB_MAX_ATTEMPTS)));
}

/*
 * The part of a derivation that runs connected: lock (creating what is
 * new), renumber, judge, write, and write history.
 */
static void
derive_locked(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, List *targets,
			  bool dry_run)
{
	ListCell   *lc;
	bool		renumber = false;

	foreach(lc, targets)
	{
		RowTarget  *r = (RowTarget *) lfirst(lc);

		derive_lock_or_create(d, r, dry_run);
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
				derive_row_plan(d, r, plans[r->table].reid, true, SPI_OK_UPDATE);
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
					derive_row_plan(d, r, plans[r->table].remove, false, SPI_OK_DELETE);
				else if (r->exists)
					derive_row_plan(d, r, plans[r->table].touch, true, SPI_OK_UPDATE);
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
				derive_row_plan(d, r, plans[r->table].touch, true, SPI_OK_UPDATE);
			else if (!derive_write(d, r))
				elog(ERROR, "locked row of onboarding.%s vanished", tables[r->table].name);
		}
		foreach(lc, targets)
			derive_history(d, (RowTarget *) lfirst(lc));
	}
}

/* derive_locked() with pipeline_writing set, whatever happens. */
static void
derive_flagged(Relation inbox, const ObInboxAtts *atts, ObDelivery *d, List *targets,
			   bool dry_run)
{
	pipeline_writing = !dry_run;
	PG_TRY();
	{
		derive_locked(inbox, atts, d, targets, dry_run);
	}
	PG_FINALLY();
	{
		pipeline_writing = false;
	}
	PG_END_TRY();
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
	ObSpiFrame	spi;

	if (d->effects == NIL)
	{
		onboarding_decide(d, OB_UNRECOGNIZED, "the delivery asks for no state change");
		return;
	}
	Assert(d->provider >= 0 && d->provider < OB_NPROVIDERS);

	/* before connecting: the effects list must outlive the SPI connection */
	if (!onboarding_rules_classify(d))
		return;
	foreach(lc, d->effects)
		(void) derive_target(&targets, (ObEffect *) lfirst(lc));
	list_sort(targets, derive_target_cmp);

	onboarding_spi_connect(&spi, false);	/* every name and operator below is qualified */
	derive_prepare();
	derive_flagged(inbox, atts, d, targets, dry_run);
	onboarding_spi_finish(&spi);
}

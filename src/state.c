/*-------------------------------------------------------------------------
 *
 * state.c
 *		What guards the state tables: the transition trigger and
 *		force_status().
 *
 * The database is the authority: whoever writes a state table, a status
 * may only move along the graph in onboarding.transition.  The trigger
 * here refuses any other UPDATE with check_violation.  An operator who must
 * override does it through force_status(), which records the override as a
 * delivery so that rebuild() (rebuild.c) reproduces it.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* The label of an enum value, for messages. */
static char *
state_enum_label(Datum value)
{
	return DatumGetCString(DirectFunctionCall1(enum_out, value));
}

/* A column's value as the text a delivery carries for its field. */
static char *
state_field_text(Form_pg_attribute att, Datum v)
{
	Oid			out;
	bool		varlena;

	if (att->atttypid == TIMESTAMPTZOID)
		return onboarding_time_text(DatumGetTimestampTz(v));
	if (att->atttypid == BOOLOID)
		return pstrdup(DatumGetBool(v) ? "true" : "false");
	getTypeOutputInfo(att->atttypid, &out, &varlena);
	return OidOutputFunctionCall(out, v);
}

/* The rows whose direct UPDATE is being recorded ("relid/key"), innermost first */
static List *recording = NIL;

/*
 * An UPDATE of a row whose previous UPDATE is still being recorded (a
 * trigger on the inbox fired by the record, writing the row again, before
 * the first UPDATE has written it): PostgreSQL refuses a row changed twice
 * by one command's triggers, and so do we, with the way out in the hint.
 */
static void
state_refuse_reentry(Relation rel, HeapTuple oldt, const char *keycol)
{
	char	   *key;
	char	   *me;
	ListCell   *lc;

	if (recording == NIL)
		return;
	key = SPI_getvalue(oldt, RelationGetDescr(rel), SPI_fnumber(RelationGetDescr(rel), keycol));
	me = psprintf("%u/%s", RelationGetRelid(rel), key);
	foreach(lc, recording)
		if (strcmp((char *) lfirst(lc), me) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
					 errmsg("onboarding.%s row \"%s\" was updated again while its update was being recorded",
							RelationGetRelationName(rel), onboarding_clip(key, 64)),
					 errdetail("A direct UPDATE of a state row is recorded as a delivery; a trigger on onboarding.inbox fired by that record updated the same row before the first UPDATE was written."),
					 errhint("Let the trigger skip the records of direct updates: add WHEN (NEW.forced_by IS NULL) to it.")));
}

/*
 * A legal direct UPDATE of a state row is recorded as an operator's
 * delivery (event type direct_update, forced_by the role that made it), so
 * that the log stays complete and a replay writes what the UPDATE wrote:
 * the statuses of the row and the fields that changed.  The delivery is
 * stored, not derived (this UPDATE writes the row); its history row is
 * written here, and the row's own bookkeeping points at it.  Returns the
 * row to store.
 */
static HeapTuple
state_record_update(TriggerData *trigdata, ObProvider provider)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	oldt = trigdata->tg_trigtuple;
	HeapTuple	newt = trigdata->tg_newtuple;
	char	  **args = trigdata->tg_trigger->tgargs;
	int			nargs = trigdata->tg_trigger->tgnargs;
	char	   *key = SPI_getvalue(oldt, desc, SPI_fnumber(desc, args[1]));
	char	   *by = GetUserNameFromId(GetUserId(), false);
	StringInfoData body;
	StringInfoData statuses;
	int			nfields = 0;
	bool		changed_status = false;
	const char *first_entity = NULL;
	List	   *moves = NIL;	/* (entity, from, to) of each status that moved */
	ObSpiFrame	spi;
	Datum		a[3];
	Oid			t[3] = {TEXTOID, TEXTOID, TEXTOID};
	int64		id;
	Datum		received;
	bool		isnull;
	ListCell   *lc;

	initStringInfo(&body);
	initStringInfo(&statuses);

	/* the statuses: every one that moved, or else the row's own, for a refresh */
	for (int i = 2; i < nargs; i++)
	{
		int			attnum = SPI_fnumber(desc, args[i]);
		const char *entity = i == 2 ? args[0] : args[i];
		bool		oldnull,
					newnull;
		Datum		oldv = heap_getattr(oldt, attnum, desc, &oldnull);
		Datum		newv = heap_getattr(newt, attnum, desc, &newnull);

		if (newnull)
			continue;
		if (oldnull || DatumGetObjectId(oldv) != DatumGetObjectId(newv))
		{
			if (!changed_status)
				resetStringInfo(&statuses);
			else
				appendStringInfoString(&statuses, ", ");
			escape_json(&statuses, entity);
			appendStringInfoString(&statuses, ": ");
			escape_json(&statuses, state_enum_label(newv));
			moves = lappend(moves, list_make3((char *) entity,
											  oldnull ? NULL : state_enum_label(oldv),
											  state_enum_label(newv)));
			changed_status = true;
		}
		else if (!changed_status && first_entity == NULL)
		{
			first_entity = entity;
			escape_json(&statuses, entity);
			appendStringInfoString(&statuses, ": ");
			escape_json(&statuses, state_enum_label(newv));
		}
	}

	/* the fields that changed */
	appendStringInfoString(&body, "{\"kind\": \"direct_update\", \"entity\": ");
	escape_json(&body, args[0]);
	appendStringInfoString(&body, ", \"key\": ");
	escape_json(&body, key);
	appendStringInfoString(&body, ", \"fields\": {");
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		oldnull,
					newnull;
		Datum		oldv,
					newv;

		if (att->attisdropped || onboarding_field_from_name(NameStr(att->attname)) == OB_NFIELDS)
			continue;
		oldv = heap_getattr(oldt, i + 1, desc, &oldnull);
		newv = heap_getattr(newt, i + 1, desc, &newnull);
		if (oldnull == newnull &&
			(oldnull || datum_image_eq(oldv, newv, att->attbyval, att->attlen)))
			continue;
		if (nfields++ > 0)
			appendStringInfoString(&body, ", ");
		escape_json(&body, NameStr(att->attname));
		appendStringInfoString(&body, ": ");
		if (newnull)
			appendStringInfoString(&body, "null");
		else
			escape_json(&body, state_field_text(att, newv));
	}
	if (!changed_status && nfields == 0)
		return newt;			/* nothing a delivery carries changed (a column of yours) */
	if (statuses.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot update onboarding.%s row \"%s\" without a status",
						RelationGetRelationName(rel), key),
				 errhint("Set a status with onboarding.force_status() first.")));
	appendStringInfo(&body, "}, \"statuses\": {%s}, \"by\": ", statuses.data);
	escape_json(&body, by);
	appendStringInfoString(&body, ", \"at\": ");
	escape_json(&body, onboarding_time_text(GetCurrentTimestamp()));
	appendStringInfoChar(&body, '}');

	a[0] = CStringGetTextDatum(onboarding_provider_name(provider));
	a[1] = CStringGetTextDatum(body.data);
	a[2] = CStringGetTextDatum(by);
	/*
	 * As the owner: a forced body of kind direct_update is stored, not
	 * derived.  A user's AFTER INSERT trigger on the inbox fires before
	 * this UPDATE writes the row: one that updates the same row again is
	 * refused (state_refuse_reentry), not left to recurse.  No row limit:
	 * an INSERT stopped at its first row never fires its statement
	 * triggers (inbox_settle among them).
	 */
	onboarding_spi_connect(&spi);
	recording = lcons(psprintf("%u/%s", RelationGetRelid(rel), key), recording);
	PG_TRY();
	{
		if (SPI_execute_with_args("INSERT INTO onboarding.inbox (provider, payload, forced_by)"
								  " VALUES ($1::onboarding.provider, $2::pg_catalog.jsonb, $3)"
								  " RETURNING id, received_at", 3, t, a, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not record the direct update");
	}
	PG_FINALLY();
	{
		recording = list_delete_first(recording);
	}
	PG_END_TRY();
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	received = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

	/* the history rows a replay writes for it */
	foreach(lc, moves)
	{
		List	   *m = (List *) lfirst(lc);
		Oid			ht[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
		Datum		ha[5] = {0};
		char		hn[5] = {' ', ' ', ' ', ' ', ' '};

		ha[0] = a[0];
		ha[1] = CStringGetTextDatum((char *) linitial(m));
		ha[2] = CStringGetTextDatum(key);
		if (lsecond(m) == NULL)
			hn[3] = 'n';
		else
			ha[3] = CStringGetTextDatum((char *) lsecond(m));
		ha[4] = CStringGetTextDatum((char *) lthird(m));
		if (SPI_execute_with_args("INSERT INTO onboarding.history (provider, entity, entity_key,"
								  " from_status, to_status, inbox_id)"
								  " VALUES ($1::onboarding.provider, $2, $3, $4, $5, $6)",
								  6, (Oid[]) {ht[0], ht[1], ht[2], ht[3], ht[4], INT8OID},
								  (Datum[]) {ha[0], ha[1], ha[2], ha[3], ha[4], Int64GetDatum(id)},
								  (char[]) {hn[0], hn[1], hn[2], hn[3], hn[4], ' '}, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write the history of the direct update");
	}
	onboarding_spi_finish(&spi);

	/* the row's bookkeeping: the latest delivery is this one */
	{
		const char *names[] = {"last_inbox_id", "last_seen_id", "last_received_at"};
		Datum		vals[3] = {Int64GetDatum(id), Int64GetDatum(id), received};
		int			cols[4];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		int			n = 0;
		int			sub = SPI_fnumber(desc, "subjects");

		for (int i = 0; i < 3; i++)
		{
			int			attnum = SPI_fnumber(desc, names[i]);

			if (attnum > 0)
			{
				cols[n] = attnum;
				values[n++] = vals[i];
			}
		}
		if (sub > 0)
		{
			Datum		cur = heap_getattr(newt, sub, desc, &isnull);

			cols[n] = sub;
			values[n++] = onboarding_subjects_with(isnull ? (Datum) 0 : cur, key);
		}
		return heap_modify_tuple_by_cols(newt, desc, n, cols, values, nulls);
	}
}

/*
 * BEFORE UPDATE FOR EACH ROW on the state tables.  Arguments: the table's
 * entity, its key column, then its status columns.  Refuses any status
 * change the transition graph does not allow.
 */
PG_FUNCTION_INFO_V1(onboarding_state_before_update);
Datum
onboarding_state_before_update(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	TupleDesc	desc;
	ObProvider	provider;
	bool		isnull;
	char	  **args;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"onboarding_state_before_update\" was not called by trigger manager")));
	trigger = trigdata->tg_trigger;
	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || trigger->tgnargs < 3)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"onboarding_state_before_update\" must be fired BEFORE UPDATE FOR EACH ROW"),
				 errhint("Its arguments are the entity, the key column and the status columns.")));
	args = trigger->tgargs;
	desc = RelationGetDescr(trigdata->tg_relation);

	/* the pipeline's own write of a bound table (bind.c): judged already */
	if (onboarding_bind_is_pipeline_write(trigdata->tg_relation, trigdata->tg_trigtuple))
		return PointerGetDatum(trigdata->tg_newtuple);

	/* a statement that delivers to this row and writes it too */
	state_refuse_reentry(trigdata->tg_relation, trigdata->tg_trigtuple, args[1]);
	onboarding_statement_adopt();
	if (onboarding_store_window_holds(RelationGetRelid(trigdata->tg_relation)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a statement cannot both insert into onboarding.inbox and write onboarding.%s",
						RelationGetRelationName(trigdata->tg_relation)),
				 errdetail("The deliveries of a statement derive state while it runs; another write of the same rows in that statement would be lost or fail."),
				 errhint("Write the state table in a statement of its own after the delivery, "
						 "for instance from an AFTER INSERT trigger on onboarding.inbox, or use onboarding.force_status().")));

	/* what identifies and orders a row is the pipeline's alone */
	{
		const char *guarded[] = {"provider", args[1], "last_inbox_id", "last_seen_id",
			"first_event_at", "last_event_at", "last_received_at", "subjects", "provider_status",
		"status_at", "background_check_at", "documentscopy_at", "flow"};

		for (int i = 0; i < lengthof(guarded); i++)
		{
			int			attnum = SPI_fnumber(desc, guarded[i]);
			Form_pg_attribute att;
			bool		oldnull,
						newnull;
			Datum		oldv,
						newv;

			if (attnum <= 0)
				continue;
			att = TupleDescAttr(desc, attnum - 1);
			oldv = heap_getattr(trigdata->tg_trigtuple, attnum, desc, &oldnull);
			newv = heap_getattr(trigdata->tg_newtuple, attnum, desc, &newnull);
			if (oldnull != newnull ||
				(!oldnull && !datum_image_eq(oldv, newv, att->attbyval, att->attlen)))
				ereport(ERROR,
						(errcode(ERRCODE_CHECK_VIOLATION),
						 errmsg("cannot change column \"%s\" of onboarding.%s", guarded[i],
								RelationGetRelationName(trigdata->tg_relation)),
						 errdetail("The provider, the key, the times, the provider's status and the delivery ids of a state row are written by the extension alone."),
						 errhint("Use onboarding.force_status() to override a state.")));
		}
	}
	provider = onboarding_provider_from_oid(DatumGetObjectId(
													 heap_getattr(trigdata->tg_trigtuple,
																  SPI_fnumber(desc, "provider"),
																  desc, &isnull)));

	for (int i = 2; i < trigger->tgnargs; i++)
	{
		int			attnum = SPI_fnumber(desc, args[i]);
		bool		oldnull,
					newnull;
		Datum		oldv,
					newv;
		ObEntity	entity;
		char	   *from,
				   *to,
				   *key;

		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							args[i], RelationGetRelationName(trigdata->tg_relation))));
		oldv = heap_getattr(trigdata->tg_trigtuple, attnum, desc, &oldnull);
		newv = heap_getattr(trigdata->tg_newtuple, attnum, desc, &newnull);
		if (newnull && oldnull)
			continue;
		if (!newnull && !oldnull && DatumGetObjectId(oldv) == DatumGetObjectId(newv))
			continue;
		if (oldnull)
			continue;			/* a first status: any state may be the first one seen */

		entity = onboarding_entity_from_name(i == 2 ? args[0] : args[i]);
		from = state_enum_label(oldv);
		to = newnull ? "NULL" : state_enum_label(newv);
		key = SPI_getvalue(trigdata->tg_trigtuple, desc, SPI_fnumber(desc, args[1]));
		if (newnull || !onboarding_transition_legal(entity, provider, from, to))
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("illegal transition of %s \"%s\" (%s): %s -> %s",
							onboarding_entity_names[entity], key, onboarding_provider_name(provider), from, to),
					 errdetail("onboarding.transition has no move from %s to %s for %s %s.",
							   from, to, onboarding_provider_name(provider), onboarding_graph_names[onboarding_entity_graph(entity)]),
					 errhint("Use onboarding.force_status() to override a state, with a reason.")));
	}
	return PointerGetDatum(state_record_update(trigdata, provider));
}

/*
 * force_status() overrides the state of an entity the inbox already knows;
 * it does not create one (a typo in a key would otherwise make a new
 * entity out of nothing).  Run inside the caller's SPI connection.
 */
static void
state_check_exists(ObEntity kind, Datum provider, Datum provider_text, const char *key)
{
	static const char *const queries[] = {
		[OB_ACCOUNT] = "SELECT 1 FROM onboarding.account WHERE provider = $1::onboarding.provider AND account_key = $2",
		[OB_PROPOSAL] = "SELECT 1 FROM onboarding.proposal WHERE provider = $1::onboarding.provider AND proposal_key = $2",
		[OB_DOCUMENT] = "SELECT 1 FROM onboarding.document WHERE provider = $1::onboarding.provider AND document_key = $2",
		[OB_CLOSURE] = "SELECT 1 FROM onboarding.closure WHERE provider = $1::onboarding.provider AND account_key = $2",
		[OB_BACKGROUND_CHECK] = "SELECT 1 FROM onboarding.proposal WHERE provider = $1::onboarding.provider AND proposal_key = $2",
		[OB_DOCUMENTSCOPY] = "SELECT 1 FROM onboarding.proposal WHERE provider = $1::onboarding.provider AND proposal_key = $2",
	};
	static const char *const tables[] = {
		[OB_ACCOUNT] = "account", [OB_PROPOSAL] = "proposal", [OB_DOCUMENT] = "document",
		[OB_CLOSURE] = "closure", [OB_BACKGROUND_CHECK] = "proposal", [OB_DOCUMENTSCOPY] = "proposal",
	};
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2] = {provider_text, CStringGetTextDatum(key)};

	/*
	 * Lock the table first, then look with a fresh snapshot: a look whose
	 * snapshot predates a concurrent rebuild() (which truncates and
	 * refills) would find nothing.
	 */
	LockRelationOid(onboarding_relation_oid(tables[kind]), AccessShareLock);
	if (SPI_execute_with_args(queries[kind], 2, types, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look for the entity to override");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("%s \"%s\" of %s does not exist", onboarding_entity_names[kind],
						onboarding_clip(key, 64), DatumGetCString(DirectFunctionCall1(enum_out, provider))),
				 errdetail("force_status() overrides the state of an entity a delivery created; it creates none."),
				 errhint("Check the key and provider, or deliver the provider's body first.")));
}

/*
 * force_status_record(entity, provider, key, status, reason) → bigint
 *
 * Record an operator's override as a delivery (event type force_status)
 * and apply it, bypassing the transition graph.  Returns the inbox id;
 * the SQL function onboarding.force_status() returns the stored row.
 */
PG_FUNCTION_INFO_V1(onboarding_force_status);
Datum
onboarding_force_status(PG_FUNCTION_ARGS)
{
	char	   *entity;
	char	   *key;
	char	   *status;
	char	   *reason;
	ObEntity	kind;
	Datum		args[3];
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	int64		id;
	bool		isnull;
	char	   *by;
	ObSpiFrame	spi;
	StringInfoData body;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("force_status() needs entity, provider, key, status and reason"),
					 errhint("The reason is kept in the inbox and in onboarding.history.")));
	entity = text_to_cstring(PG_GETARG_TEXT_PP(0));
	key = text_to_cstring(PG_GETARG_TEXT_PP(2));
	status = text_to_cstring(PG_GETARG_TEXT_PP(3));
	reason = text_to_cstring(PG_GETARG_TEXT_PP(4));

	kind = onboarding_entity_from_name(entity);
	if (kind == OB_NENTITIES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown entity \"%s\"", entity),
				 errhint("Use account, proposal, document, closure, background_check or documentscopy.")));
	if (onboarding_status_label(onboarding_entity_graph(kind), status) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a status of %s", status, entity),
				 errhint("The statuses are the labels of onboarding.%s_status.",
						 onboarding_graph_names[onboarding_entity_graph(kind)])));
	if (reason[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("force_status() needs a reason"),
				 errhint("Say why the state is overridden: it is kept as evidence.")));
	if (strlen(key) > OB_MAX_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("key of %zu bytes is longer than the %d bytes a key may have",
						strlen(key), OB_MAX_KEY_BYTES),
				 errdetail("The key begins \"%s\".", onboarding_clip(key, 40)),
				 errhint("No entity can have such a key: keys are indexed.")));

	by = GetUserNameFromId(GetOuterUserId(), false);
	initStringInfo(&body);
	appendStringInfoString(&body, "{\"entity\": ");
	escape_json(&body, entity);
	appendStringInfoString(&body, ", \"key\": ");
	escape_json(&body, key);
	appendStringInfoString(&body, ", \"status\": ");
	escape_json(&body, status);
	appendStringInfoString(&body, ", \"reason\": ");
	escape_json(&body, reason);
	appendStringInfoString(&body, ", \"by\": ");
	escape_json(&body, by);
	appendStringInfoString(&body, ", \"at\": ");
	escape_json(&body, onboarding_time_text(GetCurrentTimestamp()));
	appendStringInfoChar(&body, '}');

	args[0] = DirectFunctionCall1(enum_out, PG_GETARG_DATUM(1));
	args[0] = CStringGetTextDatum(DatumGetCString(args[0]));
	args[1] = CStringGetTextDatum(body.data);
	args[2] = CStringGetTextDatum(by);

	/*
	 * As the owner, who alone may set forced_by; with no row limit, so that
	 * the INSERT runs to its end and its statement triggers fire (the inbox's
	 * inbox_settle writes what the delivery derived).
	 */
	onboarding_spi_connect(&spi);
	state_check_exists(kind, PG_GETARG_DATUM(1), args[0], key);
	if (SPI_execute_with_args("INSERT INTO onboarding.inbox (provider, payload, forced_by)"
							  " VALUES ($1::onboarding.provider, $2::pg_catalog.jsonb, $3)"
							  " RETURNING id", 3, types, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record the override");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	onboarding_spi_finish(&spi);
	PG_RETURN_INT64(id);
}

/*-------------------------------------------------------------------------
 *
 * inbox.c
 *		The triggers of onboarding.inbox: the pipeline that runs for every
 *		delivery, and the guards that keep the evidence immutable.
 *
 * The BEFORE INSERT trigger is the only door into the product.  For each
 * row it runs the pipeline
 *
 *		parse (raw -> jsonb) -> detect -> dedupe -> classify and apply
 *
 * and writes what it found into the row's derived columns.  It never
 * raises for anything a provider can send: every body is stored with an
 * outcome.  The only refusal is a row with neither payload nor raw.
 *
 * All the pipeline's allocations live in one scratch context that is
 * reset for every row, so a million-row COPY runs in constant memory.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "catalog/dependency.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/snapmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Set while force_status() inserts its delivery; see onboarding_set_forcing(). */
static bool onboarding_forcing = false;

/*
 * Set while a state table's update trigger records a direct UPDATE: the
 * delivery is stored and detected, not derived (the UPDATE itself writes
 * the row); see onboarding_set_recording().
 */
static bool onboarding_recording = false;

/* The per-row scratch context, reset for every delivery. */
static MemoryContext onboarding_row_context = NULL;

/* Let force_status() mark the next inbox row as an operator's override. */
void
onboarding_set_forcing(bool on)
{
	onboarding_forcing = on;
}

/* Let a state table's update trigger record a direct UPDATE (state.c). */
void
onboarding_set_recording(bool on)
{
	onboarding_recording = on;
	onboarding_forcing = on;
}

/* Complain unless we were called as the expected kind of trigger. */
static TriggerData *
inbox_trigger_data(FunctionCallInfo fcinfo, const char *name)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by trigger manager", name)));
	return trigdata;
}

/* The inbox column numbers, cached for the life of the trigger's FmgrInfo. */
static ObInboxAtts *
inbox_atts(FunctionCallInfo fcinfo, Relation rel)
{
	if (fcinfo->flinfo->fn_extra == NULL)
	{
		ObInboxAtts *atts = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(ObInboxAtts));

		onboarding_inbox_atts(RelationGetDescr(rel), atts);
		fcinfo->flinfo->fn_extra = atts;
	}
	return (ObInboxAtts *) fcinfo->flinfo->fn_extra;
}

/* A fresh id from the inbox's identity sequence (see derive.c on ordering). */
int64
onboarding_next_inbox_id(Relation inbox, const ObInboxAtts *atts)
{
	return nextval_internal(onboarding_inbox_oids()->id_sequence, false);
}

/*
 * Keys are indexed (the state tables' primary keys, history, the inbox's
 * subject), and a btree entry has a size limit: a key longer than
 * OB_MAX_KEY_BYTES makes the delivery invalid instead of failing its
 * INSERT, and is not stored as the subject.  The detail quotes its start,
 * cut on a character boundary.
 */
static void
inbox_check_keys(ObDelivery *d)
{
	ListCell   *lc;
	const char *longest = d->subject;

	foreach(lc, d->effects)
	{
		const char *key = ((ObEffect *) lfirst(lc))->key;

		if (longest == NULL || strlen(key) > strlen(longest))
			longest = key;
	}
	if (longest == NULL || strlen(longest) <= OB_MAX_KEY_BYTES)
		return;
	onboarding_decide(d, OB_INVALID, "key of %zu bytes is longer than the %d bytes a key may have (it begins \"%s\")",
					  strlen(longest), OB_MAX_KEY_BYTES, onboarding_clip(longest, 40));
	d->subject = NULL;
	d->effects = NIL;
}

/* Settle a delivery as a duplicate of an earlier one. */
static void
inbox_duplicate(ObDelivery *d, int64 original)
{
	d->duplicate_of = original;
	d->decided = true;
	d->outcome = OB_DUPLICATE;
	resetStringInfo(&d->detail);
	appendStringInfo(&d->detail, "same body as delivery %lld", (long long) original);
}

/*
 * The steps before derivation: parse (raw -> jsonb; a repair is noted),
 * detect, check keys, classify.  Returns false when the delivery is decided
 * (invalid, unrecognized) and asks for no state change.  The group fold of
 * derive.c prepares every delivery of a group through here too, so that a
 * re-derivation judges each body as it was judged when it arrived.
 */
bool
onboarding_prepare_delivery(ObDelivery *d, text *raw)
{
	if (raw != NULL)
	{
		char	   *why;
		Jsonb	   *parsed;

		/*
		 * With payload given, raw is kept verbatim and payload is what is
		 * read; still say when raw needed the repair, so that a rebuild
		 * (which sees the payload this step stored) says the same.
		 */
		switch (onboarding_parse_raw(raw, &parsed, &why))
		{
			case OB_PARSE_OK:
				break;
			case OB_PARSE_REPAIRED:
				onboarding_note(d, "%s", why);
				break;
			case OB_PARSE_FAILED:
				if (d->payload == NULL)
					return onboarding_decide(d, OB_INVALID, "%s", why);
				break;
		}
		if (d->payload == NULL)
			d->payload = parsed;
	}

	onboarding_detect(d);
	inbox_check_keys(d);
	if (d->decided)
		return false;
	if (d->effects == NIL)
		return onboarding_decide(d, OB_UNRECOGNIZED, "the delivery asks for no state change");
	return onboarding_rules_classify(d);
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
 * folds each group of deliveries afterwards (derive.c).
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
			inbox_duplicate(d, original);
			/* a duplicate sorts after its original (rebuild() takes the first id) */
			if (mode == OB_RUN_LIVE && original > d->id)
				d->id = onboarding_next_inbox_id(inbox, atts);
			return;
		}
	}
	if (!going || mode == OB_RUN_REPLAY)
		return;
	onboarding_derive(inbox, atts, d, mode == OB_RUN_DRY);
	if (!d->decided)
		d->outcome = OB_APPLIED;
}

/* Settle a delivery as a duplicate of an earlier one (derive.c too). */
void
onboarding_mark_duplicate(ObDelivery *d, int64 original)
{
	inbox_duplicate(d, original);
}

/* Set up a delivery from the columns of an inbox row. */
void
onboarding_delivery_init(ObDelivery *d, HeapTuple tuple, TupleDesc desc, const ObInboxAtts *atts)
{
	bool		isnull;
	Datum		v;

	memset(d, 0, sizeof(ObDelivery));
	initStringInfo(&d->detail);
	d->provider = OB_PROVIDER_NONE;

	v = heap_getattr(tuple, atts->id, desc, &isnull);
	d->id = isnull ? 0 : DatumGetInt64(v);
	v = heap_getattr(tuple, atts->provider, desc, &isnull);
	if (!isnull)
		d->provider = onboarding_provider_from_oid(DatumGetObjectId(v));
	v = heap_getattr(tuple, atts->payload, desc, &isnull);
	if (!isnull)
		d->payload = DatumGetJsonbP(v);
	v = heap_getattr(tuple, atts->received_at, desc, &isnull);
	d->has_received_at = !isnull;
	if (!isnull)
		d->received_at = DatumGetTimestampTz(v);
	(void) heap_getattr(tuple, atts->forced_by, desc, &isnull);
	d->forced = !isnull;
}

/* Build the derived columns of the row from a processed delivery. */
HeapTuple
onboarding_delivery_store(HeapTuple tuple, TupleDesc desc, const ObInboxAtts *atts,
						  ObDelivery *d, bool set_payload)
{
	int			cols[12];
	Datum		values[12];
	bool		nulls[12];
	int			n = 0;

#define SET_COL(att, isnull_, value_) \
	do { cols[n] = (att); nulls[n] = (isnull_); values[n] = (value_); n++; } while (0)
#define SET_TEXT(att, s) \
	SET_COL(att, (s) == NULL, (s) == NULL ? (Datum) 0 : CStringGetTextDatum(s))

	SET_COL(atts->id, false, Int64GetDatum(d->id));
	SET_COL(atts->provider, d->provider == OB_PROVIDER_NONE,
			d->provider == OB_PROVIDER_NONE ? (Datum) 0 :
			ObjectIdGetDatum(onboarding_provider_oid(d->provider)));
	if (set_payload)
		SET_COL(atts->payload, d->payload == NULL,
				d->payload == NULL ? (Datum) 0 : JsonbPGetDatum(d->payload));
	SET_TEXT(atts->event_type, d->event_type);
	SET_TEXT(atts->subject, d->subject);
	SET_TEXT(atts->status_raw, d->status_raw);
	SET_COL(atts->event_at, !d->has_event_at, TimestampTzGetDatum(d->event_at));
	SET_COL(atts->outcome, false, ObjectIdGetDatum(onboarding_outcome_oid(d->outcome)));
	SET_TEXT(atts->detail, d->detail.len > 0 ? d->detail.data : NULL);
	SET_COL(atts->body_hash, d->payload == NULL, Int64GetDatum((int64) d->body_hash));
	SET_COL(atts->duplicate_of, d->duplicate_of == 0, Int64GetDatum(d->duplicate_of));

#undef SET_TEXT
#undef SET_COL
	return heap_modify_tuple_by_cols(tuple, desc, n, cols, values, nulls);
}

/*
 * Was this row's id chosen by the caller rather than by the identity
 * sequence?  A generated id never exceeds the sequence's last value;
 * pg_restore, which loads the inbox before it sets the sequence, brings ids
 * beyond it.  Read as the owner: the caller need not see the sequence.
 */
static bool
inbox_id_chosen(Relation rel, int64 id)
{
	Oid			saved_userid;
	int			saved_sec;
	Datum		last;
	bool		isnull;

	LOCAL_FCINFO(fcinfo, 1);

	GetUserIdAndSecContext(&saved_userid, &saved_sec);
	SetUserIdAndSecContext(RelationGetForm(rel)->relowner,
						   saved_sec | SECURITY_LOCAL_USERID_CHANGE);
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(onboarding_inbox_oids()->id_sequence);
	fcinfo->args[0].isnull = false;
	last = pg_sequence_last_value(fcinfo);
	isnull = fcinfo->isnull;
	SetUserIdAndSecContext(saved_userid, saved_sec);
	return isnull || id > DatumGetInt64(last);
}

/*
 * Is there already a delivery with this id (committed or not)?  Only a
 * caller that chose the id can collide.  With ON CONFLICT the row would
 * then be discarded after the trigger derived state from it, so the
 * trigger looks first whenever a statement with ON CONFLICT is running
 * (onboarding_store_row_may_be_discarded); without one, a taken id fails
 * the statement, and what the trigger derived goes with it.
 */
static bool
inbox_id_taken(Relation rel, int64 id)
{
	Relation	index = index_open(onboarding_inbox_oids()->pkey_index, AccessShareLock);
	SnapshotData dirty;
	ScanKeyData key;
	SysScanDesc scan;
	bool		taken;
	TransactionId xwait;

	for (;;)
	{
		InitDirtySnapshot(dirty);
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
		scan = systable_beginscan_ordered(rel, index, &dirty, 1, &key);
		taken = HeapTupleIsValid(systable_getnext_ordered(scan, ForwardScanDirection));
		xwait = taken ? dirty.xmin : InvalidTransactionId;
		systable_endscan_ordered(scan);
		if (!TransactionIdIsValid(xwait))
			break;
		/* another transaction is inserting that id: its fate decides */
		XactLockTableWait(xwait, rel, NULL, XLTW_InsertIndex);
	}
	index_close(index, AccessShareLock);
	return taken;
}

/*
 * A BEFORE INSERT row trigger that fires after ours (triggers fire in name
 * order) could change the delivery, or drop it, after its state was
 * derived: refuse to run with one.
 */
static void
inbox_check_later_triggers(TriggerData *trigdata)
{
	TriggerDesc *trigdesc = trigdata->tg_relation->trigdesc;
	const char *ours = trigdata->tg_trigger->tgname;

	for (int i = 0; trigdesc != NULL && i < trigdesc->numtriggers; i++)
	{
		Trigger    *t = &trigdesc->triggers[i];

		if (t->tgenabled == TRIGGER_DISABLED || !TRIGGER_FOR_ROW(t->tgtype) ||
			!TRIGGER_FOR_BEFORE(t->tgtype) || !TRIGGER_FOR_INSERT(t->tgtype) ||
			strcmp(t->tgname, ours) <= 0)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trigger \"%s\" on onboarding.inbox fires after the pipeline", t->tgname),
				 errdetail("A BEFORE INSERT trigger that fires after \"%s\" could change or drop a delivery whose state is already derived.",
						   ours),
				 errhint("Make it an AFTER INSERT trigger, or rename it to sort before \"%s\".", ours)));
	}
}

/*
 * BEFORE INSERT FOR EACH ROW on onboarding.inbox: run the pipeline and
 * return the row with its derived columns filled in.
 *
 * A row whose id the caller chose (see inbox_id_chosen) is a restore: it
 * comes with its derived columns, and the state it produced comes with it
 * in the dump, so it is stored as it is.  Only the inbox's owner may do
 * that.
 */
PG_FUNCTION_INFO_V1(onboarding_inbox_before_insert);
Datum
onboarding_inbox_before_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = inbox_trigger_data(fcinfo, "onboarding_inbox_before_insert");
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tuple = trigdata->tg_trigtuple;
	ObInboxAtts *atts;
	MemoryContext caller = CurrentMemoryContext;
	ObDelivery	d;
	bool		raw_null;
	bool		owner;
	Datum		raw;
	HeapTuple	result;

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"onboarding_inbox_before_insert\" must be fired BEFORE INSERT FOR EACH ROW")));
	atts = inbox_atts(fcinfo, rel);

	/* the previous row of this statement is in the index by now */
	onboarding_dedupe_release();

	if (onboarding_row_context == NULL)
		onboarding_row_context = AllocSetContextCreate(TopMemoryContext, "onboarding delivery",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(onboarding_row_context);
	MemoryContextSwitchTo(onboarding_row_context);

	onboarding_delivery_init(&d, tuple, desc, atts);
	raw = heap_getattr(tuple, atts->raw, desc, &raw_null);
	owner = has_privs_of_role(GetUserId(), RelationGetForm(rel)->relowner);
	if (inbox_id_chosen(rel, d.id))
	{
		if (!owner)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only the owner of onboarding.inbox may choose a delivery's id"),
					 errdetail("Id %lld is beyond the ids the inbox has handed out.", (long long) d.id),
					 errhint("Leave id to its default.")));
		MemoryContextSwitchTo(caller);
		return PointerGetDatum(tuple);	/* a restore: stored as dumped */
	}
	if (onboarding_store_row_may_be_discarded() && inbox_id_taken(rel, d.id))
	{
		if (!owner)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only the owner of onboarding.inbox may choose a delivery's id"),
					 errdetail("Id %lld belongs to another delivery.", (long long) d.id),
					 errhint("Leave id to its default.")));

		/*
		 * The owner chose an id that is taken: this row will not be stored
		 * (a unique violation, or skipped by ON CONFLICT DO NOTHING), so
		 * nothing may be derived from it.  Its derived columns are what a
		 * dry run says, so that the row reaches the unique check whole.
		 */
		if (d.payload != NULL || !raw_null)
			onboarding_process_delivery(rel, atts, &d, raw_null ? NULL : DatumGetTextPP(raw),
										OB_RUN_DRY, 0);
		MemoryContextSwitchTo(caller);
		return PointerGetDatum(onboarding_delivery_store(tuple, desc, atts, &d, true));
	}
	inbox_check_later_triggers(trigdata);
	if (d.payload == NULL && raw_null)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("delivery has no body"),
				 errdetail("Both payload and raw are null."),
				 errhint("Pass the body as payload (jsonb) or, when it may not be valid JSON, as raw (text).")));
	if (d.forced && !onboarding_forcing && !owner)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only onboarding.force_status() may set forced_by"),
				 errhint("Call onboarding.force_status() to override a state.")));

	if (d.forced && onboarding_recording)
	{
		/* a direct UPDATE already written by its statement: record it, as applied */
		onboarding_process_delivery(rel, atts, &d, NULL, OB_RUN_REPLAY, 0);
		if (!d.decided)
			d.outcome = OB_APPLIED;
	}
	else
		onboarding_process_delivery(rel, atts, &d, raw_null ? NULL : DatumGetTextPP(raw), OB_RUN_LIVE, 0);

	MemoryContextSwitchTo(caller);
	result = onboarding_delivery_store(tuple, desc, atts, &d, true);
	return PointerGetDatum(result);
}

/*
 * BEFORE UPDATE FOR EACH ROW on onboarding.inbox: evidence never changes,
 * and derived columns change only during rebuild().
 */
PG_FUNCTION_INFO_V1(onboarding_inbox_before_update);
Datum
onboarding_inbox_before_update(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = inbox_trigger_data(fcinfo, "onboarding_inbox_before_update");
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	ObInboxAtts *atts = inbox_atts(fcinfo, rel);
	AttrNumber	evidence[] = {atts->id, atts->received_at, atts->provider, atts->payload,
	atts->raw, atts->headers, atts->forced_by};
	const char *names[] = {"id", "received_at", "provider", "payload", "raw", "headers",
	"forced_by"};

	for (int i = 0; i < lengthof(evidence); i++)
	{
		bool		oldnull,
					newnull;
		Datum		oldv = heap_getattr(trigdata->tg_trigtuple, evidence[i], desc, &oldnull);
		Datum		newv = heap_getattr(trigdata->tg_newtuple, evidence[i], desc, &newnull);
		Form_pg_attribute att = TupleDescAttr(desc, evidence[i] - 1);

		if (oldnull != newnull ||
			(!oldnull && !datumIsEqual(oldv, newv, att->attbyval, att->attlen)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot change column \"%s\" of onboarding.inbox", names[i]),
					 errdetail("Deliveries are evidence: once stored they are never changed."),
					 errhint("Deliver a new body instead; derived columns are rewritten by onboarding.rebuild().")));
	}
	if (!onboarding_rebuilding())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot update onboarding.inbox"),
				 errdetail("The derived columns of a delivery are written by the extension alone."),
				 errhint("Call onboarding.rebuild() to derive them again.")));
	return PointerGetDatum(trigdata->tg_newtuple);
}

/*
 * AFTER INSERT FOR EACH STATEMENT on onboarding.inbox: the state rows the
 * statement's deliveries changed reach their tables (store.c keeps the
 * latest version of a row in memory while a statement runs).
 */
PG_FUNCTION_INFO_V1(onboarding_inbox_after_insert);
Datum
onboarding_inbox_after_insert(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"onboarding_inbox_after_insert\" was not called by trigger manager")));
	onboarding_store_flush(true);
	return PointerGetDatum(NULL);
}

/*
 * BEFORE DELETE FOR EACH ROW and BEFORE TRUNCATE on onboarding.inbox:
 * deliveries are kept forever.
 */
PG_FUNCTION_INFO_V1(onboarding_inbox_refuse_delete);
Datum
onboarding_inbox_refuse_delete(PG_FUNCTION_ARGS)
{
	(void) inbox_trigger_data(fcinfo, "onboarding_inbox_refuse_delete");
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot delete from onboarding.inbox"),
			 errdetail("Deliveries are evidence and are kept forever."),
			 errhint("State tables are derived: onboarding.rebuild() recomputes them from the inbox.")));
	return PointerGetDatum(NULL);	/* keep compiler quiet */
}

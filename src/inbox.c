/*-------------------------------------------------------------------------
 *
 * inbox.c
 *		The triggers of onboarding.inbox: the pipeline that runs for every
 *		delivery, and the guards that keep the evidence immutable; and the
 *		module's load.
 *
 * The BEFORE INSERT trigger is the only door into the product.  For each
 * row it runs the pipeline (derive.c's onboarding_process_delivery)
 *
 *		parse (raw -> jsonb) -> detect/extract -> dedupe -> classify and apply
 *
 * and writes what it found into the row's derived columns.  It never
 * raises for anything a provider can send: every body is stored with an
 * outcome.  The only refusal is a row with neither payload nor raw.
 *
 * Who may write what is decided by the row and the role, never by a flag:
 * only the inbox's owner may set forced_by (force_status() and the state
 * tables' trigger insert as the owner), and a forced body of kind
 * direct_update is a record of a change already written, stored without
 * being derived (delivery.c).  Derived columns are rewritten by the
 * pipeline through the table access method (store.c), so no UPDATE of the
 * inbox may ever change them.
 *
 * Each call's allocations live in a scratch context of its own, a child of
 * the caller's per-row context, deleted before the call returns: a
 * million-row COPY runs in constant memory, and nothing of the last body
 * outlives its row.
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
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "compat.h"

/*
 * PG_MODULE_MAGIC is in taxid.c, the one object that both onboarding.so and
 * taxid.so are linked from (a library carries exactly one magic block).
 */
void		_PG_init(void);

/*
 * Module load: reserve the prefix of our setting names, set up store.c
 * and tally.c (their transaction callbacks) and statement.c (the executor hooks that
 * write the window before a nested statement reads state).  The extension has no GUC: the
 * zone naive times are read in is a row of onboarding.settings, one value
 * for the whole database (rules.c).
 */
void
_PG_init(void)
{
	MarkGUCPrefixReserved("onboarding");
	onboarding_store_init();
	onboarding_tally_init();
	onboarding_open_init();
	onboarding_span_init();
	onboarding_statement_init();
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
	/* the columns it reads are the inbox's (a row routed to a partition: its) */
	if (!onboarding_inbox_holds(RelationGetRelid(trigdata->tg_relation)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired on onboarding.inbox", name),
				 errdetail("It was fired on table \"%s\".",
						   RelationGetRelationName(trigdata->tg_relation))));
	return trigdata;
}

/*
 * The inbox column numbers, for the life of the trigger's FmgrInfo (one
 * statement): the store's, which it keeps while the inbox keeps its shape.
 */
static ObInboxAtts *
inbox_atts(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
	{
		ObInboxAtts *atts = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(ObInboxAtts));

		*atts = *onboarding_store_inbox_atts(onboarding_store(OB_S_INBOX));
		fcinfo->flinfo->fn_extra = atts;
	}
	return (ObInboxAtts *) fcinfo->flinfo->fn_extra;
}

/*
 * Was this row's id chosen by the caller rather than by the identity
 * sequence?  A generated id never exceeds the sequence's last value;
 * pg_restore, which loads the inbox before it sets the sequence, brings ids
 * beyond it.  Read as the owner: the caller need not see the sequence.
 */
static bool
inbox_id_chosen(int64 id, int64 *last_value)
{
	Oid			saved_userid;
	int			saved_sec;
	Datum		last;
	bool		isnull;

	LOCAL_FCINFO(fcinfo, 1);

	GetUserIdAndSecContext(&saved_userid, &saved_sec);
	SetUserIdAndSecContext(onboarding_inbox_oids()->owner,
						   saved_sec | SECURITY_LOCAL_USERID_CHANGE);
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(onboarding_inbox_oids()->id_sequence);
	fcinfo->args[0].isnull = false;
	last = pg_sequence_last_value(fcinfo);
	isnull = fcinfo->isnull;
	SetUserIdAndSecContext(saved_userid, saved_sec);
	*last_value = isnull ? 0 : DatumGetInt64(last);
	return isnull || id > DatumGetInt64(last);
}

/*
 * Is there already a delivery with this id (committed or not)?  Only a
 * caller that chose the id can collide.  With ON CONFLICT the row would
 * then be discarded after the trigger derived state from it, so the
 * trigger looks first whenever a statement with ON CONFLICT is running
 * (onboarding_statement_row_may_be_discarded); without one, a taken id fails
 * the statement, and what the trigger derived goes with it.  A partitioned
 * inbox's primary key is (id, received_at), which lets the same id in at
 * another time: there the trigger looks for every id it did not just hand
 * out (below).  The time the taken id was received goes to *received, the
 * relation that holds it to *where.
 */
static bool
inbox_id_taken(int64 id, TimestampTz *received, Oid *where)
{
	ObStore    *store;
	TupleTableSlot *slot;
	const ObInboxAtts *atts;
	bool		taken = false;

	onboarding_store_begin();
	store = onboarding_store(OB_S_INBOX);
	slot = onboarding_store_slot(store);
	atts = onboarding_store_inbox_atts(store);

	for (int part = 0; !taken && part < onboarding_store_nparts(store);)
	{
		Relation	index;
		Relation	heap = onboarding_store_part(store, part, OB_INBOX_PKEY, &index);
		SnapshotData dirty;
		ScanKeyData key;
		IndexScanDesc scan;
		TransactionId xwait = InvalidTransactionId;
		bool		isnull;

		InitDirtySnapshot(dirty);
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
		scan = ob_index_beginscan(heap, index, &dirty, 1, 0);
		index_rescan(scan, &key, 1, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			taken = true;
			xwait = dirty.xmin;
			*received = DatumGetTimestampTz(slot_getattr(slot, atts->received_at, &isnull));
			*where = RelationGetRelid(heap);
		}
		index_endscan(scan);
		ExecClearTuple(slot);
		if (!TransactionIdIsValid(xwait))
		{
			part++;
			continue;
		}
		/* another transaction is inserting that id: its fate decides */
		XactLockTableWait(xwait, heap, NULL, XLTW_InsertIndex);
		taken = false;
	}
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

/* Count a row about to be stored in onboarding.daily's tally (tally.c). */
static void
inbox_tally(HeapTuple tuple, TupleDesc desc, const ObInboxAtts *atts)
{
	bool		no_received;
	bool		no_provider;
	bool		no_outcome;
	Datum		received = heap_getattr(tuple, atts->received_at, desc, &no_received);
	Datum		provider = heap_getattr(tuple, atts->provider, desc, &no_provider);
	Datum		outcome = heap_getattr(tuple, atts->outcome, desc, &no_outcome);

	/* received_at and outcome are NOT NULL: the insertion fails without them */
	if (no_received || no_outcome)
		return;
	onboarding_tally_delivery(DatumGetTimestampTz(received),
							  no_provider ? OB_PROVIDER_NONE : onboarding_provider_from_oid(DatumGetObjectId(provider)),
							  onboarding_outcome_from_oid(DatumGetObjectId(outcome)), 1);
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
/*
 * The group of a row the trigger lets in has a row of
 * onboarding.group_partition that maps to the partition it goes to
 * (spread.c), before the row is stored, so that whoever can see the row
 * can see that.
 */
static void
inbox_spread(HeapTuple tuple, TupleDesc desc, const ObInboxAtts *atts, Relation rel)
{
	bool		provider_null;
	bool		subject_null;
	bool		at_null;
	Datum		provider = heap_getattr(tuple, atts->provider, desc, &provider_null);
	Datum		subject = heap_getattr(tuple, atts->subject, desc, &subject_null);
	Datum		at = heap_getattr(tuple, atts->received_at, desc, &at_null);

	if (provider_null || subject_null || at_null)
		return;
	onboarding_store_note_group(onboarding_provider_from_oid(DatumGetObjectId(provider)),
						   TextDatumGetCString(subject), DatumGetTimestampTz(at),
						   RelationGetRelid(rel));
}

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
	MemoryContext rowcxt;
	ObDelivery	d;
	bool		raw_null;
	bool		owner;
	Datum		raw;
	text	   *rawtext;
	ObRunMode	mode = OB_RUN_LIVE;
	HeapTuple	result;
	int64		last_id = 0;
	TimestampTz taken_at = 0;
	Oid			taken_in = InvalidOid;
	bool		retime = false;

	/*
	 * A row logical replication applies, the trigger enabled ALWAYS on a
	 * subscriber of the inbox alone (README, "Replicas"): a delivery like
	 * any other, derived here, although its id comes from the publisher's
	 * sequence (so it is no restore) and a record of a direct UPDATE made
	 * there is derived, since that UPDATE does not reach this database.
	 */
	bool		replicated = (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA);

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"onboarding_inbox_before_insert\" must be fired BEFORE INSERT FOR EACH ROW")));
	atts = inbox_atts(fcinfo);
	onboarding_statement_adopt();

	/* the previous row of this statement is in the index by now */
	onboarding_dedupe_release();
	/* and its entities on their way are written once they are many */
	onboarding_open_bound();
	onboarding_span_bound();

	/*
	 * A row inserted straight into a partition of the inbox gets no id
	 * from the inbox's identity (15 gives one only to rows routed through
	 * the partitioned table): it takes one here, so that both are alike.
	 */
	if (heap_attisnull(tuple, atts->id, desc))
	{
		int			col = atts->id;
		Datum		id = Int64GetDatum(onboarding_delivery_new_id());
		bool		isnull = false;

		tuple = heap_modify_tuple_by_cols(tuple, desc, 1, &col, &id, &isnull);
	}

	rowcxt = AllocSetContextCreate(caller, "onboarding delivery", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(rowcxt);

	onboarding_delivery_init(&d, tuple, desc, atts);
	raw = heap_getattr(tuple, atts->raw, desc, &raw_null);
	rawtext = raw_null ? NULL : DatumGetTextPP(raw);
	owner = has_privs_of_role(GetUserId(), onboarding_inbox_oids()->owner);
	/* on every path, restores too: the inbox has no CHECK doing it for us */
	if (d.payload == NULL && raw_null)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("delivery has no body"),
				 errdetail("Both payload and raw are null."),
				 errhint("Pass the body as payload (jsonb) or, when it may not be valid JSON, as raw (text).")));
	if (!replicated && inbox_id_chosen(d.id, &last_id))
	{
		if (!owner)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only the owner of onboarding.inbox may choose a delivery's id"),
					 errdetail("Id %lld is beyond the ids the inbox has handed out.", (long long) d.id),
					 errhint("Leave id to its default.")));
		inbox_tally(tuple, desc, atts);
		inbox_spread(tuple, desc, atts, rel);
		MemoryContextSwitchTo(caller);
		MemoryContextDelete(rowcxt);
		return PointerGetDatum(tuple);	/* a restore: stored as dumped */
	}
	/*
	 * (partitioned: an id other than the one the sequence handed out last,
	 * usually another session's that came between, is looked for; the one
	 * it handed out last is this row's own unless chosen to equal it)
	 */
	if ((onboarding_statement_row_may_be_discarded() ||
		 (rel->rd_rel->relispartition && !replicated && d.id != last_id)) &&
		inbox_id_taken(d.id, &taken_at, &taken_in))
	{
		if (!owner)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only the owner of onboarding.inbox may choose a delivery's id"),
					 errdetail("Id %lld belongs to another delivery.", (long long) d.id),
					 errhint("Leave id to its default.")));
		/*
		 * Partitioned, the primary key (id, received_at) would let it in at
		 * another time: the row takes the time of the delivery whose id it
		 * chose, so that the key refuses it (or ON CONFLICT skips it) as a
		 * key on id alone would; a row that would then belong to another
		 * partition is refused here.
		 */
		if (rel->rd_rel->relispartition)
		{
			if (taken_in != RelationGetRelid(rel))
				ereport(ERROR,
						(errcode(ERRCODE_UNIQUE_VIOLATION),
						 errmsg("duplicate key value violates unique constraint \"inbox_pkey\""),
						 errdetail("Key (id)=(%lld) already exists, in partition \"%s\".",
								   (long long) d.id, get_rel_name(taken_in)),
						 errhint("Leave id to its default.")));
			retime = true;
		}

		/*
		 * The owner chose an id that is taken: this row will not be stored
		 * (a unique violation, or skipped by ON CONFLICT DO NOTHING), so
		 * nothing may be derived from it.  Its derived columns are what a
		 * dry run says, so that the row reaches the unique check whole.
		 */
		mode = OB_RUN_DRY;
	}
	else
	{
		inbox_check_later_triggers(trigdata);
		if (d.forced && !owner)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only onboarding.force_status() may set forced_by"),
					 errhint("Call onboarding.force_status() to override a state.")));
		if (!replicated && onboarding_delivery_is_record(&d))
		{
			/* a direct UPDATE its own statement writes: recorded, as applied */
			mode = OB_RUN_REPLAY;
			rawtext = NULL;
		}
	}

	if (d.payload != NULL || rawtext != NULL)
		onboarding_process_delivery(rel, atts, &d, rawtext, mode, 0);
	if (mode == OB_RUN_REPLAY && !d.decided)
		d.outcome = OB_APPLIED;

	MemoryContextSwitchTo(caller);
	result = onboarding_delivery_store(tuple, desc, atts, &d, true);
	if (retime)
	{
		int			col = atts->received_at;
		Datum		at = TimestampTzGetDatum(taken_at);
		bool		isnull = false;

		result = heap_modify_tuple_by_cols(result, desc, 1, &col, &at, &isnull);
	}
	/* a row that will not be stored (its id taken) is not counted */
	if (mode != OB_RUN_DRY)
	{
		inbox_tally(result, desc, atts);
		inbox_spread(result, desc, atts, rel);
	}
	MemoryContextDelete(rowcxt);
	return PointerGetDatum(result);
}

/*
 * BEFORE UPDATE FOR EACH ROW on onboarding.inbox: evidence never changes,
 * and derived columns are the pipeline's, which rewrites them without an
 * UPDATE (store.c): no UPDATE of the inbox is ever let through.
 */
PG_FUNCTION_INFO_V1(onboarding_inbox_before_update);
Datum
onboarding_inbox_before_update(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = inbox_trigger_data(fcinfo, "onboarding_inbox_before_update");
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	ObInboxAtts *atts = inbox_atts(fcinfo);
	AttrNumber	evidence[] = {atts->id, atts->received_at, atts->provider, atts->payload,
	atts->raw, atts->headers, atts->forced_by};
	const char *names[] = {"id", "received_at", "provider", "payload", "raw", "headers",
	"forced_by"};

	/*
	 * Logical replication applying the publisher's rewrite of a delivery's
	 * derived columns, this trigger enabled ALWAYS on a subscriber that
	 * derives its own (README, "Replicas"): this database's derivation is
	 * kept, the row is left as it is.
	 */
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return PointerGetDatum(NULL);

	for (int i = 0; i < lengthof(evidence); i++)
	{
		bool		oldnull,
					newnull;
		Datum		oldv = heap_getattr(trigdata->tg_trigtuple, evidence[i], desc, &oldnull);
		Datum		newv = heap_getattr(trigdata->tg_newtuple, evidence[i], desc, &newnull);
		Form_pg_attribute att = TupleDescAttr(desc, evidence[i] - 1);

		if (oldnull != newnull ||
			(!oldnull && !datum_image_eq(oldv, newv, att->attbyval, att->attlen)))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot change column \"%s\" of onboarding.inbox", names[i]),
					 errdetail("Deliveries are evidence: once stored they are never changed."),
					 errhint("Deliver a new body instead; derived columns are rewritten by onboarding.rebuild().")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot update onboarding.inbox"),
			 errdetail("The derived columns of a delivery are written by the extension alone."),
			 errhint("Call onboarding.rebuild() to derive them again.")));
	return PointerGetDatum(NULL);	/* keep compiler quiet */
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
	onboarding_tally_flush();
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

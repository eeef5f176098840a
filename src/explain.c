/*-------------------------------------------------------------------------
 *
 * explain.c
 *		onboarding.explain(): what would this delivery do, right now?
 *
 * Runs the pipeline on a body without storing it: detection, duplicate
 * check, classification, and the §6 verdict against the current state,
 * read without locks.  Writes nothing of its own (what this transaction
 * derived before is written out first, to be seen).  Its "rules" say where each value
 * came from: the rule row, the path that resolved, the paths tried in vain
 * (recorded by extract.c for this delivery alone: ObDelivery.trace).
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/table.h"
#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* Append "key": "value" (or null) to a JSON object being built. */
static void
explain_field(StringInfo out, const char *key, const char *value, bool first)
{
	if (!first)
		appendStringInfoString(out, ", ");
	escape_json(out, key);
	appendStringInfoString(out, ": ");
	if (value == NULL)
		appendStringInfoString(out, "null");
	else
		escape_json(out, value);
}

/*
 * explain(payload jsonb, provider onboarding.provider DEFAULT NULL) → jsonb:
 * provider, event type, entity, key, statuses, time, outcome and detail;
 * each effect with its verdict; each value read with its rule.
 */
PG_FUNCTION_INFO_V1(onboarding_explain);
Datum
onboarding_explain(PG_FUNCTION_ARGS)
{
	Relation	inbox;
	ObInboxAtts atts;
	ObDelivery	d;
	StringInfoData out;
	ListCell   *lc;
	ObEffect   *first = NULL;
	bool		firsteffect = true;
	bool		moved = false;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();

	memset(&d, 0, sizeof(d));
	d.id = PG_INT64_MAX;		/* it would arrive after every stored delivery */
	initStringInfo(&d.detail);
	d.payload = PG_GETARG_JSONB_P(0);
	d.provider = PG_ARGISNULL(1) ? OB_PROVIDER_NONE :
		onboarding_provider_from_oid(PG_GETARG_OID(1));
	d.trace_on = true;

	/*
	 * State this transaction derived may still be in the window (a
	 * force_status() of an earlier statement, say): it is written now, as
	 * a statement reading a state table would (statement.c).  The reads
	 * below see it, and what an earlier call in this statement wrote out,
	 * through a copy of the snapshot moved to the current command.
	 */
	if (onboarding_store_pending())
	{
		onboarding_store_flush(false);
		CommandCounterIncrement();
	}
	if (ActiveSnapshotSet())
	{
		PushCopiedSnapshot(GetActiveSnapshot());
		UpdateActiveSnapshotCommandId();
		moved = true;
	}

	inbox = table_open(onboarding_relation_oid("inbox"), AccessShareLock);
	onboarding_inbox_atts(RelationGetDescr(inbox), &atts);

	onboarding_process_delivery(inbox, &atts, &d, NULL, OB_RUN_DRY, 0);
	table_close(inbox, AccessShareLock);
	if (moved)
		PopActiveSnapshot();

	if (d.effects != NIL)
		first = (ObEffect *) linitial(d.effects);

	initStringInfo(&out);
	appendStringInfoChar(&out, '{');
	explain_field(&out, "provider",
				  d.provider == OB_PROVIDER_NONE ? NULL : onboarding_provider_name(d.provider), true);
	explain_field(&out, "event_type", d.event_type, false);
	explain_field(&out, "entity", first ? onboarding_entity_names[first->entity] : NULL, false);
	explain_field(&out, "key", d.subject, false);
	explain_field(&out, "status_raw", d.status_raw, false);
	explain_field(&out, "status", first ? first->status : NULL, false);
	explain_field(&out, "event_at", d.has_event_at ? onboarding_time_text(d.event_at) : NULL, false);
	explain_field(&out, "outcome", onboarding_outcome_names[d.outcome], false);
	explain_field(&out, "detail", d.detail.len > 0 ? d.detail.data : NULL, false);
	appendStringInfoString(&out, ", \"effects\": [");
	foreach(lc, d.effects)
	{
		ObEffect   *e = (ObEffect *) lfirst(lc);

		if (!firsteffect)
			appendStringInfoString(&out, ", ");
		firsteffect = false;
		appendStringInfoChar(&out, '{');
		explain_field(&out, "entity", onboarding_entity_names[e->entity], true);
		explain_field(&out, "key", e->key, false);
		explain_field(&out, "from", e->from, false);
		explain_field(&out, "to", e->status, false);
		explain_field(&out, "verdict", e->verdict, false);
		appendStringInfoChar(&out, '}');
	}
	appendStringInfoString(&out, "], \"rules\": [");
	foreach(lc, d.trace)
	{
		ObTrace    *t = (ObTrace *) lfirst(lc);
		ListCell   *p;

		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&out, ", ");
		appendStringInfoChar(&out, '{');
		explain_field(&out, "value", t->what, true);
		explain_field(&out, "rule", t->rule, false);
		explain_field(&out, "path", t->path, false);
		explain_field(&out, "read", t->value, false);
		appendStringInfoString(&out, ", \"unresolved\": [");
		foreach(p, t->unresolved)
		{
			if (foreach_current_index(p) > 0)
				appendStringInfoString(&out, ", ");
			escape_json(&out, (const char *) lfirst(p));
		}
		appendStringInfoString(&out, "]}");
	}
	appendStringInfoString(&out, "]}");

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

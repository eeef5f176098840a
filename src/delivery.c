/*-------------------------------------------------------------------------
 *
 * delivery.c
 *		A delivery before derivation: read from an inbox row, prepared
 *		(parsed, detected or extracted, classified), and its derived columns
 *		written back, into the row being inserted or into a stored row.
 *
 * Everything that reads or writes an ObDelivery as an inbox row is here,
 * so that the trigger (inbox.c), the group fold (derive.c) and rebuild()
 * (state.c) judge a body alike.  Nothing here derives state: derive.c
 * comes after this file and calls into it, never the other way round.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/htup_details.h"
#include "commands/sequence.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

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

/*
 * Is this delivery the record of a direct UPDATE of a state table (an
 * operator's body of kind "direct_update", written by the state tables'
 * trigger)?  Such a row describes a change its UPDATE has already made:
 * on arrival it is stored and detected, not derived; a replay derives it.
 */
bool
onboarding_delivery_is_record(ObDelivery *d)
{
	char	   *kind;

	if (!d->forced || d->payload == NULL || !JsonContainerIsObject(&d->payload->root) ||
		JsonContainerIsScalar(&d->payload->root))
		return false;
	kind = onboarding_json_string(&d->payload->root, "kind");
	return kind != NULL && strcmp(kind, "direct_update") == 0;
}

/* A fresh id from the inbox's identity sequence (see derive.c on ordering). */
int64
onboarding_delivery_new_id(void)
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
delivery_check_keys(ObDelivery *d)
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
void
onboarding_mark_duplicate(ObDelivery *d, int64 original)
{
	d->duplicate_of = original;
	d->decided = true;
	d->outcome = OB_DUPLICATE;
	resetStringInfo(&d->detail);
	appendStringInfo(&d->detail, "same body as delivery %lld", (long long) original);
}

/*
 * The last step before derivation, after detection: classify the
 * delivery's statuses (rules.c).  Returns false when it is decided.
 */
static bool
delivery_classify(ObDelivery *d)
{
	if (d->decided)
		return false;
	if (d->effects == NIL)
		return onboarding_decide(d, OB_UNRECOGNIZED, "the delivery asks for no state change");
	return onboarding_rules_classify(d);
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
	delivery_check_keys(d);
	d->extraction = onboarding_extraction_save(d);
	return delivery_classify(d);
}

/* A text column of a row as a string, or NULL. */
static char *
delivery_text(HeapTuple tup, TupleDesc desc, AttrNumber att)
{
	bool		isnull;
	Datum		v = heap_getattr(tup, att, desc, &isnull);

	return isnull ? NULL : TextDatumGetCString(v);
}

/*
 * Prepare a stored delivery (set up by onboarding_delivery_init from its
 * row, stored) from its kept extraction instead of its body: false, d
 * untouched, when it has none usable under the current rules
 * (extraction.c); the caller then prepares it from its body.  *going is
 * what onboarding_prepare_delivery would have returned.
 */
bool
onboarding_prepare_kept(ObDelivery *d, HeapTuple stored, TupleDesc desc, const ObInboxAtts *atts,
						bool *going)
{
	bool		isnull;
	Datum		kept;

	if (atts->extraction == InvalidAttrNumber || d->payload == NULL)
		return false;
	kept = heap_getattr(stored, atts->extraction, desc, &isnull);
	if (isnull ||
		!onboarding_extraction_load(d, DatumGetByteaPP(kept),
									delivery_text(stored, desc, atts->event_type),
									delivery_text(stored, desc, atts->subject),
									delivery_text(stored, desc, atts->status_raw)))
		return false;
	*going = delivery_classify(d);
	return true;
}

/* Column numbers, values and null flags of a row's changed columns */
typedef struct DeliveryCols
{
	int			n;
	int			cols[13];
	Datum		values[13];
	bool		nulls[13];
} DeliveryCols;

/* Add one column to a DeliveryCols. */
static void
delivery_col(DeliveryCols *c, AttrNumber att, bool isnull, Datum value)
{
	Assert(c->n < lengthof(c->cols));
	c->cols[c->n] = att;
	c->nulls[c->n] = isnull;
	c->values[c->n] = isnull ? (Datum) 0 : value;
	c->n++;
}

/* Add a text column (NULL when s is). */
static void
delivery_col_text(DeliveryCols *c, AttrNumber att, const char *s)
{
	delivery_col(c, att, s == NULL, s == NULL ? (Datum) 0 : CStringGetTextDatum(s));
}

/* The derived columns of a processed delivery: what the pipeline found. */
static void
delivery_derived_cols(DeliveryCols *c, const ObInboxAtts *atts, ObDelivery *d)
{
	delivery_col_text(c, atts->event_type, d->event_type);
	delivery_col_text(c, atts->subject, d->subject);
	delivery_col_text(c, atts->status_raw, d->status_raw);
	delivery_col(c, atts->event_at, !d->has_event_at, TimestampTzGetDatum(d->event_at));
	delivery_col(c, atts->outcome, false, ObjectIdGetDatum(onboarding_outcome_oid(d->outcome)));
	delivery_col_text(c, atts->detail, d->detail.len > 0 ? d->detail.data : NULL);
	delivery_col(c, atts->body_hash, d->payload == NULL, Int64GetDatum((int64) d->body_hash));
	delivery_col(c, atts->duplicate_of, d->duplicate_of == 0, Int64GetDatum(d->duplicate_of));
	if (atts->extraction != InvalidAttrNumber)
		delivery_col(c, atts->extraction, d->extraction == NULL, PointerGetDatum(d->extraction));
}

/*
 * The row being inserted, with the delivery's id, provider, payload (with
 * set_payload: the parsed raw body) and derived columns.
 */
HeapTuple
onboarding_delivery_store(HeapTuple tuple, TupleDesc desc, const ObInboxAtts *atts,
						  ObDelivery *d, bool set_payload)
{
	DeliveryCols c = {0};

	delivery_col(&c, atts->id, false, Int64GetDatum(d->id));
	delivery_col(&c, atts->provider, d->provider == OB_PROVIDER_NONE,
				 d->provider == OB_PROVIDER_NONE ? (Datum) 0 :
				 ObjectIdGetDatum(onboarding_provider_oid(d->provider)));
	if (set_payload)
		delivery_col(&c, atts->payload, d->payload == NULL, JsonbPGetDatum(d->payload));
	delivery_derived_cols(&c, atts, d);
	return heap_modify_tuple_by_cols(tuple, desc, c.n, c.cols, c.values, c.nulls);
}

/* Does a text column hold exactly s (both NULL counts as equal)? */
static bool
delivery_text_equal(HeapTuple tup, TupleDesc desc, AttrNumber att, const char *s)
{
	bool		isnull;
	Datum		v = heap_getattr(tup, att, desc, &isnull);
	text	   *t;

	if (isnull || s == NULL)
		return isnull && s == NULL;
	t = DatumGetTextPP(v);
	return VARSIZE_ANY_EXHDR(t) == strlen(s) &&
		memcmp(VARDATA_ANY(t), s, VARSIZE_ANY_EXHDR(t)) == 0;
}

/* Does a by-value column hold value (isnull counts)? */
static bool
delivery_value_equal(HeapTuple tup, TupleDesc desc, AttrNumber att, bool null, Datum value)
{
	bool		isnull;
	Datum		v = heap_getattr(tup, att, desc, &isnull);

	if (isnull || null)
		return isnull && null;
	return v == value;
}

/* Does a bytea column hold exactly b (both NULL counts as equal)? */
static bool
delivery_bytes_equal(HeapTuple tup, TupleDesc desc, AttrNumber att, bytea *b)
{
	bool		isnull;
	Datum		v;
	bytea	   *stored;

	if (att == InvalidAttrNumber)
		return true;
	v = heap_getattr(tup, att, desc, &isnull);
	if (isnull || b == NULL)
		return isnull && b == NULL;
	stored = DatumGetByteaPP(v);
	return VARSIZE_ANY_EXHDR(stored) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(stored), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b)) == 0;
}

/*
 * Are the derived columns a derivation computed the ones the stored row
 * already has?  Then the row need not be written again.
 */
static bool
delivery_unchanged(HeapTuple tup, TupleDesc desc, const ObInboxAtts *atts, ObDelivery *d)
{
	return delivery_text_equal(tup, desc, atts->event_type, d->event_type) &&
		delivery_text_equal(tup, desc, atts->subject, d->subject) &&
		delivery_text_equal(tup, desc, atts->status_raw, d->status_raw) &&
		delivery_text_equal(tup, desc, atts->detail, d->detail.len > 0 ? d->detail.data : NULL) &&
		delivery_value_equal(tup, desc, atts->event_at, !d->has_event_at,
							 TimestampTzGetDatum(d->event_at)) &&
		delivery_value_equal(tup, desc, atts->outcome, false,
							 ObjectIdGetDatum(onboarding_outcome_oid(d->outcome))) &&
		delivery_value_equal(tup, desc, atts->body_hash, d->payload == NULL,
							 Int64GetDatum((int64) d->body_hash)) &&
		delivery_value_equal(tup, desc, atts->duplicate_of, d->duplicate_of == 0,
							 Int64GetDatum(d->duplicate_of)) &&
		delivery_bytes_equal(tup, desc, atts->extraction, d->extraction);
}

/*
 * Rewrite the derived columns of a stored delivery when a derivation
 * (rebuild(), or the re-derivation of its group) judged it otherwise than
 * the row says.  stored is the row as the caller read it (desc and
 * stored_atts describe it, which may be a query's projection; its t_self
 * says where it is stored); the table's own column numbers come with the
 * open store.  Evidence is never touched, with one exception: a delivery
 * stored with no provider (none given, none recognised when it arrived)
 * that the rules now recognise gets that provider, as if it had arrived
 * now; the provider given or recognised on arrival is never changed.
 */
void
onboarding_delivery_rewrite(ObDelivery *d, HeapTuple stored, TupleDesc desc,
							const ObInboxAtts *stored_atts)
{
	ObStore    *inbox;
	const ObInboxAtts *atts;
	DeliveryCols c = {0};
	bool		no_provider;
	bool		recognised;

	(void) heap_getattr(stored, stored_atts->provider, desc, &no_provider);
	recognised = no_provider && d->provider != OB_PROVIDER_NONE;
	if (!recognised && delivery_unchanged(stored, desc, stored_atts, d))
		return;
	inbox = onboarding_store(OB_S_INBOX);
	atts = onboarding_store_inbox_atts(inbox);
	if (recognised)
		delivery_col(&c, atts->provider, false, ObjectIdGetDatum(onboarding_provider_oid(d->provider)));
	delivery_derived_cols(&c, atts, d);
	onboarding_store_rewrite(inbox, d->id, stored->t_tableOid, &stored->t_self, c.n, c.cols, c.values, c.nulls);
}

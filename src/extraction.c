/*-------------------------------------------------------------------------
 *
 * extraction.c
 *		What reading a body gave (event, subject, status, time, effects with
 *		their typed fields), kept beside the delivery in inbox.extraction so
 *		that a later fold never reads the body again.
 *
 * A late delivery refolds the deliveries placed after it (window.c), and
 * a group fold all of its group's (group.c): each of those stored
 * deliveries must be what it was when it arrived, before any fold judged
 * it.  In 0.2.0 that meant parsing and extracting its body again.  Now the
 * trigger keeps the result of detection (detect.c, extract.c), taken
 * before classification against status_map (which is cheap and which a
 * taught status changes), as a compact binary value; a fold loads it
 * instead.
 *
 * A kept extraction holds for the rules that made it: it carries the
 * fingerprint of its provider's extraction rules and of the time zone
 * (extract.c, rules.c), and one made under other rules is not used (the
 * body is read again, as before).  rebuild() reads every body in its
 * first pass and writes the extraction back where it differs, so after a
 * rebuild every kept extraction is current.
 *
 * The event type, subject and status are not in it: the row's own
 * columns hold them, written with it.  The value is never trusted further
 * than it can be checked: a wrong
 * magic number (another build, another byte order), a fingerprint of
 * other rules, a length that runs past the end or a value that is not one
 * of its column's are all "not usable", never an error.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "common/hashfn.h"
#include "pgtime.h"
#include "utils/builtins.h"

/* 'OBX' and the format's version (2: one-byte lengths, no row columns) */
#define EXTRACTION_MAGIC	0x4f425802

/* How each field is kept: its column's type */
typedef enum KeptType
{
	KEPT_TEXT,
	KEPT_BOOL,
	KEPT_INT64,					/* tax_id (a taxid), expires_at (timestamptz) */
	KEPT_ENUM,					/* document_type: the label */
	KEPT_JSONB					/* accounts_key: its text */
} KeptType;

/* The type a field's value has (onboarding_field_from_text says which). */
static KeptType
kept_type(ObField f)
{
	switch (f)
	{
		case OB_F_ENABLED:
		case OB_F_SIGNER:
			return KEPT_BOOL;
		case OB_F_TAX_ID:
		case OB_F_EXPIRES_AT:
			return KEPT_INT64;
		case OB_F_DOCUMENT_TYPE:
			return KEPT_ENUM;
		case OB_F_ACCOUNTS_KEY:
			return KEPT_JSONB;
		default:
			return KEPT_TEXT;
	}
}

/*
 * The fingerprint an extraction of provider's bodies carries: its rules'
 * and the time zone's (provider times are read in it).
 */
static uint64
extraction_fingerprint(ObProvider provider)
{
	static pg_tz *zone = NULL;	/* the zone last hashed, and its hash */
	static uint64 zone_hash = 0;
	uint64		rules = onboarding_extract_fingerprint(provider);
	pg_tz	   *tz = onboarding_timezone();

	if (rules == 0)
		return 0;
	if (tz != zone)
	{
		const char *name = pg_get_timezone_name(tz);

		zone_hash = hash_bytes_extended((const unsigned char *) name, strlen(name), 0);
		zone = tz;
	}
	return (rules ^ zone_hash) | 1;
}

/* ---------------------------------------------------------------------
 * Writing
 * ---------------------------------------------------------------------
 */

/* Append n bytes (the value is binary: no terminating zero is kept). */
static inline void
put(StringInfo buf, const void *p, int n)
{
	if (buf->len + n >= buf->maxlen)
		enlargeStringInfo(buf, n);
	memcpy(buf->data + buf->len, p, n);
	buf->len += n;
}

/*
 * A string's length byte: its length up to STR_SHORT, or one of these.  An
 * effect's key is most often the delivery's subject, its rule event the
 * event type and its status the delivery's: they are written by reference.
 */
#define STR_SHORT		250		/* longest length in the length byte itself */
#define STR_NULL		251
#define STR_EVENT_TYPE	252		/* the same as the delivery's event_type */
#define STR_SUBJECT		253		/* ... subject */
#define STR_STATUS_RAW	254		/* ... status_raw */
#define STR_LONG		255		/* a 4-byte length follows */

/* Append n bytes of s after their length. */
static void
put_bytes(StringInfo buf, const char *s, int32 n)
{
	uint8		code = n <= STR_SHORT ? (uint8) n : STR_LONG;

	put(buf, &code, 1);
	if (code == STR_LONG)
		put(buf, &n, sizeof(n));
	put(buf, s, n);
}

/* Append a string, or a NULL; one of d's strings by reference when equal. */
static void
put_str(StringInfo buf, const char *s, const ObDelivery *d)
{
	uint8		ref;

	if (s == NULL)
		ref = STR_NULL;
	else if (d != NULL && d->subject != NULL && strcmp(s, d->subject) == 0)
		ref = STR_SUBJECT;
	else if (d != NULL && d->event_type != NULL && strcmp(s, d->event_type) == 0)
		ref = STR_EVENT_TYPE;
	else if (d != NULL && d->status_raw != NULL && strcmp(s, d->status_raw) == 0)
		ref = STR_STATUS_RAW;
	else
	{
		put_bytes(buf, s, (int32) strlen(s));
		return;
	}
	put(buf, &ref, 1);
}

/* Append a field's value, by its type. */
static void
put_value(StringInfo buf, ObField f, Datum v)
{
	switch (kept_type(f))
	{
		case KEPT_BOOL:
			{
				uint8		b = DatumGetBool(v) ? 1 : 0;

				put(buf, &b, 1);
				break;
			}
		case KEPT_INT64:
			{
				int64		i = DatumGetInt64(v);

				put(buf, &i, sizeof(i));
				break;
			}
		case KEPT_ENUM:
			put_str(buf, onboarding_enum_label(DatumGetObjectId(v)), NULL);
			break;
		case KEPT_JSONB:
			put_str(buf, JsonbToCString(NULL, &DatumGetJsonbP(v)->root, 0), NULL);
			break;
		case KEPT_TEXT:
			{
				text	   *t = DatumGetTextPP(v);

				put_bytes(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				break;
			}
	}
}

/*
 * The extraction of a delivery just detected (onboarding_prepare_delivery,
 * before classification), as the value of inbox.extraction; NULL when
 * there is nothing a fold could use (no provider, no rule tables).
 */
bytea *
onboarding_extraction_save(ObDelivery *d)
{
	StringInfoData buf;
	uint32		magic = EXTRACTION_MAGIC;
	uint64		fingerprint;
	uint8		flags;
	uint8		outcome = (uint8) d->outcome;
	int16		neffects = (int16) list_length(d->effects);
	int64		at = d->has_event_at ? d->event_at : 0;
	ListCell   *lc;

	if (d->provider == OB_PROVIDER_NONE || d->payload == NULL ||
		list_length(d->effects) > PG_INT16_MAX)
		return NULL;
	fingerprint = extraction_fingerprint(d->provider);
	if (fingerprint == 0)
		return NULL;
	flags = (d->decided ? 1 : 0) | (d->has_event_at ? 2 : 0);

	initStringInfo(&buf);
	buf.len = VARHDRSZ;
	put(&buf, &magic, sizeof(magic));
	put(&buf, &fingerprint, sizeof(fingerprint));
	put(&buf, &flags, 1);
	put(&buf, &outcome, 1);
	put(&buf, &at, sizeof(at));
	/* (event type, subject and status are the row's own columns) */
	put_str(&buf, d->detail.len > 0 ? d->detail.data : NULL, NULL);
	put(&buf, &neffects, sizeof(neffects));
	foreach(lc, d->effects)
	{
		ObEffect   *e = (ObEffect *) lfirst(lc);
		uint8		head[3] = {(uint8) e->entity, e->primary ? 1 : 0, 0};

		for (int f = 0; f < OB_NFIELDS; f++)
			head[2] += e->carried[f] != OB_NOT_CARRIED;
		put(&buf, head, sizeof(head));
		put_str(&buf, e->key, d);
		put_str(&buf, e->rule_event, d);
		put_str(&buf, e->status_raw, d);
		put_str(&buf, e->status_key, d);
		put_str(&buf, e->status, NULL);
		for (int f = 0; f < OB_NFIELDS; f++)
		{
			uint8		pair[2] = {(uint8) f, e->carried[f]};

			if (e->carried[f] == OB_NOT_CARRIED)
				continue;
			put(&buf, pair, sizeof(pair));
			if (e->carried[f] == OB_CARRIED)
				put_value(&buf, (ObField) f, e->values[f]);
		}
	}
	SET_VARSIZE(buf.data, buf.len);
	return (bytea *) buf.data;
}

/* ---------------------------------------------------------------------
 * Reading
 * ---------------------------------------------------------------------
 */

/* A kept extraction being read: where, how far, and whether it still holds */
typedef struct Reader
{
	const char *p;
	const char *end;
	bool		ok;
} Reader;

/* Copy n bytes out, or fail when fewer are left. */
static void
get(Reader *r, void *out, int n)
{
	if (!r->ok || n < 0 || r->end - r->p < n)
	{
		r->ok = false;
		memset(out, 0, Max(n, 0));
		return;
	}
	memcpy(out, r->p, n);
	r->p += n;
}

/*
 * A string (NULL for a NULL; one of d's by reference, d NULL when none may
 * be); fails on a length past the end, a zero byte, or a reference to a
 * NULL.
 */
static char *
get_str(Reader *r, const ObDelivery *d)
{
	uint8		code;
	int32		n;
	char	   *s;

	get(r, &code, 1);
	if (!r->ok || code == STR_NULL)
		return NULL;
	if (code > STR_NULL && code < STR_LONG)
	{
		s = d == NULL ? NULL :
			code == STR_SUBJECT ? d->subject :
			code == STR_EVENT_TYPE ? d->event_type : d->status_raw;
		r->ok &= s != NULL;
		return s;
	}
	n = code;
	if (code == STR_LONG)
		get(r, &n, sizeof(n));
	if (!r->ok || n < 0 || r->end - r->p < n || memchr(r->p, '\0', n) != NULL)
	{
		r->ok = false;
		return NULL;
	}
	s = pnstrdup(r->p, n);
	r->p += n;
	return s;
}

/* A field's value, by its type; fails when it is not a value of its column. */
static Datum
get_value(Reader *r, ObField f)
{
	Datum		v = (Datum) 0;

	switch (kept_type(f))
	{
		case KEPT_BOOL:
			{
				uint8		b;

				get(r, &b, 1);
				r->ok &= b <= 1;
				return BoolGetDatum(b == 1);
			}
		case KEPT_INT64:
			{
				int64		i;

				get(r, &i, sizeof(i));
				return Int64GetDatum(i);
			}
		case KEPT_ENUM:
		case KEPT_JSONB:
		case KEPT_TEXT:
			{
				char	   *s = get_str(r, NULL);

				if (!r->ok || s == NULL)
				{
					r->ok = false;
					return (Datum) 0;
				}
				if (kept_type(f) == KEPT_TEXT)
					return CStringGetTextDatum(s);
				/* the label or the JSON text, read as detection reads them */
				if (!onboarding_field_from_text(f, s, &v))
					r->ok = false;
				return v;
			}
	}
	r->ok = false;
	return v;
}

/*
 * Load a kept extraction into d, set up from its inbox row
 * (onboarding_delivery_init) and not yet prepared, with the event type,
 * subject and status the row's columns hold (written with the extraction,
 * always: delivery.c): d is then as onboarding_prepare_delivery leaves it
 * before classification.  Returns false, leaving d as it was, when the
 * value cannot be used (see the banner); the caller reads the body instead.
 */
bool
onboarding_extraction_load(ObDelivery *d, bytea *kept, char *event_type, char *subject,
						   char *status_raw)
{
	Reader		r = {VARDATA_ANY(kept), VARDATA_ANY(kept) + VARSIZE_ANY_EXHDR(kept), true};
	uint32		magic;
	uint64		fingerprint;
	uint8		flags;
	uint8		outcome;
	int64		at;
	int16		neffects;
	char	   *detail;
	List	   *effects = NIL;
	ObDelivery	names;			/* the strings an effect's may refer to */

	get(&r, &magic, sizeof(magic));
	get(&r, &fingerprint, sizeof(fingerprint));
	if (!r.ok || magic != EXTRACTION_MAGIC || d->provider == OB_PROVIDER_NONE ||
		fingerprint != extraction_fingerprint(d->provider))
		return false;
	get(&r, &flags, 1);
	get(&r, &outcome, 1);
	get(&r, &at, sizeof(at));
	detail = get_str(&r, NULL);
	memset(&names, 0, sizeof(names));
	names.event_type = event_type;
	names.subject = subject;
	names.status_raw = status_raw;
	get(&r, &neffects, sizeof(neffects));
	if (!r.ok || flags > 3 || outcome >= OB_NOUTCOMES || neffects < 0)
		return false;
	for (int i = 0; i < neffects && r.ok; i++)
	{
		ObEffect   *e = palloc0(sizeof(ObEffect));
		uint8		head[3];
		char	   *status;

		get(&r, head, sizeof(head));
		if (!r.ok || head[0] >= OB_NENTITIES || head[1] > 1)
			return false;
		e->entity = (ObEntity) head[0];
		e->primary = head[1] == 1;
		e->key = get_str(&r, &names);
		e->rule_event = get_str(&r, &names);
		e->status_raw = get_str(&r, &names);
		e->status_key = get_str(&r, &names);
		status = get_str(&r, NULL);
		if (!r.ok || e->key == NULL || e->rule_event == NULL)
			return false;
		/* an operator's status is a label of the entity's graph already */
		if (status != NULL &&
			(e->status = onboarding_status_label(onboarding_entity_graph(e->entity), status)) == NULL)
			return false;
		for (int k = 0; k < head[2] && r.ok; k++)
		{
			uint8		pair[2];

			get(&r, pair, sizeof(pair));
			if (!r.ok || pair[0] >= OB_NFIELDS ||
				(pair[1] != OB_CARRIED && pair[1] != OB_CARRIED_NULL))
				return false;
			e->carried[pair[0]] = pair[1];
			if (pair[1] == OB_CARRIED)
				e->values[pair[0]] = get_value(&r, (ObField) pair[0]);
		}
		effects = lappend(effects, e);
	}
	if (!r.ok || r.p != r.end)
		return false;

	d->event_type = event_type;
	d->subject = subject;
	d->status_raw = status_raw;
	d->has_event_at = (flags & 2) != 0;
	d->event_at = d->has_event_at ? (TimestampTz) at : 0;
	d->decided = (flags & 1) != 0;
	d->outcome = (ObOutcome) outcome;
	d->effects = effects;
	resetStringInfo(&d->detail);
	if (detail != NULL)
		appendStringInfoString(&d->detail, detail);
	d->extraction = kept;
	return true;
}

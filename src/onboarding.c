/*-------------------------------------------------------------------------
 *
 * onboarding.c
 *		The small helpers every step of the pipeline shares: label tables,
 *		notes and outcomes, time zones, cut text, retired caches.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include <math.h>

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "pgtime.h"
#include "utils/datetime.h"
#include "utils/memutils.h"

/* Label tables, in the order of the SQL enums */
const char *const onboarding_outcome_names[OB_NOUTCOMES] = {
	"applied", "duplicate", "stale", "illegal_transition", "unrecognized", "invalid", "refused"
};
const char *const onboarding_entity_names[OB_NENTITIES] = {
	"account", "proposal", "document", "closure", "background_check", "documentscopy"
};

/* Column name of each field */
const char *const onboarding_field_names[OB_NFIELDS] = {
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

/* The field of a column name of the state tables; OB_NFIELDS if none. */
ObField
onboarding_field_from_name(const char *name)
{
	for (int i = 0; i < OB_NFIELDS; i++)
		if (strcmp(name, onboarding_field_names[i]) == 0)
			return (ObField) i;
	return OB_NFIELDS;
}

/*
 * Resolve a time zone the way PostgreSQL's own TimeZone setting does: a
 * number is hours EAST of Greenwich (ISO 8601 sign: '-03' is three hours
 * behind UTC, as in SET TIME ZONE -3), anything else a zone name or a
 * POSIX zone string.  NULL when PostgreSQL would refuse it.
 */
pg_tz *
onboarding_resolve_timezone(const char *name)
{
	char	   *endptr;
	double		hours;
	pg_tz	   *tz;

	if (name == NULL || name[0] == '\0')
		return NULL;
	hours = strtod(name, &endptr);
	if (endptr != name && *endptr == '\0')
	{
		if (hours < -15.59 || hours > 15.59)
			return NULL;
		/* PostgreSQL's pg_tzset_offset wants seconds WEST of Greenwich */
		return pg_tzset_offset((long) rint(-hours * SECS_PER_HOUR));
	}
	tz = pg_tzset(name);
	if (tz == NULL || !pg_tz_acceptable(tz))
		return NULL;
	return tz;
}

/*
 * A copy of s cut to at most maxbytes bytes on a character boundary, with
 * "..." after it when something was cut: derived text quotes what a
 * provider sent, and half a multibyte character would be an invalid byte
 * sequence stored in a text column (pg_restore refuses those).
 */
char *
onboarding_clip(const char *s, int maxbytes)
{
	int			len = strlen(s);
	int			keep;

	if (len <= maxbytes)
		return pstrdup(s);
	keep = pg_mbcliplen(s, len, maxbytes);
	return psprintf("%.*s...", keep, s);
}

/* Replaced caches (rules.c, extract.c), freed at transaction end */
static List *retired_caches = NIL;
static bool retire_callback = false;	/* caches_xact_callback registered */

/* Free the caches replaced during the transaction that just ended. */
static void
caches_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	foreach(lc, retired_caches)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(retired_caches);
	retired_caches = NIL;
}

/*
 * Keep the context of a replaced cache until the transaction ends: the
 * delivery at hand may still point into it.
 */
void
onboarding_cache_retire(MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	if (!retire_callback)
	{
		RegisterXactCallback(caches_xact_callback, NULL);
		retire_callback = true;
	}
	retired_caches = lappend(retired_caches, cxt);
	MemoryContextSwitchTo(old);
}

/* Append a sentence to the delivery's detail ("; " between sentences). */
void
onboarding_note(ObDelivery *d, const char *fmt,...)
{
	va_list		args;

	if (d->detail.len > 0)
		appendStringInfoString(&d->detail, "; ");
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&d->detail, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&d->detail, needed);
	}
}

/*
 * Settle the delivery's outcome and say why; the reason comes first in the
 * detail, before any warnings noted so far.  Returns false so that a
 * pipeline step can "return onboarding_decide(...)".
 */
bool
onboarding_decide(ObDelivery *d, ObOutcome outcome, const char *fmt,...)
{
	StringInfoData reason;
	va_list		args;

	d->decided = true;
	d->outcome = outcome;
	initStringInfo(&reason);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&reason, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&reason, needed);
	}
	if (d->detail.len > 0)
		appendStringInfo(&reason, "; %s", d->detail.data);
	resetStringInfo(&d->detail);
	appendBinaryStringInfo(&d->detail, reason.data, reason.len);
	pfree(reason.data);
	return false;
}

/* The entity of a name of onboarding.history.entity; OB_NENTITIES if none. */
ObEntity
onboarding_entity_from_name(const char *name)
{
	for (int i = 0; i < OB_NENTITIES; i++)
		if (strcmp(name, onboarding_entity_names[i]) == 0)
			return (ObEntity) i;
	return OB_NENTITIES;
}

/*-------------------------------------------------------------------------
 *
 * onboarding.c
 *		Module set-up (the magic block, the settings) and the small helpers
 *		every step of the pipeline shares.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/xact.h"
#include "pgtime.h"
#include "utils/guc.h"

/*
 * PG_MODULE_MAGIC is in taxid.c, the one object that both onboarding.so and
 * taxid.so are linked from (a library carries exactly one magic block).
 */

void		_PG_init(void);

/* Label tables, in the order of the SQL enums */
const char *const onboarding_provider_names[OB_NPROVIDERS] = {"celcoin", "qitech", "fitbank"};
const char *const onboarding_outcome_names[] = {
	"applied", "duplicate", "stale", "illegal_transition", "unrecognized", "invalid"
};
const char *const onboarding_entity_names[OB_NENTITIES] = {
	"account", "proposal", "document", "closure", "background_check", "documentscopy"
};

/* onboarding.timezone: the zone naive provider times are read in */
static char *onboarding_timezone_name = NULL;
static pg_tz *onboarding_timezone_value = NULL;

/* Accept only zones PostgreSQL itself would accept for TimeZone. */
static bool
onboarding_timezone_check(char **newval, void **extra, GucSource source)
{
	pg_tz	   *tz = pg_tzset(*newval);

	if (tz == NULL || !pg_tz_acceptable(tz))
	{
		GUC_check_errdetail("Time zone \"%s\" is not recognized.", *newval);
		GUC_check_errhint("Use a name from pg_timezone_names, such as America/Sao_Paulo.");
		return false;
	}
	*extra = malloc(sizeof(pg_tz *));
	if (*extra == NULL)
		return false;
	*((pg_tz **) *extra) = tz;
	return true;
}

/* Keep the zone the check hook resolved. */
static void
onboarding_timezone_assign(const char *newval, void *extra)
{
	onboarding_timezone_value = *((pg_tz **) extra);
}

/* The zone naive provider times are read in. */
pg_tz *
onboarding_timezone(void)
{
	return onboarding_timezone_value;
}

/*
 * At transaction end: close the tables store.c opened, release the per-row
 * lock of dedupe.c, free replaced rule caches, and after an error forget
 * the pipeline's flags.
 */
static void
onboarding_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			onboarding_store_end_of_xact(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			onboarding_store_end_of_xact(false);
			onboarding_state_reset();
			/* FALLTHROUGH */
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			onboarding_dedupe_release();
			onboarding_rules_end_of_xact();
			break;
		default:
			break;
	}
}

/* Module load: define the setting, register the transaction callback. */
void
_PG_init(void)
{
	DefineCustomStringVariable("onboarding.timezone",
							   "Time zone in which provider times without an offset are read.",
							   "Changing it changes how later deliveries are read; "
							   "onboarding.rebuild() rereads every delivery with the new value.",
							   &onboarding_timezone_name,
							   "America/Sao_Paulo",
							   PGC_SUSET,
							   0,
							   onboarding_timezone_check,
							   onboarding_timezone_assign,
							   NULL);
	MarkGUCPrefixReserved("onboarding");
	RegisterXactCallback(onboarding_xact_callback, NULL);
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

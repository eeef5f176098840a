/*-------------------------------------------------------------------------
 *
 * spi.c
 *		SPI the way the pipeline needs it: as the extension's owner, under a
 *		fixed search_path.
 *
 * Deliveries arrive from roles that may only INSERT into the inbox, yet
 * deriving state writes tables those roles must not touch.  As core's
 * ri_triggers.c does, the pipeline runs its queries as the owner of the
 * inbox, so nothing the caller's search_path names may end up in them: a
 * cached plan is analysed again whenever the search_path differs from the
 * one it was made under.  Two defences, by path:
 *
 *	- the per-delivery queries of derive.c name every table, type and
 *	  operator with its schema (OPERATOR(pg_catalog.=)), as ri_triggers.c
 *	  does, so that their analysis does not depend on the search_path;
 *	- everything else (loading the rules, rebuild(), force_status())
 *	  connects with the search_path pinned to pg_catalog, pg_temp, undone
 *	  by onboarding_spi_finish() or by the transaction's abort.  Pinning costs a
 *	  GUC change, which the hot path avoids.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "miscadmin.h"
#include "utils/guc.h"

/*
 * Connect to SPI and become the extension's owner until onboarding_spi_finish();
 * with pin_search_path, also set search_path to pg_catalog, pg_temp.  The
 * caller keeps the frame (on its stack): after an error, the (sub)
 * transaction's abort restores the user and the GUC nesting by itself, so
 * nothing here is left behind.
 */
void
onboarding_spi_connect(ObSpiFrame *frame, bool pin_search_path)
{
	GetUserIdAndSecContext(&frame->saved_userid, &frame->saved_sec);
	SetUserIdAndSecContext(onboarding_inbox_oids()->owner,
						   frame->saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	frame->guc_nestlevel = 0;
	if (pin_search_path)
	{
		frame->guc_nestlevel = NewGUCNestLevel();
		(void) set_config_option("search_path", "pg_catalog, pg_temp",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Disconnect from SPI and become the caller again. */
void
onboarding_spi_finish(ObSpiFrame *frame)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	if (frame->guc_nestlevel > 0)
		AtEOXact_GUC(true, frame->guc_nestlevel);
	SetUserIdAndSecContext(frame->saved_userid, frame->saved_sec);
}

/* Prepare and keep a plan (between onboarding_spi_connect and onboarding_spi_finish). */
SPIPlanPtr
onboarding_spi_prepare(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

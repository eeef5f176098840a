/*-------------------------------------------------------------------------
 *
 * spi.c
 *		SPI the way the pipeline needs it: as the extension's owner, under a
 *		fixed search_path.
 *
 * Deliveries arrive from roles that may only INSERT into the inbox, yet
 * deriving state writes tables those roles must not touch.  The hot path
 * (store.c) uses no SQL at all.  What SQL the pipeline runs (loading the
 * rules, rebuild(), force_status()) runs, as core's ri_triggers.c does, as
 * the owner of the inbox, with search_path pinned to pg_catalog, pg_temp
 * (undone by onboarding_spi_finish() or by the transaction's abort), and
 * names every table, type and operator with its schema: nothing the
 * caller's search_path names can end up in a query.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "miscadmin.h"
#include "utils/guc.h"

/*
 * Connect to SPI, become the extension's owner and set search_path to
 * pg_catalog, pg_temp until onboarding_spi_finish().  The caller keeps the
 * frame (on its stack): after an error, the (sub)transaction's abort
 * restores the user and the GUC nesting by itself, so nothing here is left
 * behind.
 */
void
onboarding_spi_connect(ObSpiFrame *frame)
{
	GetUserIdAndSecContext(&frame->saved_userid, &frame->saved_sec);
	SetUserIdAndSecContext(onboarding_inbox_oids()->owner,
						   frame->saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	frame->guc_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Disconnect from SPI and become the caller again. */
void
onboarding_spi_finish(ObSpiFrame *frame)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
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

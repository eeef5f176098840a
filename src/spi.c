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
 *	  by ob_spi_finish() or by the transaction's abort.  Pinning costs a
 *	  GUC change, which the hot path avoids.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "miscadmin.h"
#include "utils/guc.h"

/* The user we were before ob_spi_connect(), restored by ob_spi_finish() */
typedef struct SpiFrame
{
	Oid			saved_userid;
	int			saved_sec;
	int			guc_nestlevel;	/* undoes the pinned search_path; 0: not pinned */
} SpiFrame;

#define OB_MAX_SPI_DEPTH 8
static SpiFrame frames[OB_MAX_SPI_DEPTH];
static int	depth = 0;

/*
 * Connect to SPI and become the extension's owner until ob_spi_finish();
 * with pin_search_path, also set search_path to pg_catalog, pg_temp.
 */
void
ob_spi_connect(bool pin_search_path)
{
	SpiFrame   *f;

	if (depth >= OB_MAX_SPI_DEPTH)
		elog(ERROR, "onboarding SPI nesting too deep");
	f = &frames[depth++];
	GetUserIdAndSecContext(&f->saved_userid, &f->saved_sec);
	SetUserIdAndSecContext(ob_inbox_oids()->owner, f->saved_sec | SECURITY_LOCAL_USERID_CHANGE);
	f->guc_nestlevel = 0;
	if (pin_search_path)
	{
		f->guc_nestlevel = NewGUCNestLevel();
		(void) set_config_option("search_path", "pg_catalog, pg_temp",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Disconnect from SPI and become the caller again. */
void
ob_spi_finish(void)
{
	SpiFrame   *f;

	Assert(depth > 0);
	f = &frames[--depth];
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	if (f->guc_nestlevel > 0)
		AtEOXact_GUC(true, f->guc_nestlevel);
	SetUserIdAndSecContext(f->saved_userid, f->saved_sec);
}

/* Forget the nesting after an error (the transaction restores the user). */
void
ob_spi_reset(void)
{
	depth = 0;
}

/* Prepare and keep a plan (between ob_spi_connect and ob_spi_finish). */
SPIPlanPtr
ob_spi_prepare(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	Assert(depth > 0);
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

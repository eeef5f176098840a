/*-------------------------------------------------------------------------
 *
 * statement.c
 *		The executor hooks that police the statements users run while the
 *		pipeline writes: nested statements, ON CONFLICT, mixed statements.
 *
 * store.c keeps the latest version of the state rows a delivering
 * statement touched in memory until the statement ends (the window).  A
 * statement that runs inside it (a user's trigger on the inbox, a function
 * it calls) must see those rows, and may write them: ExecutorStart writes
 * the window first and moves the statement's snapshot past the writes.  A
 * statement that both delivers and writes state (a data-modifying CTE) is
 * refused before it runs.  A row an INSERT ... ON CONFLICT may discard
 * after the inbox's trigger ran must not derive state: the statements with
 * ON CONFLICT under way are counted.  And the statement that was running
 * when the library was loaded, which these hooks never saw, is looked at
 * from its portal (onboarding_statement_adopt).
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "tcop/pquery.h"
#include "utils/lsyscache.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"

static int	on_conflict_running = 0;	/* statements with ON CONFLICT started, not ended */
static bool adopt_pending = false;	/* loaded while statements ran: look at them */
static bool unseen_running = false; /* a statement our hooks never saw may be running */

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorEnd_hook_type prev_executor_end = NULL;

/* Does a plan have an INSERT ... ON CONFLICT, at its top or in a CTE? */
static bool
statement_on_conflict(PlannedStmt *stmt)
{
	ListCell   *lc;

	if (stmt->commandType == CMD_SELECT && !stmt->hasModifyingCTE)
		return false;
	if (IsA(stmt->planTree, ModifyTable) &&
		((ModifyTable *) stmt->planTree)->onConflictAction != ONCONFLICT_NONE)
		return true;
	foreach(lc, stmt->subplans)
	{
		Plan	   *plan = (Plan *) lfirst(lc);

		if (plan != NULL && IsA(plan, ModifyTable) &&
			((ModifyTable *) plan)->onConflictAction != ONCONFLICT_NONE)
			return true;
	}
	return false;
}

/*
 * Could the row being inserted into the inbox be discarded after its
 * triggers ran (ON CONFLICT DO NOTHING, or DO UPDATE's conflict path)?
 * Only while a statement with ON CONFLICT runs: without one, a row whose
 * id is taken fails the statement, and what it derived goes with it.  A
 * statement that ended by an error is counted until the transaction ends,
 * which only makes the inbox look more often; so is a statement that began
 * before the library was loaded (onboarding_statement_adopt).
 */
bool
onboarding_statement_row_may_be_discarded(void)
{
	return on_conflict_running > 0 || unseen_running;
}

/*
 * A statement with several result relations (data-modifying CTEs) that
 * inserts into onboarding.inbox and writes a state table or history would
 * write rows the pipeline is writing in the same command: refuse it before
 * it runs, with the supported way in the hint.
 */
static void
statement_refuse_mixed(PlannedStmt *stmt)
{
	Oid			nsp = get_namespace_oid("onboarding", true);
	bool		inbox = false;
	const char *state = NULL;
	ListCell   *lc;

	if (!OidIsValid(nsp))
		return;
	foreach(lc, stmt->resultRelations)
	{
		Oid			relid = rt_fetch(lfirst_int(lc), stmt->rtable)->relid;
		char	   *name;

		if (get_rel_namespace(relid) != nsp)
			continue;
		name = get_rel_name(relid);
		if (strcmp(name, "inbox") == 0)
			inbox = true;
		for (int i = 0; i < OB_NWRITTEN_STORES; i++)
			if (strcmp(name, onboarding_store_name((ObStoreId) i)) == 0)
				state = onboarding_store_name((ObStoreId) i);
	}
	if (inbox && state != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a statement cannot both insert into onboarding.inbox and write onboarding.%s", state),
				 errdetail("The deliveries of a statement derive state while it runs; another write of the same rows in that statement would be lost or fail."),
				 errhint("Write the state table in a statement of its own after the delivery, "
						 "for instance from an AFTER INSERT trigger on onboarding.inbox, or use onboarding.force_status().")));
}

/*
 * ExecutorStart hook.  A statement that runs while a delivering statement
 * is still going (a user's trigger on the inbox, a function it calls) must
 * see the state the deliveries so far derived, and may write it: the
 * window is written first, and the statement's snapshot moved past those
 * writes.
 */
static void
statement_executor_start(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;

	if (list_length(stmt->resultRelations) > 1)
		statement_refuse_mixed(stmt);
	if (statement_on_conflict(stmt))
		on_conflict_running++;
	if (onboarding_store_pending() && onboarding_store_plan_touches(stmt))
	{
		onboarding_store_flush(false);
		CommandCounterIncrement();

		/*
		 * The statement sees those writes through a copy of its snapshot
		 * moved past them; the snapshot it was given may be the outer
		 * statement's too, and is left as it is.
		 */
		if (queryDesc->snapshot != NULL && IsMVCCSnapshot(queryDesc->snapshot))
		{
			Snapshot	moved;

			PushCopiedSnapshot(queryDesc->snapshot);
			moved = GetActiveSnapshot();
			moved->curcid = GetCurrentCommandId(false);
			moved = RegisterSnapshot(moved);
			PopActiveSnapshot();
			UnregisterSnapshot(queryDesc->snapshot);
			queryDesc->snapshot = moved;
		}
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* ExecutorEnd hook: a statement with ON CONFLICT is over. */
static void
statement_executor_end(QueryDesc *queryDesc)
{
	if (on_conflict_running > 0 && statement_on_conflict(queryDesc->plannedstmt))
		on_conflict_running--;
	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * The library is loaded by the first of its functions a backend calls,
 * usually the inbox's trigger: the statement that fires it started before
 * our executor hooks were installed, so they never saw it.  The first
 * trigger after the load (the inbox's, or a state table's) looks at the
 * portal that is running instead: a statement that delivers and writes
 * state is refused as statement_executor_start would have, and one with ON
 * CONFLICT is counted.  A statement the portal does not show (a function's,
 * run by a top-level statement that does not insert into the inbox, or a
 * DO block's) may have ON CONFLICT too: until the transaction ends, every
 * delivery looks for its id (onboarding_statement_row_may_be_discarded).  A
 * top-level COPY runs no statement of its own before the trigger.  Not in
 * _PG_init itself: an error there would leave the library half loaded.
 */
void
onboarding_statement_adopt(void)
{
	bool		seen = false;
	ListCell   *lc;

	if (!adopt_pending)
		return;
	adopt_pending = false;
	if (ActivePortal == NULL)
		return;
	foreach(lc, ActivePortal->stmts)
	{
		PlannedStmt *stmt = lfirst_node(PlannedStmt, lc);
		ListCell   *rc;

		if (stmt->commandType == CMD_UTILITY)
		{
			seen |= IsA(stmt->utilityStmt, CopyStmt);
			continue;
		}
		if (list_length(stmt->resultRelations) > 1)
			statement_refuse_mixed(stmt);
		if (statement_on_conflict(stmt))
			on_conflict_running++;
		foreach(rc, stmt->resultRelations)
			seen |= onboarding_inbox_holds(rt_fetch(lfirst_int(rc), stmt->rtable)->relid);
	}
	if (!seen)
		unseen_running = true;
}

/* At transaction end (store.c's callback): no statement of ours runs any more. */
void
onboarding_statement_reset(void)
{
	on_conflict_running = 0;
	unseen_running = false;
}

/* Module load: install the executor hooks. */
void
onboarding_statement_init(void)
{
	adopt_pending = IsTransactionState();
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = statement_executor_start;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = statement_executor_end;
}


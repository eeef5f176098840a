/*-------------------------------------------------------------------------
 *
 * bind.c
 *		What a user added to a state table or to history, honoured on the
 *		pipeline's writes (SPEC §4.2.1).
 *
 * A state table as shipped has nothing the pipeline's own writes could
 * break, and store.c writes it through the table access method (the fast
 * path).  Once a user adds to it — a column, a default, a stored generated
 * column, a CHECK or NOT NULL, a unique or exclusion index, a trigger of
 * their own, a foreign key from one of their tables — the table is bound,
 * and every write the pipeline makes to it goes through the executor's
 * row primitives, the ones logical replication's apply worker uses
 * (ExecSimpleRelationInsert/Update/Delete in execReplication.c): BEFORE
 * and AFTER row triggers, stored generated columns, constraints, index
 * maintenance with unique checks, replica identity checks.  Like the apply
 * worker, we fill the defaults of the columns we do not write ourselves
 * (worker.c's slot_fill_defaults) and bracket a delivery's writes in an
 * after-trigger query level, so that AFTER triggers (foreign-key checks
 * among them) fire when the delivery's writes are done, inside the
 * subtransaction derive.c runs them in.  Statement triggers fire once for
 * each delivery's writes of each kind.
 *
 * A constraint is judged twice.  Before a delivery's change is folded in,
 * onboarding_bind_judge() evaluates NOT NULL, CHECK, unique and exclusion
 * constraints on the row it would make, so the fold skips a refused
 * delivery at its place as it skips an illegal transition — on the
 * incremental path, on the late path and in rebuild() alike.  The write
 * itself then checks everything again (and what only a write can: foreign
 * keys, user triggers); a refusal there rolls the delivery's writes back.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_proc.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/syscache.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "compat.h"

/* What a table's user additions need on the pipeline's writes */
struct ObBind
{
	Relation	rel;
	ResultRelInfo *rri;
	EState	   *estate;
	const char *what;			/* "onboarding.account", for messages */
	bool	   *owned;			/* per attribute: a column the pipeline writes */
	int			ndefaults;		/* the user's columns with a default */
	AttrNumber *defatt;
	ExprState **defexpr;
	int			nchecks;		/* CHECK constraints, enforced ones */
	ExprState **checks;
	const char **checknames;
	List	   *unique;			/* unique and exclusion indexes but the primary key */
	TupleTableSlot *judged;		/* scratch: the row being judged */
	TupleTableSlot *old;		/* scratch: the version being replaced */
	EPQState	epq;
	bool		written[3];		/* insert, update, delete in the current bracket */
	ObBind	   *next_written;	/* the bracket's list of bound tables written */
	ObBind	   *root;			/* a partition's: its partitioned table's, whose
								 * statement triggers fire (NULL: its own) */
};

/* The delivery whose writes are under way (NULL between deliveries) */
static ObBindBracket *bracket = NULL;

/* The row the pipeline is updating through the executor right now */
static Oid	writing_relid = InvalidOid;
static ItemPointerData writing_tid;

/*
 * Is the trigger's function one of our own: state_before_update() (the
 * transition guard), state_counted() or state_truncated() (status_tally's
 * count of a user's statements, which the pipeline's writes leave alone),
 * history_spanned() or history_truncated() (stage_span's, the same)?
 */
static bool
bind_own_trigger(Trigger *trigger)
{
	char	   *name = get_func_name(trigger->tgfoid);

	return name != NULL &&
		(strcmp(name, "state_before_update") == 0 || strcmp(name, "state_counted") == 0 ||
		 strcmp(name, "state_truncated") == 0 || strcmp(name, "history_spanned") == 0 ||
		 strcmp(name, "history_truncated") == 0) &&
		get_func_namespace(trigger->tgfoid) == onboarding_schema_oid();
}

/*
 * Does the table carry anything of a user's that the fast path would
 * ignore?  table: 0 .. 3, a state table; -1, history; owned: per
 * attribute, a column the pipeline writes.  (shipped_notnull: the columns
 * the shipped tables declare NOT NULL, which the pipeline always fills.)
 */
static bool
bind_needed(Relation rel, int table, const bool *owned)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TriggerDesc *trig = rel->trigdesc;
	ListCell   *lc;
	static const char *const shipped_notnull[] = {
		"provider", "account_key", "proposal_key", "document_key", "status", "last_inbox_id",
		"last_seen_id", "id", "entity", "entity_key", "to_status", "inbox_id"
	};

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		shipped = false;

		if (att->attisdropped)
			continue;
		if (!owned[i] || (att->atthasdef && !att->attidentity))
			return true;
		if (!att->attnotnull)
			continue;
		for (int k = 0; k < lengthof(shipped_notnull); k++)
			shipped |= (strcmp(NameStr(att->attname), shipped_notnull[k]) == 0);
		/* (proposal.status is NULL while only its checks are known) */
		if (!shipped || (table == 1 && strcmp(NameStr(att->attname), "status") == 0))
			return true;
	}
	if (desc->constr && (desc->constr->num_check > 0 || desc->constr->has_generated_stored))
		return true;
	for (int i = 0; trig != NULL && i < trig->numtriggers; i++)
		if (!bind_own_trigger(&trig->triggers[i]))
			return true;		/* a user's, or a foreign key's (tgisinternal) */
	foreach(lc, RelationGetIndexList(rel))
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index index;
		bool		user;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for index %u", lfirst_oid(lc));
		index = (Form_pg_index) GETSTRUCT(tup);
		user = (index->indisunique || index->indisexclusion) && !index->indisprimary;
		ReleaseSysCache(tup);
		if (user)
			return true;
	}
	return false;
}

/*
 * The bind of a table opened by store.c (rri: its indexes open), or NULL
 * when nothing of a user's is on it.  Allocated in the current memory
 * context, which lives as long as the open table.
 */
/* Per attribute of a table: is it a column the pipeline writes? */
static bool *
bind_owned_columns(Relation rel, int table)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool	   *owned = palloc(desc->natts * sizeof(bool));

	for (int i = 0; i < desc->natts; i++)
	{
		const char *name = NameStr(TupleDescAttr(desc, i)->attname);

		owned[i] = table >= 0 ? onboarding_state_column(table, name) : onboarding_history_column(name);
	}
	return owned;
}

/*
 * Is anything of a user's on the table (table: 0 .. 3, a state table; -1,
 * history)?  Then its writes must go through onboarding_bind_open()'s.
 */
bool
onboarding_bind_needed(Relation rel, int table)
{
	bool	   *owned = bind_owned_columns(rel, table);
	bool		needed = bind_needed(rel, table, owned);

	pfree(owned);
	return needed;
}

/*
 * The bind of a table that onboarding_bind_needed() said needs one, opened
 * by store.c with its indexes (rri).  Allocated in the current memory
 * context, which lives as long as the open table.
 */
ObBind *
onboarding_bind_open(Relation rel, ResultRelInfo *rri, EState *estate, int table)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool	   *owned = bind_owned_columns(rel, table);
	ObBind	   *b;

	b = palloc0(sizeof(ObBind));
	b->rel = rel;
	b->rri = rri;
	b->estate = estate;
	b->owned = owned;
	b->what = psprintf("onboarding.%s", RelationGetRelationName(rel));
	b->judged = table_slot_create(rel, NULL);
	b->old = table_slot_create(rel, NULL);
	ob_eval_plan_qual_init(&b->epq, estate);
	/*
	 * So that the executor's trigger machinery finds this result relation;
	 * and its trigger slots made now, under the resource owner the store
	 * opens tables under, not in the subtransaction of a delivery's writes.
	 */
	estate->es_opened_result_relations = lappend(estate->es_opened_result_relations, rri);
	(void) ExecGetTriggerOldSlot(estate, rri);
	(void) ExecGetTriggerNewSlot(estate, rri);

	/* the defaults of the user's columns, as worker.c's slot_fill_defaults() */
	b->defatt = palloc(desc->natts * sizeof(AttrNumber));
	b->defexpr = palloc(desc->natts * sizeof(ExprState *));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Expr	   *def;

		if (att->attisdropped || att->attgenerated || owned[i])
			continue;
		def = (Expr *) build_column_default(rel, i + 1);
		if (def == NULL)
			continue;
		b->defatt[b->ndefaults] = i + 1;
		b->defexpr[b->ndefaults] = ExecPrepareExpr(expression_planner(def), estate);
		b->ndefaults++;
	}

	/* CHECK constraints, as execMain.c's ExecRelCheck() prepares them */
	if (desc->constr && desc->constr->num_check > 0)
	{
		ConstrCheck *check = desc->constr->check;

		b->checks = palloc(desc->constr->num_check * sizeof(ExprState *));
		b->checknames = palloc(desc->constr->num_check * sizeof(char *));
		for (int i = 0; i < desc->constr->num_check; i++)
		{
			if (!ob_check_is_enforced(&check[i]))
				continue;
			b->checks[b->nchecks] = ExecPrepareExpr(stringToNode(check[i].ccbin), estate);
			b->checknames[b->nchecks] = pstrdup(check[i].ccname);
			b->nchecks++;
		}
	}

	/* unique and exclusion indexes a user added: judged before a write */
	for (int i = 0; i < rri->ri_NumIndices; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];
		Form_pg_index form = index->rd_index;

		if (!(form->indisunique || form->indisexclusion) || form->indisprimary)
			continue;
		if (rri->ri_IndexRelationInfo[i]->ii_UniqueOps == NULL && form->indisunique)
			BuildSpeculativeIndexInfo(index, rri->ri_IndexRelationInfo[i]);
		b->unique = lappend_oid(b->unique, RelationGetRelid(index));
	}
	return b;
}

/*
 * A partition's bind gets its partitioned table's (opened on the table,
 * its result relation the root of the partition's): statement triggers
 * fire on that one.
 */
void
onboarding_bind_set_root(ObBind *b, ObBind *root)
{
	b->root = root;
}

/* Is attribute i (0-based) one the pipeline writes? */
bool
onboarding_bind_owned(ObBind *b, int i)
{
	return b->owned[i];
}

/*
 * A row the pipeline creates: the user's columns that have a default get
 * it (values and nulls: the table's attributes).  Evaluated in the per-row
 * memory of the caller (the values are copied out of the executor's).
 */
void
onboarding_bind_defaults(ObBind *b, Datum *values, bool *nulls)
{
	ExprContext *econtext = GetPerTupleExprContext(b->estate);
	TupleDesc	desc = RelationGetDescr(b->rel);

	for (int i = 0; i < b->ndefaults; i++)
	{
		int			att = b->defatt[i] - 1;
		Form_pg_attribute form = TupleDescAttr(desc, att);
		Datum		v = ExecEvalExpr(b->defexpr[i], econtext, &nulls[att]);

		values[att] = nulls[att] ? (Datum) 0 : datumCopy(v, form->attbyval, form->attlen);
	}
	ResetPerTupleExprContext(b->estate);
}

/*
 * Would the row values/nulls be refused by a constraint of the table?
 * self: where the row's current version is (not a conflict with itself),
 * or NULL for a new row; unique: judge unique and exclusion indexes too
 * (not for history, whose rows a late delivery rewrites: those are judged
 * on writing).  Returns NULL, or a sentence naming the
 * constraint.  Errors in a user's expression are raised as they would be
 * for the user's own INSERT.
 */
char *
onboarding_bind_judge(ObBind *b, Datum *values, bool *nulls, ItemPointer self, bool unique)
{
	TupleDesc	desc = RelationGetDescr(b->rel);
	TupleTableSlot *slot = b->judged;
	ExprContext *econtext;
	char	   *why = NULL;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, desc->natts * sizeof(Datum));
	memcpy(slot->tts_isnull, nulls, desc->natts * sizeof(bool));
	ExecStoreVirtualTuple(slot);
	if (desc->constr && desc->constr->has_generated_stored)
		ExecComputeStoredGenerated(b->rri, b->estate, slot, CMD_INSERT);
	slot_getallattrs(slot);

	for (int i = 0; i < desc->natts && why == NULL; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		/* (an identity column is given its value when the row is written) */
		if (att->attnotnull && !att->attisdropped && !att->attidentity && slot->tts_isnull[i])
			why = psprintf("null value in column \"%s\" of %s violates its not-null constraint",
						   NameStr(att->attname), b->what);
	}

	econtext = GetPerTupleExprContext(b->estate);
	econtext->ecxt_scantuple = slot;
	for (int i = 0; i < b->nchecks && why == NULL; i++)
		if (!ExecCheck(b->checks[i], econtext))
			why = psprintf("the row would violate check constraint \"%s\" of %s",
						   b->checknames[i], b->what);

	if (why == NULL && unique && b->unique != NIL)
	{
		ListCell   *lc;

		foreach(lc, b->unique)
		{
			ItemPointerData conflict;

			if (!ob_exec_check_index_constraints(b->rri, slot, b->estate, &conflict, self,
												 list_make1_oid(lfirst_oid(lc))))
			{
				why = psprintf("the row would violate unique or exclusion constraint \"%s\" of %s",
							   get_rel_name(lfirst_oid(lc)), b->what);
				break;
			}
		}
	}
	ResetPerTupleExprContext(b->estate);
	ExecClearTuple(slot);
	return why;
}

/*
 * Fire the BEFORE STATEMENT triggers of a kind of write, once per bracket:
 * a partition's are its partitioned table's, as for a statement that
 * names the table (statement triggers are not cloned onto partitions).
 */
static void
bind_statement(ObBind *b, CmdType cmd)
{
	int			k = cmd == CMD_INSERT ? 0 : (cmd == CMD_UPDATE ? 1 : 2);

	if (b->root != NULL)
		b = b->root;

	if (bracket == NULL || b->written[k])
		return;
	if (!b->written[0] && !b->written[1] && !b->written[2])
	{
		b->next_written = bracket->written;
		bracket->written = b;
	}
	b->written[k] = true;
	if (cmd == CMD_INSERT)
		ExecBSInsertTriggers(b->estate, b->rri);
	else if (cmd == CMD_UPDATE)
		ExecBSUpdateTriggers(b->estate, b->rri);
	else
		ExecBSDeleteTriggers(b->estate, b->rri);
}

/*
 * Empty the slots a write filled: the trigger machinery's (a BEFORE
 * trigger's OLD row stays in its slot, pinning its buffer) and our own.
 * After every write, and after an error before its subtransaction is
 * rolled back, so that no slot outlives the pin it holds.
 */
void
onboarding_bind_clear(ObBind *b)
{
	ExecClearTuple(ExecGetTriggerOldSlot(b->estate, b->rri));
	ExecClearTuple(ExecGetTriggerNewSlot(b->estate, b->rri));
	ExecClearTuple(b->old);
	ExecClearTuple(b->judged);
}

/* Insert the slot's row (its tid is set on return); cid: the command writing. */
void
onboarding_bind_insert(ObBind *b, TupleTableSlot *slot, CommandId cid)
{
	b->estate->es_output_cid = cid;
	bind_statement(b, CMD_INSERT);
	ExecSimpleRelationInsert(b->rri, b->estate, slot);
	onboarding_bind_clear(b);
	ResetPerTupleExprContext(b->estate);
}

/* Replace the version at tid (locked by this transaction) with the slot's row. */
void
onboarding_bind_update(ObBind *b, ItemPointer tid, TupleTableSlot *slot, CommandId cid)
{
	Oid			saved_relid = writing_relid;
	ItemPointerData saved_tid = writing_tid;

	if (!table_tuple_fetch_row_version(b->rel, tid, SnapshotAny, b->old))
		elog(ERROR, "a row of %s to update is gone", b->what);
	b->estate->es_output_cid = cid;
	bind_statement(b, CMD_UPDATE);
	writing_relid = RelationGetRelid(b->rel);
	writing_tid = *tid;
	PG_TRY();
	{
		ExecSimpleRelationUpdate(b->rri, b->estate, &b->epq, b->old, slot);
	}
	PG_FINALLY();
	{
		writing_relid = saved_relid;
		writing_tid = saved_tid;
	}
	PG_END_TRY();
	onboarding_bind_clear(b);
	ResetPerTupleExprContext(b->estate);
}

/* Delete the version at tid (locked by this transaction). */
void
onboarding_bind_delete(ObBind *b, ItemPointer tid, CommandId cid)
{
	if (!table_tuple_fetch_row_version(b->rel, tid, SnapshotAny, b->old))
		elog(ERROR, "a row of %s to delete is gone", b->what);
	b->estate->es_output_cid = cid;
	bind_statement(b, CMD_DELETE);
	ExecSimpleRelationDelete(b->rri, b->estate, &b->epq, b->old);
	onboarding_bind_clear(b);
	ResetPerTupleExprContext(b->estate);
}

/*
 * Is this BEFORE UPDATE trigger call (of the state tables' own guard) for
 * the row the pipeline is writing?  Then the guard has nothing to check:
 * the pipeline judged the move already.
 */
bool
onboarding_bind_is_pipeline_write(Relation rel, HeapTuple old)
{
	return OidIsValid(writing_relid) && RelationGetRelid(rel) == writing_relid &&
		ItemPointerEquals(&old->t_self, &writing_tid);
}

/*
 * A delivery's writes begin: AFTER triggers queued from here on fire at
 * onboarding_bind_end().  br lives on the caller's stack; brackets nest
 * (a user's trigger may deliver).
 */
void
onboarding_bind_begin(ObBindBracket *br)
{
	br->outer = bracket;
	br->written = NULL;
	bracket = br;
	AfterTriggerBeginQuery();
}

/*
 * A delivery's writes are done: AFTER STATEMENT triggers of each kind of
 * write made, then every AFTER trigger queued, fire.  An error raised by
 * one of them is the delivery's (derive.c refuses it).
 */
void
onboarding_bind_end(ObBindBracket *br, EState *estate)
{
	ObBind	   *b;

	for (b = br->written; b != NULL; b = b->next_written)
	{
		if (b->written[0])
			ExecASInsertTriggers(b->estate, b->rri, NULL);
		if (b->written[1])
			ExecASUpdateTriggers(b->estate, b->rri, NULL);
		if (b->written[2])
			ExecASDeleteTriggers(b->estate, b->rri, NULL);
	}
	AfterTriggerEndQuery(estate);
	onboarding_bind_abort(br);
}

/*
 * Forget a bracket (after its end, or when its subtransaction rolled back:
 * the after-trigger query level went with it).
 */
void
onboarding_bind_abort(ObBindBracket *br)
{
	ObBind	   *b = br->written;

	while (b != NULL)
	{
		ObBind	   *next = b->next_written;

		memset(b->written, 0, sizeof(b->written));
		b->next_written = NULL;
		b = next;
	}
	br->written = NULL;
	bracket = br->outer;
}

/* After a transaction's abort: no bracket is open any more. */
void
onboarding_bind_reset(void)
{
	bracket = NULL;
	writing_relid = InvalidOid;
}

/* Let go of what a bind holds (its slots pin the table's descriptor). */
void
onboarding_bind_close(ObBind *b)
{
	ExecDropSingleTupleTableSlot(b->judged);
	ExecDropSingleTupleTableSlot(b->old);
	EvalPlanQualEnd(&b->epq);
}

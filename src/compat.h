/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every difference between the PostgreSQL majors the extension builds
 *		against, in one place.
 *
 * Supported: 15, 17 and 18 (16 should build too; it is untested).  Each
 * shim is named after the call it papers over and is a macro or a static
 * inline function, so that the rest of src/ reads the same on every major
 * and holds no PG_VERSION_NUM test of its own.  When a major is dropped,
 * its branches go; when one is added, its differences come here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ONBOARDING_COMPAT_H
#define ONBOARDING_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "onboarding needs PostgreSQL 15 or later"
#endif

#include "access/genam.h"
#include "access/tableam.h"
#include "common/jsonapi.h"
#include "executor/executor.h"
#include "utils/rel.h"
#include "utils/relcache.h"

/*
 * JSON semantic-action callbacks (JsonSemAction) return a JsonParseErrorType
 * since 16, nothing before.  A callback is declared to return
 * ob_json_action_result and ends with "return OB_JSON_ACTION_OK;".
 */
#if PG_VERSION_NUM >= 160000
typedef JsonParseErrorType ob_json_action_result;
#define OB_JSON_ACTION_OK	JSON_SUCCESS
#else
typedef void ob_json_action_result;
#define OB_JSON_ACTION_OK
#endif

/*
 * makeJsonLexContextCstringLen() takes the context to fill (NULL: allocate
 * one) as its first argument since 17.
 */
static inline JsonLexContext *
ob_make_json_lex_context_cstring_len(char *json, int len, int encoding, bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, encoding, need_escapes);
#else
	return makeJsonLexContextCstringLen(json, len, encoding, need_escapes);
#endif
}

/*
 * index_beginscan() takes an IndexScanInstrumentation (for EXPLAIN ANALYZE
 * of parallel scans) since 18; we never have one.
 */
static inline IndexScanDesc
ob_index_beginscan(Relation heap, Relation index, Snapshot snapshot, int nkeys, int norderbys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, norderbys);
#else
	return index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

/*
 * RelationGetPrimaryKeyIndex() asks since 18 whether a deferrable primary
 * key will do; ours are never deferrable, and the answer before 18 was the
 * immediate one.
 */
static inline Oid
ob_relation_get_primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

/*
 * table_tuple_update() says since 16 which indexes need the new version
 * (TU_UpdateIndexes: none, all, or only the summarizing ones), before that
 * only whether they all do (bool).  Here: *update_indexes whether any
 * does, *only_summarizing whether only the summarizing ones do (never
 * before 16), for ob_exec_insert_index_tuples().
 */
static inline TM_Result
ob_table_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot, CommandId cid,
					  Snapshot snapshot, Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
					  LockTupleMode *lockmode, bool *update_indexes, bool *only_summarizing)
{
	TM_Result	res;
#if PG_VERSION_NUM >= 160000
	TU_UpdateIndexes which = TU_None;

	res = table_tuple_update(rel, otid, slot, cid, snapshot, crosscheck, wait, tmfd,
							 lockmode, &which);
	*update_indexes = (which != TU_None);
	*only_summarizing = (which == TU_Summarizing);
#else
	res = table_tuple_update(rel, otid, slot, cid, snapshot, crosscheck, wait, tmfd,
							 lockmode, update_indexes);
	*only_summarizing = false;
#endif
	return res;
}

/*
 * ExecInsertIndexTuples() takes onlySummarizing (insert into the
 * summarizing indexes only, after an update that needs no other) since 16.
 */
static inline List *
ob_exec_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
							bool update, bool no_dup_err, bool *spec_conflict,
							List *arbiter_indexes, bool only_summarizing)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, update, no_dup_err, spec_conflict,
								 arbiter_indexes, only_summarizing);
#else
	Assert(!only_summarizing);
	return ExecInsertIndexTuples(rri, slot, estate, update, no_dup_err, spec_conflict,
								 arbiter_indexes);
#endif
}


/*
 * EvalPlanQualInit() takes the result relations since 16 (15 has the same
 * call as EvalPlanQualInitExt).  The pipeline's writes through the
 * executor's row primitives (bind.c) hold their row's lock already, so
 * their EPQ state is never used to re-check a row; it only has to exist.
 */
static inline void
ob_eval_plan_qual_init(EPQState *epqstate, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	EvalPlanQualInit(epqstate, estate, NULL, NIL, -1, NIL);
#else
	EvalPlanQualInit(epqstate, estate, NULL, NIL, -1);
#endif
}

/*
 * ExecCheckIndexConstraints(): would the slot's row break a unique or
 * exclusion index of arbiters?  Since 18 it is told the row's own current
 * version (self), which it does not count; before, a conflict with that
 * version is reported and is not one.  Returns true when there is none.
 */
static inline bool
ob_exec_check_index_constraints(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
								ItemPointer conflict, ItemPointer self, List *arbiters)
{
#if PG_VERSION_NUM >= 180000
	return ExecCheckIndexConstraints(rri, slot, estate, conflict, self, arbiters);
#else
	if (ExecCheckIndexConstraints(rri, slot, estate, conflict, arbiters))
		return true;
	return self != NULL && ItemPointerIsValid(self) && ItemPointerEquals(conflict, self);
#endif
}

/*
 * A CHECK constraint may be NOT ENFORCED since 18 (then it is not checked
 * on writes); before, every one is.
 */
#if PG_VERSION_NUM >= 180000
#define ob_check_is_enforced(check)	((check)->ccenforced)
#else
#define ob_check_is_enforced(check)	true
#endif

/*
 * A number no other live backend has: MyProcNumber since 17, MyBackendId
 * before (tally.c: each backend counts in rows of its own).
 */
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define ob_backend_slot()	((int32) MyProcNumber)
#else
#include "storage/backendid.h"
#define ob_backend_slot()	((int32) MyBackendId)
#endif

#endif							/* ONBOARDING_COMPAT_H */

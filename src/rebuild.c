/*-------------------------------------------------------------------------
 *
 * rebuild.c
 *		rebuild() and rebuild_concurrently(): what the inbox derives, derived
 *		again, whole or for a scope.
 *
 * After a rule is taught (or the time zone changed), the deliveries are
 * derived again by the pipeline that derived them live.  The unit of work
 * is the group (provider, subject): the deliveries a fold must see
 * together.  Each group is folded again over the rows it derived before
 * (group.c), which rewrites only the rows that change; rows no delivery
 * derives any more are deleted at the end; no table is ever emptied.
 *
 * rebuild() is one transaction that holds off deliveries (verify() needs
 * exactly that): whole, it replays every delivery in arrival order and
 * then folds every group; given a scope (a provider, an entity, a subject,
 * deliveries received since a time) it folds only the groups in it.
 * rebuild_concurrently() is the same work as a procedure that commits
 * after each group, holding no table lock: a delivery waits at most for
 * the one group being folded.  Both report progress: a NOTICE every few
 * seconds, with rate and estimate, and a row of onboarding.rebuild_progress
 * (committed as it goes by rebuild_concurrently(), so others can watch).
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define REBUILD_NOTICE_MS	5000	/* a NOTICE, and the progress row, this often */
#define REBUILD_BATCH		500		/* groups or deliveries read per query */

/* What a rebuild covers; every field unset: everything */
typedef struct RebuildScope
{
	ObProvider	provider;		/* OB_PROVIDER_NONE: every provider */
	const char *entity;			/* NULL: every entity */
	int			entity_table;	/* its state table (ObTable), or -1 */
	Datum		subjects;		/* text[] of subjects, or (Datum) 0: every subject */
	int64		erasure;		/* an erasure's run: its id, the scope it shows */
	Datum		loose_ids;		/* int8[]: with subjects, the deliveries of no group to read */
	bool		has_since;		/* only groups with a delivery received since */
	TimestampTz since;
} RebuildScope;

/* One run of rebuild() or rebuild_concurrently() */
typedef struct Rebuild
{
	RebuildScope scope;
	bool		concurrent;		/* commits after each group */
	MemoryContext cxt;			/* lives as long as the run, across commits */
	bool		progress_table; /* onboarding.rebuild_progress exists (0.3.0) */
	int64		progress_id;	/* its row there */
	const char *phase;
	const char *phase_written;	/* the phase its progress row says */
	int64		groups_total;
	int64		groups_done;
	int64		deliveries;
	int64		deleted;
	int64		start_max_id;	/* the last delivery stored when it started */
	TimestampTz started;
	TimestampTz last_notice;
	HTAB	   *folded;			/* FoldedGroup by (provider, subject) */
	HTAB	   *folded_ids;		/* int64: the deliveries folded (a run scoped by subject or time) */
	List	   *candidates;		/* SweepCandidate *: rows no fold derived */
	bool		collect;		/* rebuild_keep() collects candidates */
} Rebuild;

/* A subject folded, and when (the run's groups_done then) */
typedef struct FoldedGroup
{
	uint64		hash;
	int64		clock;
} FoldedGroup;

/* A row the sweep would delete (rebuild_concurrently(), before locking) */
typedef struct SweepCandidate
{
	int			table;
	Oid			provider;
	char	   *key;
} SweepCandidate;

/* A group of the queue */
typedef struct QueuedGroup
{
	int64		seq;
	ObProvider	provider;
	char	   *subject;
	int64		enqueued;		/* the run's groups_done when it was queued */
} QueuedGroup;

/* What a unit of work of rebuild_concurrently() changed, to restore */
typedef struct RebuildUnit
{
	ObSpiFrame	spi;
	Relation	inbox;
	ObInboxAtts atts;
} RebuildUnit;

/* The run the sweep's keep() consults (a callback without an argument) */
static Rebuild *sweep_run = NULL;

/*
 * Lock what a replay needs: the inbox in EXCLUSIVE mode (no delivery may
 * arrive meanwhile; reading it stays possible) and the state tables and
 * history in ACCESS EXCLUSIVE mode.  All or none: a delivering transaction
 * takes the inbox first and then the state tables, a reporting transaction
 * that later delivers takes them the other way round, so a replay that
 * waited for one of them while holding another could close a cycle with
 * either.  It waits only holding nothing, then tries again.
 */
void
onboarding_rebuild_lock(void)
{
	const char *const names[] = {"inbox", "account", "proposal", "document", "closure", "history"};
	Oid			rels[lengthof(names)];
	int			waited = -1;

	for (int i = 0; i < lengthof(names); i++)
		rels[i] = onboarding_relation_oid(names[i]);
	for (;;)
	{
		int			blocked = -1;

		for (int i = 0; i < lengthof(names) && blocked < 0; i++)
			if (i != waited &&
				!ConditionalLockRelationOid(rels[i], i == 0 ? ExclusiveLock : AccessExclusiveLock))
				blocked = i;
		if (blocked < 0)
			return;
		for (int i = 0; i < blocked; i++)
			UnlockRelationOid(rels[i], i == 0 ? ExclusiveLock : AccessExclusiveLock);
		if (waited >= 0 && waited > blocked)
			UnlockRelationOid(rels[waited], waited == 0 ? ExclusiveLock : AccessExclusiveLock);
		CHECK_FOR_INTERRUPTS();
		/* wait for the one that was held, holding nothing else; keep it */
		LockRelationOid(rels[blocked], blocked == 0 ? ExclusiveLock : AccessExclusiveLock);
		waited = blocked;
	}
}

/*
 * replay_lock() → void: the locks of onboarding_rebuild_lock(), for verify(),
 * which must hold them across the rebuild it rolls back.
 */
PG_FUNCTION_INFO_V1(onboarding_replay_lock);
Datum
onboarding_replay_lock(PG_FUNCTION_ARGS)
{
	onboarding_rebuild_lock();
	PG_RETURN_VOID();
}

/* A replay reads a fresh snapshot of the inbox: not under a transaction snapshot. */
static void
rebuild_check_isolation(const char *name)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must run under READ COMMITTED", name),
				 errdetail("A replay under a transaction snapshot could miss deliveries committed while it waited for its locks."),
				 errhint("Call it in a READ COMMITTED transaction (the default).")));
}

/*
 * A table detached from the inbox that still holds deliveries: a rebuild
 * would derive its customers' state without them, and rewrite their
 * history.  Such a table is known by the trigger the DDL guard gives every
 * partition of the inbox (inbox_no_truncate, calling inbox_refuse_delete()),
 * which stays with it when it is detached.  Refused until it is attached
 * again, or its trigger dropped (the archive is final); not for a table
 * archive_partition() detached, whose deliveries stand in checkpoints.
 */
static void
rebuild_check_detached(const char *name)
{
	Relation	triggers = table_open(TriggerRelationId, AccessShareLock);
	SysScanDesc scan;
	HeapTuple	tup;

	scan = systable_beginscan(triggers, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_trigger t = (Form_pg_trigger) GETSTRUCT(tup);
		Relation	rel;
		TableScanDesc heap;
		bool		holds;

		if (strcmp(NameStr(t->tgname), "inbox_no_truncate") != 0 || t->tgparentid != InvalidOid ||
			onboarding_inbox_holds(t->tgrelid) || onboarding_checkpoint_archived(t->tgrelid))
			continue;
		if (get_func_namespace(t->tgfoid) != onboarding_schema_oid() ||
			strcmp(get_func_name(t->tgfoid), "inbox_refuse_delete") != 0)
			continue;
		rel = table_open(t->tgrelid, AccessShareLock);
		heap = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
		holds = heap_getnext(heap, ForwardScanDirection) != NULL;
		table_endscan(heap);
		if (holds)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s would not read the deliveries of table %s, detached from onboarding.inbox",
							name, RelationGetRelationName(rel)),
					 errdetail("A rebuild derives state from the inbox alone: the customers of those deliveries would lose them from their state and history."),
					 errhint("Attach it again (ALTER TABLE onboarding.inbox ATTACH PARTITION ...) and rebuild; if its deliveries are archived for good, drop its trigger inbox_no_truncate to say so.")));
		table_close(rel, AccessShareLock);
	}
	systable_endscan(scan);
	table_close(triggers, AccessShareLock);
}

/* The scope of the call's four arguments (provider, entity, subject, since). */
static void
rebuild_scope_read(FunctionCallInfo fcinfo, RebuildScope *scope)
{
	memset(scope, 0, sizeof(RebuildScope));
	scope->provider = OB_PROVIDER_NONE;
	scope->entity_table = -1;
	if (PG_NARGS() < 4)
		return;
	if (!PG_ARGISNULL(0))
		scope->provider = onboarding_provider_from_oid(PG_GETARG_OID(0));
	if (!PG_ARGISNULL(1))
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));
		ObEntity	e = onboarding_entity_from_name(name);
		int			col;

		if (e == OB_NENTITIES)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown entity \"%s\"", onboarding_clip(name, 64)),
					 errdetail("A rebuild's entity is one of onboarding.history's: account, proposal, document, closure, background_check, documentscopy."),
					 errhint("Leave it NULL to rebuild every entity.")));
		scope->entity = onboarding_entity_names[e];
		scope->entity_table = (int) onboarding_derive_table(e, &col);
	}
	if (!PG_ARGISNULL(2))
	{
		Datum		one = PG_GETARG_DATUM(2);

		scope->subjects = PointerGetDatum(construct_array(&one, 1, TEXTOID, -1, false, TYPALIGN_INT));
	}
	if (!PG_ARGISNULL(3))
	{
		scope->has_since = true;
		scope->since = PG_GETARG_TIMESTAMPTZ(3);
	}
}

/* Whether a scope is everything. */
static bool
rebuild_scope_whole(const RebuildScope *scope)
{
	return scope->provider == OB_PROVIDER_NONE && scope->entity == NULL &&
		scope->subjects == (Datum) 0 && !scope->has_since;
}

/* The scope as the four parameters $1 .. $4 of the queries below. */
static void
rebuild_scope_args(const RebuildScope *scope, Oid *types, Datum *values, char *nulls)
{
	types[0] = TEXTOID;
	types[1] = TEXTOID;
	types[2] = TEXTARRAYOID;
	types[3] = TIMESTAMPTZOID;
	memset(nulls, 'n', 4);
	if (scope->provider != OB_PROVIDER_NONE)
	{
		values[0] = CStringGetTextDatum(onboarding_provider_name(scope->provider));
		nulls[0] = ' ';
	}
	if (scope->entity != NULL)
	{
		values[1] = CStringGetTextDatum(scope->entity);
		nulls[1] = ' ';
	}
	if (scope->subjects != (Datum) 0)
	{
		values[2] = scope->subjects;
		nulls[2] = ' ';
	}
	if (scope->has_since)
	{
		values[3] = TimestampTzGetDatum(scope->since);
		nulls[3] = ' ';
	}
}

/*
 * The groups of a scope, over inbox i: $1 provider, $2 entity (a group of
 * whose deliveries one has an event that touches the entity by the rules,
 * or whose subject has history as that entity), $3 subjects, $4 since.
 */
#define REBUILD_SCOPE_SQL \
	"     ($1 IS NULL OR i.provider OPERATOR(pg_catalog.=) $1::onboarding.provider)" \
	" AND ($3 IS NULL OR (i.subject OPERATOR(pg_catalog.=) ANY ($3)" \
	"                     AND i.provider OPERATOR(pg_catalog.=) ANY" \
	"                         (pg_catalog.enum_range(NULL::onboarding.provider))))" \
	" AND ($4 IS NULL OR i.received_at OPERATOR(pg_catalog.>=) $4)" \
	" AND ($2 IS NULL" \
	"      OR EXISTS (SELECT FROM onboarding.effect_rule e" \
	"                   JOIN onboarding.event_rule r" \
	"                     ON r.provider OPERATOR(pg_catalog.=) e.provider" \
	"                    AND r.event_type OPERATOR(pg_catalog.=) e.event_type" \
	"                  WHERE e.provider OPERATOR(pg_catalog.=) i.provider" \
	"                    AND e.entity OPERATOR(pg_catalog.=) $2" \
	"                    AND CASE r.match WHEN 'exact' THEN r.event_type OPERATOR(pg_catalog.=) i.event_type" \
	"                        ELSE pg_catalog.strpos(i.event_type, r.event_type) OPERATOR(pg_catalog.>) 0 END)" \
	"      OR EXISTS (SELECT FROM onboarding.history h" \
	"                  WHERE h.entity_key OPERATOR(pg_catalog.=) i.subject" \
	"                    AND h.provider OPERATOR(pg_catalog.=) i.provider" \
	"                    AND h.entity OPERATOR(pg_catalog.=) $2))"

/*
 * The deliveries that belong to no group (no provider or no subject yet) a
 * scope re-reads: those of its provider or of none, received since its
 * time (a scope by subject has only those of $6, an erasure's; one by
 * entity has them all, as no entity is known of them); after id $5, a
 * batch at a time.  Each comes with where it is (tableoid, ctid) and the
 * first delivery of the same provider and body among them (its original,
 * as rebuild() judges duplicates: a body repeats the same derived columns,
 * so its earlier copies are among these too).
 */
#define REBUILD_LOOSE_SQL \
	"SELECT i.*, i.tableoid, i.ctid, d.first_id" \
	"  FROM onboarding.inbox i" \
	"  LEFT JOIN (SELECT x.id, pg_catalog.first_value(x.id) OVER" \
	"               (PARTITION BY x.provider, pg_catalog.jsonb_hash_extended(x.payload, 0)," \
	"                x.payload ORDER BY x.id) AS first_id" \
	"               FROM onboarding.inbox x" \
	"              WHERE x.payload IS NOT NULL AND (x.provider IS NULL OR x.subject IS NULL)) d" \
	"    ON d.id OPERATOR(pg_catalog.=) i.id" \
	" WHERE (i.provider IS NULL OR i.subject IS NULL)" \
	"   AND ($1 IS NULL OR i.provider IS NULL OR i.provider OPERATOR(pg_catalog.=) $1::onboarding.provider)" \
	"   AND ($4 IS NULL OR i.received_at OPERATOR(pg_catalog.>=) $4)" \
	"   AND ($3 IS NULL OR i.id OPERATOR(pg_catalog.=) ANY ($6))" \
	"   AND i.id OPERATOR(pg_catalog.>) $5" \
	" ORDER BY i.id LIMIT " CppAsString2(REBUILD_BATCH)

/* The hash a folded group is known by. */
static uint64
rebuild_group_hash(Oid provider, const char *subject)
{
	return hash_bytes_extended((const unsigned char *) subject, strlen(subject), provider);
}

/* Remember that a subject was folded, now. */
static void
rebuild_folded_add(Rebuild *r, Oid provider, const char *subject)
{
	uint64		h = rebuild_group_hash(provider, subject);
	FoldedGroup *g = (FoldedGroup *) hash_search(r->folded, &h, HASH_ENTER, NULL);

	g->clock = r->groups_done;
}

/* When a subject was last folded, or -1. */
static int64
rebuild_folded_at(Rebuild *r, Oid provider, const char *subject)
{
	uint64		h = rebuild_group_hash(provider, subject);
	FoldedGroup *g = (FoldedGroup *) hash_search(r->folded, &h, HASH_FIND, NULL);

	return g == NULL ? -1 : g->clock;
}

/* Run a statement of the run's own (scope parameters first); error unless it did what it expects. */
static void
rebuild_exec(Rebuild *r, const char *sql, int nextra, Oid *extra_types, Datum *extra_values,
			 char *extra_nulls, int expect)
{
	Oid			types[14];
	Datum		values[14];
	char		nulls[14];
	int			rc;

	Assert(nextra <= 10);
	rebuild_scope_args(&r->scope, types, values, nulls);
	for (int i = 0; i < nextra; i++)
	{
		types[4 + i] = extra_types[i];
		values[4 + i] = extra_values[i];
		nulls[4 + i] = extra_nulls[i];
	}
	rc = SPI_execute_with_args(sql, 4 + nextra, types, values, nulls, false, 0);
	if (rc != expect)
		elog(ERROR, "rebuild: \"%.40s...\" failed: %s", sql, SPI_result_code_string(rc));
}

/*
 * The run's row of onboarding.rebuild_progress: inserted at the start,
 * updated at every tick and at the end (finished).
 */
static void
rebuild_progress_write(Rebuild *r, TimestampTz now, double rate, double left, bool finished)
{
	bool		isnull;

	r->phase_written = r->phase;
	if (!r->progress_table)
		return;					/* a schema before 0.3.0: NOTICEs alone */
	if (r->progress_id == 0)
	{
		rebuild_exec(r, "INSERT INTO onboarding.rebuild_progress"
					 "   (pid, concurrent, scope, phase, started_at, updated_at)"
					 " VALUES (pg_catalog.pg_backend_pid(), $5,"
					 "         CASE WHEN $8 OPERATOR(pg_catalog.>) 0"
					 "              THEN pg_catalog.jsonb_build_object('erasure', $8)"
					 "              ELSE pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
					 "                       'provider', $1, 'entity', $2, 'subject', $3[1], 'since', $4)) END,"
					 "         $6, $7, $7)"
					 " RETURNING id",
					 4, (Oid[]) {BOOLOID, TEXTOID, TIMESTAMPTZOID, INT8OID},
					 (Datum[]) {BoolGetDatum(r->concurrent), CStringGetTextDatum(r->phase),
						 TimestampTzGetDatum(r->started), Int64GetDatum(r->scope.erasure)},
					 "    ", SPI_OK_INSERT_RETURNING);
		r->progress_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 1, &isnull));
		return;
	}
	rebuild_exec(r, "UPDATE onboarding.rebuild_progress"
				 "   SET phase = $6, groups_total = $7, groups_done = $8, deliveries = $9,"
				 "       rows_deleted = $10, updated_at = $11, groups_per_second = $12,"
				 "       estimated_end = $13, finished_at = CASE WHEN $14 THEN $11 END"
				 " WHERE id OPERATOR(pg_catalog.=) $5",
				 10, (Oid[]) {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID,
					 FLOAT8OID, TIMESTAMPTZOID, BOOLOID},
				 (Datum[]) {Int64GetDatum(r->progress_id), CStringGetTextDatum(r->phase),
					 Int64GetDatum(r->groups_total), Int64GetDatum(r->groups_done),
					 Int64GetDatum(r->deliveries), Int64GetDatum(r->deleted),
					 TimestampTzGetDatum(now), Float8GetDatum(rate),
					 TimestampTzGetDatum(now + (TimestampTz) (left * USECS_PER_SEC)),
					 BoolGetDatum(finished)},
				 (char[]) {' ', ' ', ' ', ' ', ' ', ' ', ' ', rate > 0 ? ' ' : 'n',
					 left >= 0 ? ' ' : 'n', ' '},
				 SPI_OK_UPDATE);
}

/*
 * Say how far the run is, every REBUILD_NOTICE_MS: a NOTICE with rate and
 * estimate, and its progress row; the row also as soon as the phase
 * changes.
 */
static void
rebuild_tick(Rebuild *r)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		notice = true;
	double		secs;
	double		rate;
	double		left = -1;

	if (!TimestampDifferenceExceeds(r->last_notice, now, REBUILD_NOTICE_MS))
	{
		if (r->phase == r->phase_written)
			return;
		notice = false;			/* a new phase: the row, without a NOTICE */
	}
	else
		r->last_notice = now;
	secs = (double) (now - r->started) / USECS_PER_SEC;
	rate = secs > 0 ? r->groups_done / secs : 0;
	if (rate > 0 && r->groups_total >= r->groups_done)
		left = (r->groups_total - r->groups_done) / rate;
	if (notice)
		ereport(NOTICE,
				(errmsg("rebuild: %s, " INT64_FORMAT " of " INT64_FORMAT " groups (%.1f%%), "
						INT64_FORMAT " deliveries, %.0f groups/s, about %.0f s left",
						r->phase, r->groups_done, r->groups_total,
						r->groups_total > 0 ? 100.0 * r->groups_done / r->groups_total : 100.0,
						r->deliveries, rate, left < 0 ? 0 : left)));
	rebuild_progress_write(r, now, rate, left, false);
}

/*
 * A run scoped by subject or time remembers which deliveries it folded: a
 * row whose key is no subject it folded (a Celcoin document's key is its
 * proposal's and the file's) is still its to delete when the delivery that
 * last wrote it is one of them.
 */
static void
rebuild_scope_ids(Rebuild *r)
{
	HASHCTL		ctl;

	if (r->folded_ids != NULL || (r->scope.subjects == (Datum) 0 && !r->scope.has_since))
		return;
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(int64);
	ctl.hcxt = r->cxt;
	r->folded_ids = hash_create("onboarding rebuild deliveries", 1024, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Begin a run: its memory, its clock, and its progress row. */
static void
rebuild_begin(Rebuild *r, FunctionCallInfo fcinfo, bool concurrent)
{
	HASHCTL		ctl;

	memset(r, 0, sizeof(Rebuild));
	if (fcinfo != NULL)
		rebuild_scope_read(fcinfo, &r->scope);
	else
	{
		r->scope.provider = OB_PROVIDER_NONE;
		r->scope.entity_table = -1;
	}
	r->concurrent = concurrent;
	r->cxt = AllocSetContextCreate(concurrent ? TopMemoryContext : CurrentMemoryContext,
								   "onboarding rebuild", ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(FoldedGroup);
	ctl.hcxt = r->cxt;
	r->folded = hash_create("onboarding rebuild groups", 1024, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	rebuild_scope_ids(r);
	r->started = r->last_notice = GetCurrentTimestamp();
	r->phase = "starting";
	r->progress_table = OidIsValid(get_relname_relid("rebuild_progress", onboarding_schema_oid()));
}

/* Open a unit of work: as the owner, with the inbox open. */
static void
rebuild_unit_begin(Rebuild *r, RebuildUnit *u)
{
	if (r->concurrent)
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		onboarding_spi_connect(&u->spi);
	}
	u->inbox = table_open(onboarding_relation_oid("inbox"), RowExclusiveLock);
	onboarding_inbox_atts(RelationGetDescr(u->inbox), &u->atts);
}

/* Close a unit of work; rebuild_concurrently() commits it. */
static void
rebuild_unit_end(Rebuild *r, RebuildUnit *u)
{
	table_close(u->inbox, NoLock);
	if (r->concurrent)
	{
		/* what the unit changed of onboarding.daily's counts, before its commit */
		onboarding_tally_flush();
		onboarding_spi_finish(&u->spi);
		PopActiveSnapshot();
		SPI_commit();
	}
}

/* Drop the queue of groups (the session's temporary table), if there is one. */
static void
rebuild_queue_drop(Rebuild *r)
{
	bool		isnull;

	rebuild_exec(r, "SELECT pg_catalog.to_regclass('pg_temp.onboarding_rebuild_queue') IS NOT NULL",
				 0, NULL, NULL, NULL, SPI_OK_SELECT);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		rebuild_exec(r, "DROP TABLE pg_temp.onboarding_rebuild_queue", 0, NULL, NULL, NULL,
					 SPI_OK_UTILITY);
}

/*
 * Add a group to the run's queue, unless it waits there already (a group
 * the rules moved deliveries into, or that a re-read delivery now belongs
 * to).
 */
static void
rebuild_enqueue(Rebuild *r, ObProvider provider, const char *subject, int64 after)
{
	rebuild_exec(r, "INSERT INTO pg_temp.onboarding_rebuild_queue (seq, provider, subject, enqueued)"
				 " SELECT (SELECT coalesce(pg_catalog.max(q.seq), 0) OPERATOR(pg_catalog.+) 1"
				 "           FROM pg_temp.onboarding_rebuild_queue q),"
				 "        $5::onboarding.provider, $6, $8"
				 "  WHERE NOT EXISTS (SELECT FROM pg_temp.onboarding_rebuild_queue q"
				 "                     WHERE q.provider OPERATOR(pg_catalog.=) $5::onboarding.provider"
				 "                       AND q.subject OPERATOR(pg_catalog.=) $6"
				 "                       AND q.seq OPERATOR(pg_catalog.>) $7)",
				 4, (Oid[]) {TEXTOID, TEXTOID, INT8OID, INT8OID},
				 (Datum[]) {CStringGetTextDatum(onboarding_provider_name(provider)),
					 CStringGetTextDatum(subject), Int64GetDatum(after),
					 Int64GetDatum(r->groups_done)},
				 "    ", SPI_OK_INSERT);
	r->groups_total += SPI_processed;
}

/*
 * Read one stored delivery again (row tup of a query whose last three
 * columns are the relation that holds it, its ctid and its original, the first delivery with the same
 * provider and body): what it is (provider, event, subject, status, time)
 * and, when it asks for no state change or is a duplicate, its outcome;
 * the others are decided by their group's fold.  With a run, its group is
 * queued for that fold.
 */
static void
rebuild_read_one(Relation inbox, const ObInboxAtts *atts, HeapTuple tup, TupleDesc desc,
				 const ObInboxAtts *ratts, Rebuild *queue_for)
{
	ObDelivery	d;
	bool		isnull;
	bool		raw_null;
	Datum		raw;
	Datum		tid;
	Datum		first;

	onboarding_delivery_init(&d, tup, desc, ratts);
	raw = heap_getattr(tup, ratts->raw, desc, &raw_null);
	/* the row is a projection: where it is stored comes as columns */
	tid = SPI_getbinval(tup, desc, desc->natts - 1, &isnull);
	tup->t_self = *(ItemPointer) DatumGetPointer(tid);
	tup->t_tableOid = DatumGetObjectId(SPI_getbinval(tup, desc, desc->natts - 2, &isnull));
	first = SPI_getbinval(tup, desc, desc->natts, &isnull);
	onboarding_process_delivery(inbox, atts, &d, raw_null ? NULL : DatumGetTextPP(raw),
								OB_RUN_REPLAY, isnull ? 0 : DatumGetInt64(first));
	if (!d.decided)
	{
		/*
		 * Its group's fold decides; until then it keeps the outcome,
		 * detail and original it had, which stay when a checkpoint covers
		 * it (the fold does not judge it again: checkpoint.c).
		 */
		Datum		outcome = heap_getattr(tup, ratts->outcome, desc, &isnull);
		Datum		detail;
		Datum		original;

		d.outcome = isnull ? OB_APPLIED : onboarding_outcome_from_oid(DatumGetObjectId(outcome));
		detail = heap_getattr(tup, ratts->detail, desc, &isnull);
		resetStringInfo(&d.detail);
		if (!isnull)
			appendStringInfoString(&d.detail, TextDatumGetCString(detail));
		original = heap_getattr(tup, ratts->duplicate_of, desc, &isnull);
		d.duplicate_of = isnull ? 0 : DatumGetInt64(original);
	}
	onboarding_delivery_rewrite(&d, tup, desc, ratts);
	if (queue_for != NULL && d.provider != OB_PROVIDER_NONE && d.subject != NULL)
		rebuild_enqueue(queue_for, d.provider, d.subject, 0);
}

/*
 * Whole rebuild(), first pass: every delivery of the cursor is read again,
 * in arrival order (rebuild_read_one).  Returns how many were read.
 */
static int64
rebuild_read(Rebuild *r, Relation inbox, const ObInboxAtts *atts, Portal portal)
{
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "onboarding rebuild row",
												 ALLOCSET_DEFAULT_SIZES);
	int64		replayed = 0;

	for (;;)
	{
		SPITupleTable *batch;
		uint64		nrows;
		ObInboxAtts ratts;

		SPI_cursor_fetch(portal, true, 1000);
		batch = SPI_tuptable;
		nrows = SPI_processed;
		if (nrows == 0)
			break;
		onboarding_inbox_atts(batch->tupdesc, &ratts);
		for (uint64 i = 0; i < nrows; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			rebuild_read_one(inbox, atts, batch->vals[i], batch->tupdesc, &ratts, NULL);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
			replayed++;
		}
		SPI_freetuptable(batch);
		r->deliveries = replayed;
		rebuild_tick(r);
	}
	MemoryContextDelete(rowcxt);
	return replayed;
}

/*
 * Whole rebuild(), second pass: fold every group (provider, subject) again,
 * in the order of their first arrivals (so that a user's unique constraint
 * across entities is won by the entity that arrived first, as it was live).
 */
static void
rebuild_fold(Rebuild *r, Relation inbox, const ObInboxAtts *atts)
{
	MemoryContext groupcxt = AllocSetContextCreate(CurrentMemoryContext, "onboarding rebuild group",
												   ALLOCSET_DEFAULT_SIZES);
	Portal		portal;

	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT provider::pg_catalog.text, subject,"
									   "       pg_catalog.count(*) OVER ()"
									   "  FROM onboarding.inbox"
									   " WHERE provider IS NOT NULL AND subject IS NOT NULL"
									   " GROUP BY provider, subject ORDER BY pg_catalog.min(id)",
									   0, NULL, NULL, NULL, false, 0);
	for (;;)
	{
		SPITupleTable *batch;
		uint64		nrows;
		bool		isnull;

		SPI_cursor_fetch(portal, true, 1000);
		batch = SPI_tuptable;
		nrows = SPI_processed;
		if (nrows == 0)
			break;
		r->groups_total = DatumGetInt64(SPI_getbinval(batch->vals[0], batch->tupdesc, 3, &isnull));
		for (uint64 i = 0; i < nrows; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(groupcxt);
			char	   *provider = SPI_getvalue(batch->vals[i], batch->tupdesc, 1);
			char	   *subject = SPI_getvalue(batch->vals[i], batch->tupdesc, 2);

			onboarding_derive_group(inbox, atts, onboarding_provider_from_name(provider), subject,
									NULL);
			MemoryContextSwitchTo(old);
			MemoryContextReset(groupcxt);
			r->groups_done++;
			rebuild_tick(r);
		}
		SPI_freetuptable(batch);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(groupcxt);
}

/*
 * The sweep's judgement of a row no fold of the run derived (state table
 * 0 .. 3, provider, key, the delivery that last wrote it): kept when
 * outside the scope, or written by a delivery stored after the run began
 * (rebuild_concurrently(): ingestion went on, and derived it), or when it
 * has a checkpoint (its deliveries are archived: checkpoint.c); else
 * deleted, or, while collecting, remembered as a candidate and kept.
 */
static bool
rebuild_keep(int table, Oid provider, const char *key, int64 written_by)
{
	Rebuild    *r = sweep_run;

	if (onboarding_derive_seen(table, provider, key))
		return true;
	if (r->concurrent && written_by > r->start_max_id)
		return true;
	if (r->scope.provider != OB_PROVIDER_NONE && provider != onboarding_provider_oid(r->scope.provider))
		return true;
	if (r->scope.entity_table >= 0 && table != r->scope.entity_table)
		return true;
	/* (folded_ids exists exactly when the run is scoped by subject or time) */
	if (r->folded_ids != NULL && rebuild_folded_at(r, provider, key) < 0 &&
		hash_search(r->folded_ids, &written_by, HASH_FIND, NULL) == NULL)
		return true;
	/* every delivery that derives it is archived: its checkpoint stands for them */
	if (onboarding_checkpoint_holds(table, provider, key))
		return true;
	if (r->collect)
	{
		MemoryContext old = MemoryContextSwitchTo(r->cxt);
		SweepCandidate *c = palloc(sizeof(SweepCandidate));

		c->table = table;
		c->provider = provider;
		c->key = pstrdup(key);
		r->candidates = lappend(r->candidates, c);
		MemoryContextSwitchTo(old);
		return true;
	}
	return false;
}

/* Delete (or, collecting, list) the rows in the scope no fold derived. */
static int64
rebuild_sweep(Rebuild *r, bool collect)
{
	volatile int64 n = 0;

	sweep_run = r;
	r->collect = collect;
	PG_TRY();
	{
		for (int i = 0; i < OB_NWRITTEN_STORES; i++)
			n += onboarding_store_sweep((ObStoreId) i, rebuild_keep, collect);
	}
	PG_FINALLY();
	{
		sweep_run = NULL;
		r->collect = false;
	}
	PG_END_TRY();
	return n;
}

/*
 * Fold one group again (a unit of work: rebuild_concurrently() commits
 * it); queue the groups its deliveries moved to.
 */
static void
rebuild_group(Rebuild *r, RebuildUnit *u, ObProvider provider, const char *subject, int64 seq)
{
	Oid			poid = onboarding_provider_oid(provider);
	ObGroupReport report;
	ListCell   *lc;

	onboarding_derive_group(u->inbox, &u->atts, provider, subject, &report);
	r->deliveries += report.deliveries;
	if (r->folded_ids != NULL)
		for (int64 i = 0; i < report.deliveries; i++)
			(void) hash_search(r->folded_ids, &report.ids[i], HASH_ENTER, NULL);
	foreach(lc, report.subjects)
		rebuild_folded_add(r, poid, (const char *) lfirst(lc));
	r->groups_done++;
	foreach(lc, report.moved)
		rebuild_enqueue(r, provider, (const char *) lfirst(lc), seq);
}

/*
 * A scoped rebuild() and every rebuild_concurrently(): queue the scope's
 * groups in the order of their first arrivals; read again the deliveries
 * of the scope that belong to no group; fold every queued group (those the
 * rules moved deliveries to included); delete the rows in the scope that
 * no delivery derives any more.  Returns how many deliveries it read.
 */
static int64
rebuild_groups(Rebuild *r)
{
	MemoryContext workcxt = AllocSetContextCreate(r->cxt, "onboarding rebuild work",
												  ALLOCSET_DEFAULT_SIZES);
	MemoryContext batchcxt = AllocSetContextCreate(r->cxt, "onboarding rebuild batch",
												   ALLOCSET_DEFAULT_SIZES);
	RebuildUnit u;
	int64		last_id = 0;
	int64		seq = 0;
	bool		isnull;

	/* the queue, and the progress row, committed before any group */
	rebuild_unit_begin(r, &u);
	r->phase = "queueing groups";
	rebuild_progress_write(r, r->started, 0, -1, false);
	rebuild_exec(r, "SELECT coalesce(pg_catalog.max(id), 0) FROM onboarding.inbox",
				 0, NULL, NULL, NULL, SPI_OK_SELECT);
	r->start_max_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												  &isnull));
	rebuild_queue_drop(r);
	rebuild_exec(r, "CREATE TEMPORARY TABLE onboarding_rebuild_queue"
				 " (seq bigint PRIMARY KEY, provider onboarding.provider NOT NULL,"
				 "  subject text NOT NULL, enqueued bigint NOT NULL)", 0, NULL, NULL, NULL,
				 SPI_OK_UTILITY);
	rebuild_exec(r, "INSERT INTO pg_temp.onboarding_rebuild_queue (seq, provider, subject, enqueued)"
				 " SELECT pg_catalog.row_number() OVER (ORDER BY pg_catalog.min(i.id)),"
				 "        i.provider, i.subject, 0"
				 "   FROM onboarding.inbox i"
				 "  WHERE i.provider IS NOT NULL AND i.subject IS NOT NULL AND" REBUILD_SCOPE_SQL
				 "  GROUP BY i.provider, i.subject",
				 0, NULL, NULL, NULL, SPI_OK_INSERT);
	r->groups_total = SPI_processed;
	rebuild_unit_end(r, &u);

	/*
	 * the deliveries of no group yet, a batch per unit (a scope by subject
	 * has none, but an erasure's)
	 */
	r->phase = "reading deliveries without a group";
	while (r->scope.subjects == (Datum) 0 || r->scope.loose_ids != (Datum) 0)
	{
		SPITupleTable *batch;
		ObInboxAtts ratts;
		uint64		nrows;

		rebuild_unit_begin(r, &u);
		rebuild_exec(r, REBUILD_LOOSE_SQL, 2, (Oid[]) {INT8OID, INT8ARRAYOID},
					 (Datum[]) {Int64GetDatum(last_id), r->scope.loose_ids},
					 (char[]) {' ', r->scope.loose_ids == (Datum) 0 ? 'n' : ' '}, SPI_OK_SELECT);
		batch = SPI_tuptable;
		nrows = SPI_processed;
		onboarding_inbox_atts(batch->tupdesc, &ratts);
		for (uint64 i = 0; i < nrows; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(workcxt);

			last_id = DatumGetInt64(SPI_getbinval(batch->vals[i], batch->tupdesc, ratts.id, &isnull));
			rebuild_read_one(u.inbox, &u.atts, batch->vals[i], batch->tupdesc, &ratts, r);
			MemoryContextSwitchTo(old);
			MemoryContextReset(workcxt);
			r->deliveries++;
		}
		rebuild_tick(r);
		rebuild_unit_end(r, &u);
		if (nrows < REBUILD_BATCH)
			break;
	}

	/* every queued group, one unit each */
	r->phase = "folding groups";
	for (;;)
	{
		SPITupleTable *batch;
		uint64		nrows;
		QueuedGroup *todo;

		MemoryContextReset(batchcxt);
		rebuild_unit_begin(r, &u);
		rebuild_exec(r, "SELECT seq, provider::pg_catalog.text, subject, enqueued"
					 "  FROM pg_temp.onboarding_rebuild_queue"
					 " WHERE seq OPERATOR(pg_catalog.>) $5 ORDER BY seq"
					 " LIMIT " CppAsString2(REBUILD_BATCH),
					 1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(seq)}, " ", SPI_OK_SELECT);
		batch = SPI_tuptable;
		nrows = SPI_processed;
		todo = MemoryContextAlloc(batchcxt, sizeof(QueuedGroup) * (nrows + 1));
		for (uint64 i = 0; i < nrows; i++)
		{
			HeapTuple	t = batch->vals[i];
			MemoryContext old = MemoryContextSwitchTo(batchcxt);

			todo[i].seq = DatumGetInt64(SPI_getbinval(t, batch->tupdesc, 1, &isnull));
			todo[i].provider = onboarding_provider_from_name(SPI_getvalue(t, batch->tupdesc, 2));
			todo[i].subject = SPI_getvalue(t, batch->tupdesc, 3);
			todo[i].enqueued = DatumGetInt64(SPI_getbinval(t, batch->tupdesc, 4, &isnull));
			MemoryContextSwitchTo(old);
		}
		rebuild_unit_end(r, &u);
		if (nrows == 0)
			break;
		for (uint64 i = 0; i < nrows; i++)
		{
			QueuedGroup *g = &todo[i];

			seq = g->seq;
			/* folded since it was queued, by a group that grew to cover it */
			if (rebuild_folded_at(r, onboarding_provider_oid(g->provider), g->subject) >= g->enqueued)
			{
				r->groups_done++;
				continue;
			}
			rebuild_unit_begin(r, &u);
			{
				MemoryContext old = MemoryContextSwitchTo(workcxt);

				rebuild_group(r, &u, g->provider, g->subject, seq);
				MemoryContextSwitchTo(old);
			}
			rebuild_tick(r);
			rebuild_unit_end(r, &u);
			MemoryContextReset(workcxt);
		}
	}
	MemoryContextDelete(batchcxt);
	MemoryContextDelete(workcxt);
	return r->deliveries;
}

/*
 * rebuild_concurrently(): the rows in the scope that no fold derived (a
 * row a delivery stored since the run began wrote is none: ingestion
 * derived it).  A row no delivery derives any more exists only when the
 * rules changed what deliveries touch; listing them takes no lock.  When there are some, the
 * deliveries are held off for a moment (the locks of rebuild()): the
 * groups of a listed row some delivery wrote since the run began are
 * folded again, and what is still derived by none is deleted.
 */
static void
rebuild_sweep_concurrently(Rebuild *r)
{
	RebuildUnit u;
	ListCell   *lc;

	r->phase = "finding rows no delivery derives";
	rebuild_unit_begin(r, &u);
	(void) rebuild_sweep(r, true);
	rebuild_unit_end(r, &u);
	if (r->candidates == NIL)
		return;

	r->phase = "deleting rows no delivery derives";
	rebuild_unit_begin(r, &u);
	onboarding_rebuild_lock();
	foreach(lc, r->candidates)
	{
		SweepCandidate *c = (SweepCandidate *) lfirst(lc);
		bool		isnull;
		Datum		subjects;

		rebuild_exec(r, "SELECT pg_catalog.array_agg(DISTINCT i.subject)"
					 "  FROM onboarding.inbox i"
					 " WHERE i.id OPERATOR(pg_catalog.>) $7 AND i.subject IS NOT NULL"
					 "   AND i.provider OPERATOR(pg_catalog.=) $5::onboarding.provider"
					 "   AND (i.subject OPERATOR(pg_catalog.=) $6"
					 "        OR EXISTS (SELECT FROM onboarding.history h"
					 "                    WHERE h.entity_key OPERATOR(pg_catalog.=) $6"
					 "                      AND h.inbox_id OPERATOR(pg_catalog.=) i.id))",
					 3, (Oid[]) {TEXTOID, TEXTOID, INT8OID},
					 (Datum[]) {CStringGetTextDatum(onboarding_provider_name(onboarding_provider_from_oid(c->provider))),
						 CStringGetTextDatum(c->key),
						 Int64GetDatum(r->start_max_id)},
					 "   ", SPI_OK_SELECT);
		subjects = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
		{
			ArrayType  *a = DatumGetArrayTypeP(subjects);
			Datum	   *elems;
			bool	   *enulls;
			int			n;

			deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
			for (int i = 0; i < n; i++)
				onboarding_derive_group(u.inbox, &u.atts, onboarding_provider_from_oid(c->provider),
										TextDatumGetCString(elems[i]), NULL);
		}
	}
	r->deleted = rebuild_sweep(r, false);
	rebuild_unit_end(r, &u);
}

/* End a run: its last progress, and its memory. */
static void
rebuild_end(Rebuild *r)
{
	r->phase = "done";
	rebuild_progress_write(r, GetCurrentTimestamp(),
						   r->groups_done > 0 ? r->groups_done /
						   Max((double) (GetCurrentTimestamp() - r->started) / USECS_PER_SEC, 1e-6) : 0,
						   0, true);
}

/*
 * rebuild(provider, entity, subject, since) → bigint
 *
 * Whole (every argument NULL): replay every delivery in inbox id order
 * (the order it was processed in) through the pipeline, then fold every
 * group again over the rows it derived before: state rows, history rows
 * and the inbox's derived columns are rewritten where they change, rows
 * no delivery derives any more are deleted (0.3.0: nothing is emptied, so
 * a user's foreign key to a state row holds, and a user's trigger sees
 * only real changes).  Scoped: the same for the groups of the scope
 * (rebuild_groups).  One transaction, holding deliveries off throughout.
 * Returns the number of deliveries read again.
 */
PG_FUNCTION_INFO_V1(onboarding_rebuild);
Datum
onboarding_rebuild(PG_FUNCTION_ARGS)
{
	Relation	inbox;
	ObInboxAtts atts;
	Portal		portal;
	Rebuild		r;
	ObSpiFrame	spi;

	/*
	 * A replay throws state away and derives it from the inbox as a fresh
	 * snapshot sees it once the locks are held (the cursors below are opened
	 * read-write, so they take one); under REPEATABLE READ or SERIALIZABLE
	 * the transaction's snapshot could miss deliveries committed while we
	 * waited, and their state would be lost.
	 */
	rebuild_check_isolation("rebuild()");
	rebuild_check_detached("rebuild()");
	rebuild_begin(&r, fcinfo, false);
	/* no delivery may arrive while we replay */
	onboarding_rebuild_lock();

	/* write what this transaction's window holds, and let go of the tables */
	onboarding_store_flush(true);
	onboarding_spi_connect(&spi);
	onboarding_derive_seen_begin(r.cxt);
	PG_TRY();
	{
		if (!rebuild_scope_whole(&r.scope))
		{
			(void) rebuild_groups(&r);
			r.phase = "deleting rows no delivery derives";
			r.deleted = rebuild_sweep(&r, false);
			rebuild_queue_drop(&r);
		}
		else
		{
			rebuild_progress_write(&r, r.started, 0, -1, false);
			inbox = table_open(onboarding_relation_oid("inbox"), NoLock);
			onboarding_inbox_atts(RelationGetDescr(inbox), &atts);

			/*
			 * duplicates: the first delivery of each (provider, body) is the
			 * original.  Found by a window over (id, provider, body) alone,
			 * joined back by id, so that whole rows are not sorted twice; its
			 * partition leads with the body's hash, so that the sort compares
			 * two bodies (jsonb comparison, a third of a rebuild when it led)
			 * only when their hashes are equal: the same partitions, since
			 * equal bodies hash alike.
			 */
			r.phase = "reading deliveries";
			portal = SPI_cursor_open_with_args(NULL,
											   "SELECT i.*, i.tableoid, i.ctid, d.first_id"
											   "  FROM onboarding.inbox i"
											   "  LEFT JOIN (SELECT x.id, pg_catalog.first_value(x.id) OVER"
											   "               (PARTITION BY x.provider, pg_catalog.jsonb_hash_extended(x.payload, 0),"
											   "                x.payload ORDER BY x.id) AS first_id"
											   "               FROM onboarding.inbox x WHERE x.payload IS NOT NULL) d"
											   "    ON d.id OPERATOR(pg_catalog.=) i.id"
											   " ORDER BY i.id",
											   0, NULL, NULL, NULL, false, 0);
			(void) rebuild_read(&r, inbox, &atts, portal);
			SPI_cursor_close(portal);

			/*
			 * Every group is folded again over the rows it derived before,
			 * which are rewritten only where they change; the rows no group
			 * derives any more are deleted at the end.
			 */
			r.phase = "folding groups";
			rebuild_fold(&r, inbox, &atts);
			r.phase = "deleting rows no delivery derives";
			r.deleted = rebuild_sweep(&r, false);
			table_close(inbox, NoLock);
		}
		rebuild_end(&r);
	}
	PG_FINALLY();
	{
		onboarding_derive_seen_end();
	}
	PG_END_TRY();
	onboarding_spi_finish(&spi);
	onboarding_store_flush(true);
	onboarding_tally_flush();
	MemoryContextDelete(r.cxt);
	PG_RETURN_INT64(r.deliveries);
}

/*
 * erase(): fold again the groups of some subjects (a text[]), and read
 * again some deliveries of no group (loose_ids, an int8[], or (Datum) 0),
 * in the caller's transaction, which holds the locks of replay_lock() and is
 * connected to SPI as the owner.  Its progress row names the erasure, not
 * the subjects (a subject may be the very tax id being erased).  Returns
 * how many deliveries it read.
 */
int64
onboarding_rebuild_subjects(Datum subjects, Datum loose_ids, int64 erasure)
{
	Rebuild		r;

	rebuild_begin(&r, NULL, false);
	r.scope.subjects = subjects;
	r.scope.loose_ids = loose_ids;
	r.scope.erasure = erasure;
	rebuild_scope_ids(&r);
	onboarding_derive_seen_begin(r.cxt);
	PG_TRY();
	{
		(void) rebuild_groups(&r);
		r.phase = "deleting rows no delivery derives";
		r.deleted = rebuild_sweep(&r, false);
		rebuild_queue_drop(&r);
		rebuild_end(&r);
	}
	PG_FINALLY();
	{
		onboarding_derive_seen_end();
	}
	PG_END_TRY();
	MemoryContextDelete(r.cxt);
	return r.deliveries;
}

/*
 * rebuild_concurrently(provider, entity, subject, since): a procedure
 *
 * rebuild()'s work for the same scope, one group per transaction and no
 * table lock held: a delivery racing it waits at most for the one group
 * being folded.  Its progress row is committed as it goes.  Stopped half
 * way (an error, a cancel), what it committed stays, consistent group by
 * group; calling it again finishes the work.
 */
PG_FUNCTION_INFO_V1(onboarding_rebuild_concurrently);
Datum
onboarding_rebuild_concurrently(PG_FUNCTION_ARGS)
{
	Rebuild		r;
	RebuildUnit u;

	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("rebuild_concurrently() cannot run inside a transaction block"),
				 errdetail("It commits after every group, so that a delivery waits for one group at most."),
				 errhint("CALL it on its own, outside BEGIN ... COMMIT and outside a function; rebuild() is the one-transaction form.")));
	rebuild_check_isolation("rebuild_concurrently()");
	rebuild_check_detached("rebuild_concurrently()");
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rebuild_begin(&r, fcinfo, true);
	PG_TRY();
	{
		onboarding_derive_seen_begin(r.cxt);
		(void) rebuild_groups(&r);
		rebuild_sweep_concurrently(&r);
		rebuild_unit_begin(&r, &u);
		rebuild_end(&r);
		ereport(NOTICE,
				(errmsg("rebuild: " INT64_FORMAT " groups, " INT64_FORMAT " deliveries, "
						INT64_FORMAT " rows no delivery derives deleted",
						r.groups_done, r.deliveries, r.deleted)));
		rebuild_queue_drop(&r);
		rebuild_unit_end(&r, &u);
	}
	PG_FINALLY();
	{
		onboarding_derive_seen_end();
		MemoryContextDelete(r.cxt);
	}
	PG_END_TRY();
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	PG_RETURN_VOID();
}

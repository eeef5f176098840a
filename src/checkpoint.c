/*-------------------------------------------------------------------------
 *
 * checkpoint.c
 *		Per-entity checkpoints: where a group's fold starts once some of its
 *		deliveries are archived.
 *
 * archive_partition() detaches a range partition of the inbox.  Before it
 * does, every state row of every group with a delivery in the partition is
 * copied into onboarding.checkpoint, with the newest inbox id of that
 * moment (covers): the row as the fold of every delivery stored so far
 * leaves it.  From then on a fold of such a group (rebuild(), verify(), a
 * late delivery) starts from the checkpoint instead of from nothing: the
 * deliveries it covers are not folded again (those still in the inbox keep
 * their outcomes, and their history rows stay the first of the row's), and
 * the others are folded after it, in event order.  So a delivery that
 * arrives after the archive is folded against the checkpoint whatever its
 * time; the bounded refold (window.c), which would read covered deliveries
 * as if they came after it, is not used in such a group.
 * restore_partition() attaches the table again and, for the rows no other
 * archive still stands behind, drops the checkpoints and folds their
 * groups again from nothing (the full replay).
 *
 * Nothing here runs for an inbox that was never archived: the table is
 * empty, and the fold does not read it.
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "access/xact.h"
#include "funcapi.h"
#include "storage/bufmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

/*
 * Connect to SPI as the pipeline does, planning with sequential scans off:
 * onboarding.checkpoint is empty, or nearly, when a plan of ours is first
 * made and kept, and grows to a row per archived entity; a kept plan that
 * scanned it whole would make every group fold, and archive_partition()
 * itself, read it all (seen: an archive of a million deliveries that did
 * not end).  Its probes are by key or by subjects, which its indexes
 * answer.
 */
static void
ckpt_spi_connect(ObSpiFrame *spi)
{
	onboarding_spi_connect(spi);
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Does the query (a probe of one of the archive's tables, its plan made
 * once into *plan) return a row?
 */
static bool
ckpt_exists(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types, Datum *values)
{
	bool		found;
	ObSpiFrame	spi;

	ckpt_spi_connect(&spi);
	if (*plan == NULL)
		*plan = onboarding_spi_prepare(sql, nargs, types);
	if (SPI_execute_plan(*plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the archive's tables");
	found = SPI_processed > 0;
	onboarding_spi_finish(&spi);
	return found;
}

/* What ckpt_table_used() found, and for which statement */
static TimestampTz used_xact = 0;	/* 0: not asked */
static TimestampTz used_stmt = 0;
static bool used = false;

/*
 * Could onboarding.checkpoint hold a row?  Read from its size (a table
 * never written has no page; one of a 0.2.0 schema does not exist), once a
 * statement: a whole rebuild asks it of every group.  Our own writes to it
 * forget the answer (ckpt_table_written).
 */
static bool
ckpt_table_used(void)
{
	Oid			relid;
	Relation	rel;

	if (used_xact == GetCurrentTransactionStartTimestamp() &&
		used_stmt == GetCurrentStatementStartTimestamp())
		return used;
	relid = get_relname_relid("checkpoint", onboarding_schema_oid());
	used = false;
	if (OidIsValid(relid))
	{
		rel = table_open(relid, AccessShareLock);
		used = RelationGetNumberOfBlocks(rel) > 0;
		table_close(rel, AccessShareLock);
	}
	used_xact = GetCurrentTransactionStartTimestamp();
	used_stmt = GetCurrentStatementStartTimestamp();
	return used;
}

/* This backend wrote onboarding.checkpoint: ask its size again. */
static void
ckpt_table_written(void)
{
	used_xact = 0;
}

/*
 * Read the checkpoint of row e (once per fold, and only when its group has
 * one): its covers and its columns, laid out as its table's.  Returns
 * whether it has one.  When it has, its latest time floors the place of
 * the deliveries after it.
 */
static bool
ckpt_load(ObFold *f, ObEntState *e)
{
	ObProvider	provider = f->provider;
	static SPIPlanPtr plans[OB_NSTATE_TABLES];
	MemoryContext cxt = CurrentMemoryContext;
	ObTableCols *cols;
	ObStore    *s;
	TupleDesc	desc;
	ObSpiFrame	spi;

	if (e->ckpt_checked)
		return e->has_ckpt;
	e->ckpt_checked = true;
	if (!f->may_have_ckpt)
		return false;
	s = onboarding_derive_open(e->table, &cols);
	desc = onboarding_store_desc(s);

	ckpt_spi_connect(&spi);
	if (plans[e->table] == NULL)
	{
		char	   *sql = psprintf("SELECT pg_catalog.jsonb_populate_record(NULL::onboarding.%s, c.state_row), c.covers"
								   "  FROM onboarding.checkpoint c"
								   " WHERE c.provider OPERATOR(pg_catalog.=) CAST($1 AS onboarding.provider)"
								   "   AND c.state_table OPERATOR(pg_catalog.=) $2"
								   "   AND c.entity_key OPERATOR(pg_catalog.=) $3",
								   onboarding_state_tables[e->table].name);

		plans[e->table] = onboarding_spi_prepare(sql, 3,
												 (Oid[]) {TEXTOID, TEXTOID, TEXTOID});
	}
	if (SPI_execute_plan(plans[e->table],
						 (Datum[]) {CStringGetTextDatum(onboarding_provider_name(provider)),
							 CStringGetTextDatum(onboarding_state_tables[e->table].name),
						 CStringGetTextDatum(e->key)}, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read onboarding.checkpoint");
	if (SPI_processed == 1)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		bool		isnull;
		HeapTupleHeader row = DatumGetHeapTupleHeader(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull));
		int64		covers = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 2, &isnull));
		HeapTupleData tup;
		Datum	   *values = palloc(desc->natts * sizeof(Datum));
		bool	   *nulls = palloc(desc->natts * sizeof(bool));
		MemoryContext old;

		if (HeapTupleHeaderGetNatts(row) > desc->natts)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the checkpoint of %s \"%s\" does not fit its table",
							onboarding_state_tables[e->table].name, onboarding_clip(e->key, 200))));
		tup.t_len = HeapTupleHeaderGetDatumLength(row);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = InvalidOid;
		tup.t_data = row;
		heap_deform_tuple(&tup, desc, values, nulls);

		old = MemoryContextSwitchTo(cxt);
		e->ckpt_values = palloc(desc->natts * sizeof(Datum));
		e->ckpt_nulls = palloc(desc->natts * sizeof(bool));
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			e->ckpt_nulls[i] = nulls[i] || att->attisdropped;
			e->ckpt_values[i] = e->ckpt_nulls[i] ? (Datum) 0 :
				datumCopy(values[i], att->attbyval, att->attlen);
		}
		MemoryContextSwitchTo(old);
		e->has_ckpt = true;
		e->ckpt_covers = covers;
	}
	onboarding_spi_finish(&spi);

	if (e->has_ckpt && !e->ckpt_nulls[cols->last_event_at])
	{
		TimestampTz at = DatumGetTimestampTz(e->ckpt_values[cols->last_event_at]);

		if (!e->has_max_at || e->max_at < at)
		{
			e->max_at = at;
			e->has_max_at = true;
		}
	}
	return e->has_ckpt;
}

/*
 * Is delivery id covered by a checkpoint of a row it touches (folded into
 * it, so not folded again)?  Loads the checkpoints of those rows.
 */
bool
onboarding_checkpoint_covers(ObFold *f, List *touches, int64 id)
{
	ListCell   *lc;
	bool		covered = false;

	foreach(lc, touches)
	{
		ObEntState *e = ((ObTouch *) lfirst(lc))->ent;

		if (ckpt_load(f, e) && id <= e->ckpt_covers)
			covered = true;
	}
	return covered;
}

/*
 * Start a group fold's row from its checkpoint: the columns the pipeline
 * writes take the checkpoint's values (a user's own columns stay as
 * stored), and the history rows of the deliveries it covers begin the
 * row's history, as stored.
 */
void
onboarding_checkpoint_start(ObFold *f, ObEntState *e)
{
	static SPIPlanPtr plan = NULL;
	MemoryContext cxt = CurrentMemoryContext;
	ObTableCols *cols;
	ObSpiFrame	spi;

	(void) onboarding_derive_open(e->table, &cols);
	for (int i = 0; i < cols->natts; i++)
		if (cols->owned[i])
		{
			e->values[i] = e->ckpt_values[i];
			e->nulls[i] = e->ckpt_nulls[i];
		}
	e->exists = true;

	ckpt_spi_connect(&spi);
	if (plan == NULL)
		plan = onboarding_spi_prepare("SELECT h.entity, h.from_status, h.to_status, h.event_at, h.inbox_id, h.reason"
									  "  FROM onboarding.history h"
									  " WHERE h.provider OPERATOR(pg_catalog.=) CAST($1 AS onboarding.provider)"
									  "   AND h.entity OPERATOR(pg_catalog.=) ANY ($2)"
									  "   AND h.entity_key OPERATOR(pg_catalog.=) $3"
									  "   AND h.inbox_id OPERATOR(pg_catalog.<=) $4"
									  " ORDER BY h.id",
									  4, (Oid[]) {TEXTOID, TEXTARRAYOID,
										  TEXTOID, INT8OID});
	{
		Datum		names[OB_MAX_STATUS_COLS];
		int			n = onboarding_state_tables[e->table].nstatus;
		ArrayType  *entities;

		for (int c = 0; c < n; c++)
			names[c] = CStringGetTextDatum(onboarding_entity_names[onboarding_derive_entity(e->table, c)]);
		entities = construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT);
		if (SPI_execute_plan(plan,
							 (Datum[]) {CStringGetTextDatum(onboarding_provider_name(f->provider)),
								 PointerGetDatum(entities), CStringGetTextDatum(e->key),
							 Int64GetDatum(e->ckpt_covers)}, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read onboarding.history");
	}
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	t = SPI_tuptable->vals[r];
		TupleDesc	td = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		ObHistRow  *h = palloc0(sizeof(ObHistRow));
		char	   *entity = SPI_getvalue(t, td, 1);
		bool		isnull;
		Datum		at = SPI_getbinval(t, td, 4, &isnull);

		h->entity = onboarding_entity_from_name(entity);
		h->key = e->key;
		h->from = SPI_getvalue(t, td, 2);
		h->to = SPI_getvalue(t, td, 3);
		h->has_at = !isnull;
		h->at = isnull ? 0 : DatumGetTimestampTz(at);
		h->inbox_id = DatumGetInt64(SPI_getbinval(t, td, 5, &isnull));
		h->reason = SPI_getvalue(t, td, 6);
		f->history = lappend(f->history, h);
		MemoryContextSwitchTo(old);
	}
	onboarding_spi_finish(&spi);
}

/*
 * Does a group hold a checkpoint: a row of the provider whose subjects (its
 * key among them) meet the group's?  The bounded refold is not used then.
 */
bool
onboarding_checkpoint_in_group(ObProvider provider, List *subjects)
{
	static SPIPlanPtr plan = NULL;
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;

	if (subjects == NIL || !ckpt_table_used())
		return false;
	elems = palloc(list_length(subjects) * sizeof(Datum));
	foreach(lc, subjects)
		elems[n++] = CStringGetTextDatum((const char *) lfirst(lc));
	/* (the provider compared as text: the subjects' index is the way in) */
	return ckpt_exists(&plan,
					   "SELECT 1 FROM onboarding.checkpoint c"
					   " WHERE c.subjects OPERATOR(pg_catalog.&&) $2"
					   "   AND c.provider::pg_catalog.text OPERATOR(pg_catalog.=) $1 LIMIT 1",
					   2, (Oid[]) {TEXTOID, TEXTARRAYOID},
					   (Datum[]) {CStringGetTextDatum(onboarding_provider_name(provider)),
					   PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT))});
}

/*
 * Is the state row (table, provider, key) checkpointed?  rebuild()'s sweep
 * keeps such a row, and its history, when no delivery still in the inbox
 * derives it (every one of them is archived).
 */
bool
onboarding_checkpoint_holds(int table, Oid provider, const char *key)
{
	static SPIPlanPtr plan = NULL;

	if (table < 0 || !ckpt_table_used())
		return false;
	return ckpt_exists(&plan,
					   "SELECT 1 FROM onboarding.checkpoint c"
					   " WHERE c.provider OPERATOR(pg_catalog.=) CAST($1 AS onboarding.provider)"
					   "   AND c.state_table OPERATOR(pg_catalog.=) $2"
					   "   AND c.entity_key OPERATOR(pg_catalog.=) $3",
					   3, (Oid[]) {TEXTOID, TEXTOID, TEXTOID},
					   (Datum[]) {CStringGetTextDatum(onboarding_provider_name(onboarding_provider_from_oid(provider))),
						   CStringGetTextDatum(onboarding_state_tables[table].name),
					   CStringGetTextDatum(key)});
}

/* Copy state row (table, provider, key) into onboarding.checkpoint for archive. */
static void
ckpt_write(int table, const char *provider, const char *key, const char *archive, int64 covers)
{
	static SPIPlanPtr plans[OB_NSTATE_TABLES];
	ObSpiFrame	spi;

	ckpt_spi_connect(&spi);

	if (plans[table] == NULL)
	{
		const ObStateTable *t = &onboarding_state_tables[table];
		char	   *sql = psprintf("INSERT INTO onboarding.checkpoint AS c"
								   "   (provider, state_table, entity_key, subjects, state_row, covers, archives)"
								   " SELECT t.provider, $2, t.%1$s,"
								   "        CASE WHEN t.%1$s OPERATOR(pg_catalog.=) ANY (t.subjects) THEN t.subjects"
								   "             ELSE pg_catalog.array_append(COALESCE(t.subjects, '{}'), t.%1$s) END,"
								   "        pg_catalog.to_jsonb(t), $4, ARRAY[$5]"
								   "   FROM onboarding.%2$s t"
								   "  WHERE t.provider OPERATOR(pg_catalog.=) CAST($1 AS onboarding.provider)"
								   "    AND t.%1$s OPERATOR(pg_catalog.=) $3"
								   " ON CONFLICT (provider, state_table, entity_key) DO UPDATE"
								   "    SET subjects = excluded.subjects, state_row = excluded.state_row,"
								   "        covers = excluded.covers, taken_at = excluded.taken_at,"
								   "        archives = ARRAY(SELECT DISTINCT a FROM pg_catalog.unnest("
								   "                         c.archives OPERATOR(pg_catalog.||) excluded.archives) a"
								   "                      ORDER BY a)",
								   t->keycol, t->name);

		plans[table] = onboarding_spi_prepare(sql, 5, (Oid[]) {TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID});
	}
	if (SPI_execute_plan(plans[table],
						 (Datum[]) {CStringGetTextDatum(provider),
							 CStringGetTextDatum(onboarding_state_tables[table].name),
							 CStringGetTextDatum(key), Int64GetDatum(covers),
						 CStringGetTextDatum(archive)}, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write onboarding.checkpoint");
	onboarding_spi_finish(&spi);
	ckpt_table_written();
}

#define CKPT_KEYLEN 512

/*
 * Has the group of (provider, subject) been gathered (HASH_FIND), or say
 * it has (HASH_ENTER)?  A name too long for the set is never in it: its
 * group is gathered again, which writes the same checkpoints.
 */
static bool
ckpt_done(HTAB *done, const char *provider, const char *subject, HASHACTION action)
{
	char		key[CKPT_KEYLEN];

	if (strlen(provider) + strlen(subject) + 2 > CKPT_KEYLEN)
		return false;
	memset(key, 0, sizeof(key));
	snprintf(key, sizeof(key), "%s/%s", provider, subject);
	return hash_search(done, key, action, NULL) != NULL;
}

/*
 * checkpoint_take(part regclass, archive text, covers bigint) → bigint
 *
 * For archive_partition(), under its locks: the checkpoint of every state
 * row of every group with a delivery in partition part (the group as a
 * fold gathers it), covering the deliveries up to id covers and naming
 * the archive.  Returns how many rows it checkpointed.
 */
PG_FUNCTION_INFO_V1(onboarding_checkpoint_take);
Datum
onboarding_checkpoint_take(PG_FUNCTION_ARGS)
{
	Oid			part = PG_GETARG_OID(0);
	char	   *archive = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64		covers = PG_GETARG_INT64(2);
	MemoryContext groupcxt;
	Relation	inbox;
	ObInboxAtts atts;
	ObSpiFrame	spi;
	SPITupleTable *groups;
	HTAB	   *done;			/* "provider/subject" gathered already */
	HASHCTL		ctl;
	int64		rows = 0;

	onboarding_rebuild_lock();
	onboarding_store_flush(true);
	onboarding_spi_connect(&spi);
	inbox = table_open(onboarding_relation_oid("inbox"), NoLock);
	onboarding_inbox_atts(RelationGetDescr(inbox), &atts);

	/* (a name, not a value: the partition's, quoted) */
	if (SPI_execute(psprintf("SELECT DISTINCT provider::pg_catalog.text, subject FROM %s"
							 " WHERE provider IS NOT NULL AND subject IS NOT NULL ORDER BY 1, 2",
							 quote_qualified_identifier(get_namespace_name(get_rel_namespace(part)),
														get_rel_name(part))),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the partition's groups");
	groups = SPI_tuptable;
	ctl.keysize = CKPT_KEYLEN;
	ctl.entrysize = CKPT_KEYLEN;
	done = hash_create("onboarding checkpoint groups", 1024, &ctl, HASH_ELEM | HASH_STRINGS);
	groupcxt = AllocSetContextCreate(CurrentMemoryContext, "onboarding checkpoint group",
									 ALLOCSET_DEFAULT_SIZES);
	for (uint64 i = 0; i < groups->numvals; i++)
	{
		char	   *provider = SPI_getvalue(groups->vals[i], groups->tupdesc, 1);
		char	   *subject = SPI_getvalue(groups->vals[i], groups->tupdesc, 2);
		ObProvider p = onboarding_provider_from_name(provider);
		MemoryContext old;
		List	   *subjects;
		List	   *items;
		ObFold		f;
		ListCell   *lc;

		if (ckpt_done(done, provider, subject, HASH_FIND))
			continue;
		old = MemoryContextSwitchTo(groupcxt);
		subjects = list_make1(pstrdup(subject));
		(void) onboarding_group_gather(inbox, &atts, NULL, NIL, p, &subjects, OB_LOCK_NONE, &f,
									   &items, onboarding_group_pool_create());
		foreach(lc, f.ents)
		{
			ObEntState *e = (ObEntState *) lfirst(lc);

			if (e->in_table)
			{
				ckpt_write(e->table, provider, e->key, archive, covers);
				rows++;
			}
		}
		MemoryContextSwitchTo(old);
		foreach(lc, subjects)
			(void) ckpt_done(done, provider, (const char *) lfirst(lc), HASH_ENTER);
		MemoryContextReset(groupcxt);
	}
	MemoryContextDelete(groupcxt);
	table_close(inbox, NoLock);
	onboarding_spi_finish(&spi);
	/* the tables the gathering opened are closed: the caller detaches */
	onboarding_store_flush(true);
	PG_RETURN_INT64(rows);
}

/*
 * checkpoint_release(archive text) → bigint
 *
 * For restore_partition(), once the table is attached again: the archive
 * leaves every checkpoint; those no archive stands behind any more are
 * dropped, and their groups folded again from nothing, every delivery in
 * its place.  Returns how many deliveries that read.
 */
PG_FUNCTION_INFO_V1(onboarding_checkpoint_release);
Datum
onboarding_checkpoint_release(PG_FUNCTION_ARGS)
{
	char	   *archive = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ObSpiFrame	spi;
	int64		read = 0;
	bool		isnull;

	onboarding_rebuild_lock();
	onboarding_store_flush(true);
	onboarding_spi_connect(&spi);
	if (SPI_execute_with_args("UPDATE onboarding.checkpoint"
							  "   SET archives = pg_catalog.array_remove(archives, $1)"
							  " WHERE $1 OPERATOR(pg_catalog.=) ANY (archives)",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(archive)},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update onboarding.checkpoint");
	ckpt_table_written();
	if (SPI_execute("WITH gone AS (DELETE FROM onboarding.checkpoint"
					"               WHERE pg_catalog.cardinality(archives) OPERATOR(pg_catalog.=) 0"
					"               RETURNING subjects)"
					" SELECT pg_catalog.array_agg(DISTINCT s) FROM gone, pg_catalog.unnest(gone.subjects) s",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not delete from onboarding.checkpoint");
	{
		Datum		subjects = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			subjects = datumCopy(subjects, false, -1);
			/* the fold must not see the checkpoints just dropped */
			CommandCounterIncrement();
			PushActiveSnapshot(GetTransactionSnapshot());
			read = onboarding_rebuild_subjects(subjects, (Datum) 0, 0);
			PopActiveSnapshot();
		}
	}
	onboarding_spi_finish(&spi);
	/* the tables the fold opened are closed: the caller may attach or detach next */
	onboarding_store_flush(true);
	PG_RETURN_INT64(read);
}

/*
 * Is table relid one archive_partition() detached (its deliveries stand in
 * checkpoints)?  rebuild() and verify() then need not refuse to run without
 * it.
 */
bool
onboarding_checkpoint_archived(Oid relid)
{
	static SPIPlanPtr plan = NULL;

	if (!OidIsValid(get_relname_relid("archived_partition", onboarding_schema_oid())))
		return false;
	return ckpt_exists(&plan,
					   "SELECT 1 FROM onboarding.archived_partition a"
					   " WHERE a.relid OPERATOR(pg_catalog.=) $1"
					   "    OR a.partition OPERATOR(pg_catalog.=) $1::pg_catalog.regclass::pg_catalog.text",
					   1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(relid)});
}

/*
 * erase(): refuse to erase a person whose rows stand in a checkpoint (of
 * the groups of subjects, a text[], or mentioning one of forms, a text[]):
 * their archived deliveries still hold the personal data, and the
 * checkpoint a copy of it.  Run connected to SPI.
 */
void
onboarding_checkpoint_erase_check(Datum subjects, Datum forms)
{
	if (!ckpt_table_used())
		return;
	if (SPI_execute_with_args("SELECT c.state_table, c.entity_key, c.archives::pg_catalog.text"
							  "  FROM onboarding.checkpoint c"
							  " WHERE c.subjects OPERATOR(pg_catalog.&&) $1"
							  "    OR EXISTS (SELECT FROM pg_catalog.unnest($2) f"
							  "                WHERE pg_catalog.strpos(c.state_row::pg_catalog.text, f)"
							  "                      OPERATOR(pg_catalog.>) 0)"
							  " LIMIT 1",
							  2, (Oid[]) {TEXTARRAYOID, TEXTARRAYOID}, (Datum[]) {subjects, forms},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read onboarding.checkpoint");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the person's deliveries are archived"),
				 errdetail("The %s \"%s\" stands in a checkpoint of the archived partitions %s, which still hold the person's data.",
						   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
						   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
						   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3)),
				 errhint("Restore those partitions (onboarding.restore_partition()), erase, and archive them again.")));
}

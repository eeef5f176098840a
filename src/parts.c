/*-------------------------------------------------------------------------
 *
 * parts.c
 *		The relations that hold the inbox's rows and history's: their leaf
 *		partitions, or the table itself when it is a plain one.
 *
 * Since 0.3.0 onboarding.inbox is partitioned by received_at (a default
 * partition, onboarding.inbox_default, is created with it; pg_partman or
 * the DBA adds range partitions).  PostgreSQL routes an INSERT to its
 * partition, and the pipeline's row trigger, cloned onto every partition,
 * runs there; but the pipeline's own probes (duplicate detection, a group's
 * deliveries, the bounded refold's scan in event time, a lookup by id) and
 * its rewrites of stored deliveries go through one index of one heap at a
 * time.  This file says which: for each leaf, its relation and its
 * children of the inbox's indexes (inbox_group_idx, inbox_body_hash_idx
 * on a 0.1.0 schema, inbox_pkey).
 *
 * The list is read from pg_inherits when the inbox is first used, and kept
 * until an invalidation comes for the inbox itself: attaching, detaching,
 * creating or dropping a partition invalidates its parent.  Whoever reads
 * the list holds a lock on the inbox first (the store opens it), so that
 * the partitions cannot be dropped under it; each leaf is locked as it is
 * opened.
 *
 * A leaf must have the inbox's physical column layout: the pipeline reads
 * and rewrites stored rows with the inbox's column numbers.  A partition
 * created with CREATE TABLE ... PARTITION OF (as pg_partman does) has it; a
 * table attached with columns in another order, or with dropped ones, does
 * not, and is refused the first time the pipeline meets it.
 *
 * Since 0.3.0 history is partitioned too, by range of inbox_id (a default
 * partition, onboarding.history_default, is created with it).  The
 * pipeline writes history rows itself, so it routes each to its leaf as
 * PostgreSQL's row routing would (onboarding_history_route()); and it reads
 * an entity's rows in every leaf (onboarding_history_leaves(), kept like
 * the inbox's list), since they lie wherever its deliveries' ids fall.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/table.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "catalog/index.h"
#include "catalog/pg_collation.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"

static ObInboxPartOids *cached_parts = NULL;	/* in TopMemoryContext */
static int	cached_nparts = 0;
static Oid	cached_parent = InvalidOid;	/* the inbox they are of; Invalid: none */
static bool parts_callback = false;
static Oid	known_leaf = InvalidOid;	/* a partition found to be the inbox's */
static Oid *cached_leaves = NULL;	/* history's leaves, in TopMemoryContext */
static int	cached_nleaves = 0;
static Oid	cached_history = InvalidOid;	/* the history they are of; Invalid: none */

/* Relcache callback: the inbox changed (or everything did): read it again. */
static void
parts_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cached_parent)
		cached_parent = InvalidOid;
	if (relid == InvalidOid || relid == known_leaf)
		known_leaf = InvalidOid;
	if (relid == InvalidOid || relid == cached_history)
		cached_history = InvalidOid;
}

/* Register the relcache callback, once per backend. */
static void
parts_register(void)
{
	if (parts_callback)
		return;
	CacheRegisterRelcacheCallback(parts_invalidate, (Datum) 0);
	parts_callback = true;
}

/*
 * Is relid the inbox, or one of its partitions (at any depth)?  The
 * pipeline's triggers fire on the partition a row is routed to.  The last
 * partition found is remembered until an invalidation comes for it (a
 * detach sends one).
 */
bool
onboarding_inbox_holds(Oid relid)
{
	List	   *ancestors;
	bool		holds;

	if (relid == onboarding_inbox_oids()->inbox)
		return true;
	parts_register();
	if (relid == known_leaf)
		return true;
	if (!get_rel_relispartition(relid))
		return false;
	ancestors = get_partition_ancestors(relid);
	holds = list_member_oid(ancestors, onboarding_inbox_oids()->inbox);
	list_free(ancestors);
	if (holds)
		known_leaf = relid;
	return holds;
}

/*
 * Does a leaf store rows in the inbox's physical layout (the same columns
 * at the same numbers, dropped ones included)?
 */
static bool
parts_same_layout(TupleDesc inbox, TupleDesc leaf)
{
	if (inbox->natts != leaf->natts)
		return false;
	for (int i = 0; i < inbox->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(inbox, i);
		Form_pg_attribute b = TupleDescAttr(leaf, i);

		if (a->attisdropped != b->attisdropped || a->atttypid != b->atttypid ||
			a->attlen != b->attlen || a->attbyval != b->attbyval || a->attalign != b->attalign ||
			(!a->attisdropped && strcmp(NameStr(a->attname), NameStr(b->attname)) != 0))
			return false;
	}
	return true;
}

/*
 * The children of a partitioned index of the inbox, by the heap each
 * indexes: for leaf i, its index in parts[i].index[which] (InvalidOid:
 * none).
 */
static void
parts_index_children(Oid index, ObInboxPartOids *parts, int n, int which)
{
	List	   *children;
	ListCell   *lc;

	for (int i = 0; i < n; i++)
		parts[i].index[which] = InvalidOid;
	if (!OidIsValid(index))
		return;
	children = find_all_inheritors(index, NoLock, NULL);
	foreach(lc, children)
	{
		Oid			child = lfirst_oid(lc);
		Oid			heap = IndexGetRelation(child, true);

		for (int i = 0; i < n; i++)
			if (parts[i].rel == heap)
				parts[i].index[which] = child;
	}
	list_free(children);
}

/*
 * The leaves of the inbox (opened and locked by the caller, the store),
 * with their indexes; n gets their number.  A plain inbox is its own one
 * leaf.  Refuses a leaf whose layout is not the inbox's, and a leaf
 * without one of the indexes the pipeline probes.
 */
const ObInboxPartOids *
onboarding_inbox_parts(Relation inbox, int *n)
{
	const ObInboxOids *oids = onboarding_inbox_oids();
	Oid			parent = RelationGetRelid(inbox);
	List	   *leaves = NIL;
	List	   *all;
	ListCell   *lc;
	ObInboxPartOids *parts;
	int			count = 0;

	parts_register();
	if (cached_parent == parent)
	{
		*n = cached_nparts;
		return cached_parts;
	}

	if (inbox->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
	{
		parts = palloc0(sizeof(ObInboxPartOids));
		parts[0].rel = parent;
		parts[0].index[OB_INBOX_GROUP_INDEX] = oids->group_index;
		parts[0].index[OB_INBOX_HASH_INDEX] = oids->hash_index;
		parts[0].index[OB_INBOX_PKEY] = oids->pkey_index;
		count = 1;
	}
	else
	{
		/* (the inbox is locked: no partition is dropped while we read) */
		all = find_all_inheritors(parent, NoLock, NULL);
		foreach(lc, all)
			if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION)
				leaves = lappend_oid(leaves, lfirst_oid(lc));
		parts = palloc0(Max(1, list_length(leaves)) * sizeof(ObInboxPartOids));
		foreach(lc, leaves)
		{
			Oid			leaf = lfirst_oid(lc);
			Relation	rel = table_open(leaf, AccessShareLock);
			bool		same = parts_same_layout(RelationGetDescr(inbox), RelationGetDescr(rel));

			table_close(rel, NoLock);
			if (!same)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("partition \"%s\" of onboarding.inbox does not have the inbox's column layout",
								get_rel_name(leaf)),
						 errdetail("The pipeline reads and rewrites stored deliveries by the inbox's column numbers; a table attached with its columns in another order, or with dropped columns, has others."),
						 errhint("Detach it, create the partition with CREATE TABLE ... PARTITION OF onboarding.inbox, and copy its rows into it.")));
			parts[count++].rel = leaf;
		}
		parts_index_children(oids->group_index, parts, count, OB_INBOX_GROUP_INDEX);
		parts_index_children(oids->hash_index, parts, count, OB_INBOX_HASH_INDEX);
		parts_index_children(oids->pkey_index, parts, count, OB_INBOX_PKEY);
		for (int i = 0; i < count; i++)
			if (!OidIsValid(parts[i].index[OB_INBOX_PKEY]) ||
				(!OidIsValid(parts[i].index[OB_INBOX_GROUP_INDEX]) &&
				 !OidIsValid(parts[i].index[OB_INBOX_HASH_INDEX])))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("partition \"%s\" of onboarding.inbox lacks an index the pipeline searches",
								get_rel_name(parts[i].rel)),
						 errdetail("Every partition needs its children of onboarding.inbox_pkey and onboarding.inbox_group_idx."),
						 errhint("Create the inbox's indexes without ON ONLY, or attach the partition's own to them.")));
		list_free(all);
		list_free(leaves);
	}

	/* kept for the backend once complete (a refusal above leaves nothing) */
	if (cached_parts != NULL)
		pfree(cached_parts);
	cached_parts = MemoryContextAlloc(TopMemoryContext, Max(1, count) * sizeof(ObInboxPartOids));
	memcpy(cached_parts, parts, count * sizeof(ObInboxPartOids));
	pfree(parts);
	cached_nparts = count;
	cached_parent = parent;
	*n = count;
	return cached_parts;
}

/*
 * The inbox's default partition (onboarding.inbox_default, unless a DBA
 * replaced it), or InvalidOid when it has none or it is itself partitioned.
 */
Oid
onboarding_inbox_default_leaf(Relation inbox)
{
	PartitionDesc desc;
	int			index;

	if (inbox->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return InvalidOid;
	desc = RelationGetPartitionDesc(inbox, true);
	if (desc->nparts == 0)
		return InvalidOid;
	index = desc->boundinfo->default_index;
	return index >= 0 && desc->is_leaf[index] ? desc->oids[index] : InvalidOid;
}

/*
 * The leaf partition of a table partitioned by range on one column that
 * holds the rows whose column att has value, as PostgreSQL's row routing
 * chooses it (get_partition_for_tuple(), for a range on one column):
 * *leaf gets it, or InvalidOid when no partition accepts that value.
 * Returns false when the table is not routed that way (a plain table, a
 * key other than att alone, or a partition that is itself partitioned):
 * then any leaf may hold such rows.
 */
static bool
parts_route(Relation parent, AttrNumber att, Datum value, Oid *leaf)
{
	PartitionKey key;
	PartitionDesc desc;
	PartitionBoundInfo bounds;
	int			index = -1;

	*leaf = InvalidOid;
	if (parent->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return false;
	key = RelationGetPartitionKey(parent);
	if (key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
		key->partattrs[0] != att)
		return false;
	desc = RelationGetPartitionDesc(parent, true);
	if (desc->nparts == 0)
		return true;
	bounds = desc->boundinfo;
	if (bounds->ndatums > 0)
	{
		bool		equal;
		int			offset = partition_range_datum_bsearch(key->partsupfunc, key->partcollation,
														   bounds, 1, &value, &equal);

		index = bounds->indexes[offset + 1];
	}
	if (index < 0)
		index = bounds->default_index;
	if (index < 0)
		return true;
	if (!desc->is_leaf[index])
		return false;
	*leaf = desc->oids[index];
	return true;
}

/* The leaf of the inbox that holds the rows received at `at` (parts_route()). */
bool
onboarding_inbox_route(Relation inbox, AttrNumber received_at, TimestampTz at, Oid *leaf)
{
	return parts_route(inbox, received_at, TimestampTzGetDatum(at), leaf);
}

/*
 * The leaf of history (partitioned by range on inbox_id) that takes a row
 * written by delivery inbox_id.  A history whose partitions are themselves
 * partitioned, or no partition accepting the row, is refused: the pipeline
 * writes each row into its leaf itself.
 */
Oid
onboarding_history_route(Relation history, AttrNumber inbox_id_att, int64 inbox_id)
{
	Oid			leaf;

	if (!parts_route(history, inbox_id_att, Int64GetDatum(inbox_id), &leaf))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("onboarding.history has a partition that is itself partitioned"),
				 errdetail("The pipeline writes each history row into the partition that takes its inbox_id, one level down."),
				 errhint("Partition history by inbox_id ranges with plain tables (CREATE TABLE ... PARTITION OF onboarding.history).")));
	if (!OidIsValid(leaf))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("no partition of onboarding.history takes the rows of delivery %lld",
						(long long) inbox_id),
				 errdetail("History is partitioned by inbox_id, and it has no default partition."),
				 errhint("Create a partition for these ids, or a default one: CREATE TABLE onboarding.history_default PARTITION OF onboarding.history DEFAULT.")));
	return leaf;
}

/*
 * The leaves of history (locked by the caller): the tables that hold its
 * rows, each with history's column layout (refused otherwise, as the
 * inbox's are).  A plain history is its own one leaf.  In the caller's
 * memory; read from pg_inherits once, and kept until an invalidation comes
 * for history (creating, attaching or detaching a partition sends one).
 */
List *
onboarding_history_leaves(Relation history)
{
	List	   *all;
	List	   *leaves = NIL;
	ListCell   *lc;
	int			i = 0;

	if (history->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return list_make1_oid(RelationGetRelid(history));
	parts_register();
	if (cached_history == RelationGetRelid(history))
	{
		for (i = 0; i < cached_nleaves; i++)
			leaves = lappend_oid(leaves, cached_leaves[i]);
		return leaves;
	}
	all = find_all_inheritors(RelationGetRelid(history), NoLock, NULL);
	foreach(lc, all)
	{
		Oid			leaf = lfirst_oid(lc);
		Relation	rel;
		bool		same;

		if (get_rel_relkind(leaf) != RELKIND_RELATION)
			continue;
		rel = table_open(leaf, AccessShareLock);
		same = parts_same_layout(RelationGetDescr(history), RelationGetDescr(rel));
		table_close(rel, NoLock);
		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("partition \"%s\" of onboarding.history does not have history's column layout",
							get_rel_name(leaf)),
					 errdetail("The pipeline reads and writes history rows by history's column numbers; a table attached with its columns in another order, or with dropped columns, has others."),
					 errhint("Detach it, create the partition with CREATE TABLE ... PARTITION OF onboarding.history, and copy its rows into it.")));
		leaves = lappend_oid(leaves, leaf);
	}
	list_free(all);

	/* kept for the backend once complete (a refusal above leaves nothing) */
	if (cached_leaves != NULL)
		pfree(cached_leaves);
	cached_leaves = MemoryContextAlloc(TopMemoryContext, Max(1, list_length(leaves)) * sizeof(Oid));
	foreach(lc, leaves)
		cached_leaves[i++] = lfirst_oid(lc);
	cached_nleaves = list_length(leaves);
	cached_history = RelationGetRelid(history);
	return leaves;
}

/*
 * Scan keys 0 and 1 of a group: provider and subject, on columns
 * provider_att and subject_att (the heap's, or 1 and 2 of the inbox's group
 * index).
 */
void
onboarding_group_keys(ScanKey keys, AttrNumber provider_att, AttrNumber subject_att,
					  ObProvider provider, const char *subject)
{
	ScanKeyEntryInitialize(&keys[0], 0, provider_att, BTEqualStrategyNumber, InvalidOid,
						   InvalidOid, F_ENUM_EQ, ObjectIdGetDatum(onboarding_provider_oid(provider)));
	ScanKeyEntryInitialize(&keys[1], 0, subject_att, BTEqualStrategyNumber, InvalidOid,
						   DEFAULT_COLLATION_OID, F_TEXTEQ, CStringGetTextDatum(subject));
}

/*-------------------------------------------------------------------------
 *
 * spread.c
 *		Which partitions of the inbox hold a group's deliveries: the probes
 *		of a delivery read those, not every partition.
 *
 * A delivery's probes (is it a duplicate? is a delivery of its group
 * placed after it? the group's deliveries, in event time or all) are keyed
 * by its group, provider and subject.  The inbox is partitioned by time
 * received, which no key of a group bounds: a copy may come years after
 * its original.  Probing every partition costs a delivery one index
 * descent per partition, a price that grows with every month kept.
 *
 * onboarding.group_partition says where each group's deliveries lie: a row
 * (provider, subject, received_at) for each partition that holds some, by
 * the time one of them was received there, which PostgreSQL's own routing
 * (parts.c) maps back to the partition.  A time, not the partition's oid,
 * so that the rows mean the same after pg_dump and restore, on a
 * subscriber with the same partitions, and after a partition is detached
 * and attached again.  The invariant: every stored delivery with a
 * provider and a subject has a row of its group that maps to the
 * partition holding it, unless that is the default partition.  It is kept
 *	- by the inbox's trigger, for every row it lets in (live, restored,
 *	  replicated), before the row is stored, so that another session that
 *	  can see the delivery can see the row (store.c adds the rows, as it
 *	  writes the pipeline's other tables);
 *	- when a derivation rewrites a stored delivery's provider or subject
 *	  (rebuild() after a rule changed, erase());
 *	- when a table that holds deliveries is attached as a partition (the
 *	  event trigger, onboarding.note_partition(), below).
 * The default partition is always read, and its deliveries need no row:
 * an inbox without range partitions (or one updated from 0.2.0, whose
 * deliveries all lie there) pays nothing for the table, and with range
 * partitions made ahead the default one holds few rows.  A row is never
 * deleted but by erase(): one that maps nowhere (its partition detached)
 * or to a partition that no longer holds the group costs a probe, not a
 * wrong answer.  Two sessions may add the same one (no unique key: nothing
 * waits on it).  Deliveries with no provider or subject are in no group
 * row: their probes read every partition, as do all probes when the inbox
 * has two partitions or fewer (the lookup would cost what it saves).
 *
 * Reads of the table see rows other transactions are inserting (a dirty
 * snapshot, as the probes themselves): their partitions are read too, and
 * the probe decides there what it sees.  Whether a group's row for a
 * partition exists before adding one is asked of committed rows and our
 * own only (one that another transaction may yet roll back does not
 * count), and remembered for the transaction, so that a group's later
 * deliveries into the same partition ask nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/itup.h"
#include "access/relscan.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "tcop/deparse_utility.h"
#include "utils/array.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "compat.h"

/* Fewer partitions than this: every probe reads them all (see the header). */
#define SPREAD_MIN_PARTS	3

/*
 * Which of the relations that hold inbox rows (onboarding_store_part) may
 * hold deliveries of a group: want[i] for the i-th.  Returns false when
 * every one may (no group, too few partitions, an inbox or a schema the
 * table cannot say for): then want is left alone.
 *
 * Read from the index alone, every entry whatever its visibility: a row
 * another transaction is inserting counts (its delivery may be about to
 * be seen, as the probes' dirty snapshots see it), and one rolled back or
 * deleted costs no more than a probe of its partition.
 */
bool
onboarding_spread_parts(ObStore *inbox, ObProvider provider, const char *subject, bool *want)
{
	int			nparts = onboarding_store_nparts(inbox);
	Relation	rel = onboarding_store_relation(inbox);
	AttrNumber	received_at = onboarding_store_inbox_atts(inbox)->received_at;
	TupleTableSlot *slot;
	Relation	index;
	Relation	spread = onboarding_store_spread(inbox, &index, &slot);
	SnapshotData dirty;
	IndexScanDesc scan;
	ScanKeyData keys[2];
	bool		known = true;
	Oid			deflt;

	if (spread == NULL || subject == NULL || provider == OB_PROVIDER_NONE ||
		nparts < SPREAD_MIN_PARTS)
		return false;
	/* the default partition is always read: its groups have no rows */
	deflt = onboarding_inbox_default_leaf(rel);
	for (int i = 0; i < nparts; i++)
		want[i] = onboarding_store_part_oid(inbox, i) == deflt;
	InitDirtySnapshot(dirty);
	onboarding_group_keys(keys, 1, 2, provider, subject);
	scan = ob_index_beginscan(spread, index, &dirty, 2, 0);
	scan->xs_want_itup = true;
	index_rescan(scan, keys, 2, NULL, 0);
	while (known && index_getnext_tid(scan, ForwardScanDirection) != NULL)
	{
		bool		isnull;
		Datum		at = index_getattr(scan->xs_itup, 3, scan->xs_itupdesc, &isnull);
		Oid			leaf;
		int			i;

		if (isnull)
			continue;
		if (!onboarding_inbox_route(rel, received_at, DatumGetTimestampTz(at), &leaf))
			known = false;		/* the inbox is not routed by time alone */
		else if (OidIsValid(leaf))
		{
			for (i = 0; i < nparts && onboarding_store_part_oid(inbox, i) != leaf; i++)
				;
			if (i < nparts)
				want[i] = true;
			else
				known = false;	/* attached since the store opened */
		}
	}
	index_endscan(scan);
	return known;
}

/*
 * onboarding.attached_partitions(pg_ddl_command): the tables an ALTER TABLE
 * attached as partitions of the inbox (or of one of its partitions), for
 * the event trigger, which adds their groups' rows (note_partition()).
 */
PG_FUNCTION_INFO_V1(onboarding_attached_partitions);
Datum
onboarding_attached_partitions(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	List	   *attached = NIL;
	Datum	   *oids;
	int			n = 0;
	ListCell   *lc;

	if (cmd->type == SCT_AlterTable && onboarding_inbox_holds(cmd->d.alterTable.objectId))
	{
		foreach(lc, cmd->d.alterTable.subcmds)
		{
			CollectedATSubcmd *sub = (CollectedATSubcmd *) lfirst(lc);
			AlterTableCmd *at = (AlterTableCmd *) sub->parsetree;
			Oid			part;

			/* (the subcommand's address is not the partition's: its name is) */
			if (!IsA(at, AlterTableCmd) || at->subtype != AT_AttachPartition ||
				at->def == NULL || !IsA(at->def, PartitionCmd))
				continue;
			part = RangeVarGetRelid(((PartitionCmd *) at->def)->name, NoLock, true);
			if (OidIsValid(part))
				attached = lappend_oid(attached, part);
		}
	}
	oids = palloc(Max(1, list_length(attached)) * sizeof(Datum));
	foreach(lc, attached)
		oids[n++] = ObjectIdGetDatum(lfirst_oid(lc));
	PG_RETURN_ARRAYTYPE_P(construct_array(oids, n, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT));
}

/*
 * onboarding.inbox_partition_of(timestamptz): the partition of the inbox
 * that holds the deliveries received at that time, as the row routing and
 * the probes choose it (NULL: none takes it, or the inbox is not routed by
 * time alone); verify() checks onboarding.group_partition with it.
 */
PG_FUNCTION_INFO_V1(onboarding_inbox_partition_of);
Datum
onboarding_inbox_partition_of(PG_FUNCTION_ARGS)
{
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(0);
	Relation	inbox = table_open(onboarding_inbox_oids()->inbox, AccessShareLock);
	ObInboxAtts atts;
	Oid			leaf;
	bool		routed;

	onboarding_inbox_atts(RelationGetDescr(inbox), &atts);
	routed = onboarding_inbox_route(inbox, atts.received_at, at, &leaf);
	table_close(inbox, AccessShareLock);
	if (!routed || !OidIsValid(leaf))
		PG_RETURN_NULL();
	PG_RETURN_OID(leaf);
}

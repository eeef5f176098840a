/*-------------------------------------------------------------------------
 *
 * dedupe.c
 *		Is this body a duplicate of an earlier delivery?
 *
 * A duplicate is a delivery with the same provider and the same canonical
 * body (jsonb equality) as an earlier one.  The same body means the same
 * provider and subject, so candidates are found through the inbox's one
 * secondary index, onboarding.inbox_group_idx (provider, subject,
 * body_hash), which also finds a late delivery's group (derive.c); NULL
 * provider or subject (bodies not recognised, or without their key) are
 * searched as NULL.  body_hash is the 64-bit jsonb hash of the body.  (A
 * 0.1.0 schema, before ALTER EXTENSION UPDATE, has its partial index on
 * body_hash instead.)
 *
 * Two sessions delivering the same body at the same moment must not both
 * see "first".  We do what a unique index does, without refusing the row:
 * the probe reads the index with a dirty snapshot, so it sees rows other
 * transactions have inserted but not yet committed, and waits for such a
 * transaction to end before deciding.  The one remaining window, between
 * our probe and the insertion of our own row, is closed by a lock on the
 * hash that we hold until our row is in the index: it is released when the
 * trigger fires for the next row, or when the transaction ends.  Only one
 * such lock is held at a time, so even a million-row COPY uses one
 * lock-table entry.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "compat.h"

/* Lock class of our advisory locks (pg_locks.objsubid), apart from the user's 1 and 2 */
#define OB_LOCK_CLASS_DEDUPE	0x4F42

static LOCKTAG dedupe_held_tag;
static bool dedupe_held = false;
static bool dedupe_callback = false;	/* dedupe_xact_callback registered */

/* At transaction end the hash lock (a session lock) goes too. */
static void
dedupe_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		onboarding_dedupe_release();
}

/* Release the hash lock of the previous row, if any. */
void
onboarding_dedupe_release(void)
{
	if (dedupe_held)
	{
		LockRelease(&dedupe_held_tag, ExclusiveLock, true);
		dedupe_held = false;
	}
}

/*
 * Fold one container into hash as jsonb_hash_extended(payload, 0) does:
 * its begin token, then each key, value or element in the iterator's
 * order, a nested container in place.  The container is read directly
 * (JEntry offsets and lengths), without an iterator: a frame allocated
 * per container and a token state machine cost more than the hashing.
 */
static void
dedupe_hash_container(const JsonbContainer *c, uint64 *hash)
{
	uint32		count = JsonContainerSize(c);
	bool		object = JsonContainerIsObject(c);
	uint32		nchildren = object ? count * 2 : count;
	const char *base = (const char *) &c->children[nchildren];
	uint32		offsets[2] = {0, 0};	/* keys (or elements), values */

	check_stack_depth();
	if (object)
	{
		*hash ^= ((uint64) JB_FOBJECT) << 32 | JB_FOBJECT;
		offsets[1] = count > 0 ? getJsonbOffset(c, count) : 0;
	}
	else
		*hash ^= ((uint64) JB_FARRAY) << 32 | JB_FARRAY;

	for (uint32 i = 0; i < nchildren; i++)
	{
		/* an object's pairs in order: key i, then value i */
		uint32		index = object ? (i / 2) + (i % 2) * count : i;
		uint32	   *offset = &offsets[object ? i % 2 : 0];
		JEntry		je = c->children[index];
		uint32		length = JBE_HAS_OFF(je) ? JBE_OFFLENFLD(je) - *offset : JBE_OFFLENFLD(je);
		JsonbValue	v;

		if (JBE_ISCONTAINER(je))
			dedupe_hash_container((const JsonbContainer *) (base + INTALIGN(*offset)), hash);
		else
		{
			if (JBE_ISSTRING(je))
			{
				v.type = jbvString;
				v.val.string.val = (char *) base + *offset;
				v.val.string.len = length;
			}
			else if (JBE_ISNUMERIC(je))
			{
				v.type = jbvNumeric;
				v.val.numeric = (Numeric) (base + INTALIGN(*offset));
			}
			else if (JBE_ISBOOL(je))
			{
				v.type = jbvBool;
				v.val.boolean = JBE_ISBOOL_TRUE(je);
			}
			else
				v.type = jbvNull;
			JsonbHashScalarValueExtended(&v, hash, 0);
		}
		JBE_ADVANCE_OFFSET(*offset, je);
	}
}

/*
 * The hash the index is keyed by: jsonb's own extended hash with seed 0,
 * jsonb_hash_extended(payload, 0), bit for bit (rows stored by 0.1.0 and
 * by rebuild() are compared with it; the regression suites check the two
 * agree on every body they store).
 */
uint64
onboarding_dedupe_hash(Jsonb *payload)
{
	uint64		hash = 0;

	if (JB_ROOT_COUNT(payload) == 0)
		return 0;
	dedupe_hash_container(&payload->root, &hash);
	return hash;
}

/* An index key: equal to value, or (isnull) a search for NULL. */
static void
dedupe_key(ScanKey key, AttrNumber attno, bool isnull, Oid collation, RegProcedure eq,
		   Datum value)
{
	if (isnull)
		ScanKeyEntryInitialize(key, SK_ISNULL | SK_SEARCHNULL, attno, InvalidStrategy,
							   InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
	else
		ScanKeyEntryInitialize(key, 0, attno, BTEqualStrategyNumber, InvalidOid,
							   collation, eq, value);
}

/*
 * Find the first delivery with the same provider and body.  Returns its id,
 * or 0 when this one is the first.  With lock, takes the hash lock (kept
 * until the caller's row is in the index); may wait for a concurrent
 * inserter either way.
 */
int64
onboarding_dedupe_find(const ObInboxAtts *atts, ObDelivery *d, bool lock)
{
	const ObInboxOids *oids = onboarding_inbox_oids();
	ObStore    *store;
	Relation	index;
	ObInboxIndex which;
	SnapshotData dirty;
	ScanKeyData keys[4];
	int			nkeys = 0;
	TupleTableSlot *slot;
	int64		found = 0;
	bool	   *want;
	bool		pruned;

	if (lock)
	{
		onboarding_dedupe_release();
		SET_LOCKTAG_ADVISORY(dedupe_held_tag, MyDatabaseId,
							 (uint32) (d->body_hash >> 32), (uint32) d->body_hash,
							 OB_LOCK_CLASS_DEDUPE);
		if (!dedupe_callback)
		{
			RegisterXactCallback(dedupe_xact_callback, NULL);
			dedupe_callback = true;
		}
		(void) LockAcquire(&dedupe_held_tag, ExclusiveLock, true, false);
		dedupe_held = true;
	}

	onboarding_store_begin();
	store = onboarding_store(OB_S_INBOX);
	slot = onboarding_store_slot(store);
	which = OidIsValid(oids->group_index) ? OB_INBOX_GROUP_INDEX : OB_INBOX_HASH_INDEX;
	if (onboarding_store_nparts(store) == 0)
		return 0;				/* a partitioned inbox without partitions stores nothing */
	/* (the first relation's index: every partition's has the same columns) */
	(void) onboarding_store_part(store, 0, which, &index);
	if (which == OB_INBOX_GROUP_INDEX)
	{
		dedupe_key(&keys[nkeys++], 1, d->provider == OB_PROVIDER_NONE, index->rd_indcollation[0],
				   F_ENUM_EQ, d->provider == OB_PROVIDER_NONE ? (Datum) 0 :
				   ObjectIdGetDatum(onboarding_provider_oid(d->provider)));
		dedupe_key(&keys[nkeys++], 2, d->subject == NULL, index->rd_indcollation[1],
				   F_TEXTEQ, d->subject == NULL ? (Datum) 0 : CStringGetTextDatum(d->subject));
		/* the same body has the same time (0.3.0's index has event_at before body_hash) */
		if (oids->group_by_time)
			dedupe_key(&keys[nkeys++], 3, !d->has_event_at, InvalidOid, F_TIMESTAMPTZ_EQ,
					   d->has_event_at ? TimestampTzGetDatum(d->event_at) : (Datum) 0);
		ScanKeyEntryInitialize(&keys[nkeys++], 0, oids->group_by_time ? 4 : 3,
							   BTEqualStrategyNumber, InvalidOid,
							   InvalidOid, F_INT8EQ, Int64GetDatum((int64) d->body_hash));
	}
	else
		ScanKeyInit(&keys[nkeys++], 1, BTEqualStrategyNumber, F_INT8EQ,
					Int64GetDatum((int64) d->body_hash));

	/*
	 * In every relation that holds inbox rows (its partitions) where the
	 * group has deliveries (spread.c), from the first again after a wait:
	 * a copy may have been stored meanwhile in one already searched.
	 */
	want = palloc(onboarding_store_nparts(store) * sizeof(bool));
	pruned = onboarding_spread_parts(store, d->provider, d->subject, want);
	for (int part = 0; part < onboarding_store_nparts(store);)
	{
		IndexScanDesc scan;
		TransactionId xwait = InvalidTransactionId;
		Relation	heap;

		if (pruned && !want[part])
		{
			part++;
			continue;
		}
		heap = onboarding_store_part(store, part, which, &index);
		InitDirtySnapshot(dirty);
		scan = ob_index_beginscan(heap, index, &dirty, nkeys, 0);
		index_rescan(scan, keys, nkeys, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			Datum		provider;
			Datum		payload;

			if (TransactionIdIsValid(dirty.xmin) || TransactionIdIsValid(dirty.xmax))
			{
				/* another transaction is inserting or changing it: wait, then look again */
				xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
				break;
			}
			provider = slot_getattr(slot, atts->provider, &isnull);
			if (isnull != (d->provider == OB_PROVIDER_NONE) ||
				(!isnull && DatumGetObjectId(provider) != onboarding_provider_oid(d->provider)))
				continue;
			payload = slot_getattr(slot, atts->payload, &isnull);
			if (isnull || !DatumGetBool(DirectFunctionCall2(jsonb_eq, payload,
															JsonbPGetDatum(d->payload))))
				continue;
			{
				/* the original is the earliest delivery of the body (as rebuild() says) */
				int64		id = DatumGetInt64(slot_getattr(slot, atts->id, &isnull));

				if (found == 0 || id < found)
					found = id;
			}
		}
		index_endscan(scan);
		if (!TransactionIdIsValid(xwait))
		{
			part++;
			continue;
		}

		/*
		 * Wait without holding the hash lock, as a unique index waits
		 * holding nothing: the inserting transaction may itself be about to
		 * deliver this body again and need the lock.
		 */
		if (lock)
			onboarding_dedupe_release();
		XactLockTableWait(xwait, heap, &slot->tts_tid, XLTW_InsertIndex);
		if (lock)
		{
			(void) LockAcquire(&dedupe_held_tag, ExclusiveLock, true, false);
			dedupe_held = true;
		}
		pruned = onboarding_spread_parts(store, d->provider, d->subject, want);
		part = 0;
	}

	ExecClearTuple(slot);
	pfree(want);
	return found;
}

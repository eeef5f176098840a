/*-------------------------------------------------------------------------
 *
 * open.c
 *		onboarding.open_entity: the entities still on their way, kept as
 *		state rows are written, so that in_progress_entities, stuck() and
 *		pending_documents read a few thousand rows instead of every state
 *		row.
 *
 * An entity (a proposal's checks are entities of their own, as in
 * status_tally) has a row in onboarding.open_entity while its status is
 * open: one in which in_progress() says it is on its way (not settled,
 * some transition leaves it), and also, for a document, any status but
 * validated (pending_documents lists those), and for a proposal of a
 * provider whose documents it settles (onboarding.settled_by_proposal),
 * one of the statuses in which its documents wait.  The set is a superset
 * of what each report lists: the reports join it to the state rows and
 * decide there, exactly, as they did over whole tables.
 *
 * A document of a settled_by_proposal provider (a proposal_document, in
 * the set) also carries its proposal's key (parent_key) and whether that
 * proposal had no row when the document was written (orphan).  The reports find such a document
 * through a proposal that waits (parent_key) or because it is an orphan:
 * a Celcoin file stays sent for good, so most of them are neither, and
 * are never read.  orphan is cleared when the proposal's row is created
 * and set again when it is deleted; the probe that decides it locks the
 * proposal's row (FOR KEY SHARE), so a proposal deleted meanwhile is
 * waited for.  One race leaves orphan true for a proposal that exists (its
 * row created by a transaction that had not committed when the document's
 * probe ran): the reports check, so it only costs a lookup.
 *
 * What changes the set is what status_tally counts, and it is gathered at
 * the same points: tally.c hands every state row version it counts here
 * (onboarding_open_values: the version on disk replaced or deleted, -1;
 * the version written, +1), from store.c's writes and from the statement
 * triggers' transition tables.  The changes are netted per entity in
 * memory (a rewrite that keeps an entity open changes nothing) and
 * written when tally.c writes its counts (the end of each statement, of a
 * unit of rebuild(), before commit), or between two deliveries once they
 * are many: row by row through the table access method, the index
 * entries made here (open_direct), or, when a user has added an index, a
 * trigger or a rule to the table, with a few statements that let theirs
 * take part.  A change of the rules that decide what is open (transition,
 * settled_status, settled_by_proposal) computes the set again
 * (recount_open_entity(), from their statement triggers).
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "compat.h"

/* The changes gathered before they are written between two deliveries */
#define OPEN_MAX_PENDING	4096

/* The entities of the set: status_tally's, and a proposal's row itself */
#define OPEN_ROW_EXISTS	OB_TALLY_NENTITIES	/* a proposal's row, created or deleted */

/* Is a status open?  (entity: an index in onboarding_tally_entities) */
typedef struct OpenStatusKey
{
	int32		entity;
	Oid			provider;
	Oid			status;
} OpenStatusKey;

typedef struct OpenStatus
{
	OpenStatusKey k;
	bool		open;
	bool		refused;		/* a status rejection_reasons counts */
} OpenStatus;

/* What the rules say, compiled once per change of them */
static HTAB *open_statuses = NULL;	/* OpenStatus, in CacheMemoryContext */
static bool open_valid = false;
static uint64 open_providers_gen = 0;
static Oid	open_rule_relids[3];	/* transition, settled_status, settled_by_proposal */

/* The providers whose proposals settle their documents, and the key separator of each */
typedef struct OpenSettled
{
	Oid			provider;
	char	   *separator;		/* in open_settled_cxt */
	int			nwaiting;		/* the statuses in which its documents wait */
	char	  **waiting;
} OpenSettled;

static MemoryContext open_settled_cxt = NULL;	/* open_settled and what it points to */

static OpenSettled *open_settled = NULL;
static int	open_nsettled = 0;
static bool open_callback = false;

/* An entity's net change: +1 opened, -1 closed (OPEN_ROW_EXISTS: created, deleted) */
typedef struct OpenKey
{
	Oid			provider;
	int32		entity;
	const char *key;
} OpenKey;

typedef struct OpenEntry
{
	OpenKey		k;
	int32		n;
	/* onboarding.refused_entity: the refused versions seen, first and last */
	int8		rfirst;			/* +1 written, -1 replaced or deleted; 0: none */
	int8		rlast;
	char	   *reason;			/* the last one written: its reason (in open_cxt) */
	TimestampTz at;				/* and its last_event_at */
	bool		at_null;
} OpenEntry;

/* What was gathered when a subtransaction began */
typedef struct OpenSave
{
	SubTransactionId subid;
	int			n;
	OpenEntry  *entries;		/* keys copied too */
} OpenSave;

static MemoryContext open_cxt = NULL;	/* the gathered changes and their keys */
static HTAB *open_changes = NULL;
static List *open_saves = NIL;	/* OpenSave *, innermost first */

static SPIPlanPtr open_plans[4];

/* open_entity's shape (open_shape()), forgotten when it changes */
typedef struct OpenShape OpenShape;
static void open_shape_forget(Oid relid);

/* Relcache callback: a table the set's rules are read from, or the set, changed. */
static void
open_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == open_rule_relids[0] ||
		relid == open_rule_relids[1] || relid == open_rule_relids[2])
		open_valid = false;
	open_shape_forget(relid);
}

/* Register the relcache callback, once per backend. */
static void
open_register(void)
{
	if (!open_callback)
	{
		CacheRegisterRelcacheCallback(open_invalidate, (Datum) 0);
		open_callback = true;
	}
}

/*
 * Is status one in which rejection_reasons counts an entity (its list, as
 * the view had it: refused, failed or blocked)?
 */
static bool
open_refusing(ObEntity entity, const char *status)
{
	static const char *const account[] = {"rejected", "failed", "blocked", NULL};
	static const char *const proposal[] = {"rejected", "expired", "account_error", NULL};
	static const char *const document[] = {"invalid", "disapproved", "error", "inexistent",
	"expired", NULL};

	switch (entity)
	{
		case OB_ACCOUNT:
			return onboarding_status_in(status, account);
		case OB_PROPOSAL:
			return onboarding_status_in(status, proposal);
		case OB_DOCUMENT:
			return onboarding_status_in(status, document);
		default:
			return false;
	}
}

/*
 * Compile which (entity, provider, status) are open, from the rule tables
 * (read as rules.c reads them: no SQL, so that a backend's first delivery
 * stays cheap).  in_progress(): not in settled_status (for the provider or
 * all), and a transition leaves the status (rules.c's graphs); documents:
 * also any status but validated; proposals of a settled_by_proposal
 * provider: also the statuses in which its documents wait.
 */
static void
open_compile(void)
{
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "onboarding open rules",
												  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(scratch);
	int			nproviders = onboarding_provider_count();
	int			nsettled = 0;
	HeapTuple  *settled = NULL;
	TupleDesc	settled_desc = NULL;
	int			nwaiting = 0;
	HeapTuple  *waiting = NULL;
	TupleDesc	waiting_desc = NULL;
	HASHCTL		ctl;

	open_register();
	open_rule_relids[0] = get_relname_relid("transition", onboarding_schema_oid());
	open_rule_relids[1] = get_relname_relid("settled_status", onboarding_schema_oid());
	open_rule_relids[2] = get_relname_relid("settled_by_proposal", onboarding_schema_oid());
	open_valid = true;
	if (OidIsValid(open_rule_relids[1]))
	{
		static const char *const cols[] = {"entity", "provider", "status"};

		nsettled = onboarding_rule_rows("settled_status", cols, 3, NULL, 0, &settled_desc, &settled);
	}
	if (OidIsValid(open_rule_relids[2]))
	{
		static const char *const cols[] = {"entity", "provider", "proposal_waiting", "key_separator"};

		nwaiting = onboarding_rule_rows("settled_by_proposal", cols, 4, NULL, 0, &waiting_desc,
										&waiting);
	}
	if (open_settled_cxt == NULL)
		open_settled_cxt = AllocSetContextCreate(CacheMemoryContext, "onboarding settled_by_proposal",
												 ALLOCSET_SMALL_SIZES);
	MemoryContextReset(open_settled_cxt);
	open_settled = MemoryContextAllocZero(open_settled_cxt, (nwaiting + 1) * sizeof(OpenSettled));
	open_nsettled = 0;
	for (int i = 0; i < nwaiting; i++)
	{
		OpenSettled *r = &open_settled[open_nsettled];
		char	   *provider = onboarding_rule_text(waiting[i], waiting_desc, 2);
		char	   *separator = onboarding_rule_text(waiting[i], waiting_desc, 4);
		bool		isnull;
		Datum		labels = heap_getattr(waiting[i], 3, waiting_desc, &isnull);
		Datum	   *elems;
		bool	   *nulls;
		int			n = 0;

		if (strcmp(onboarding_rule_text(waiting[i], waiting_desc, 1), "document") != 0 ||
			provider == NULL || separator == NULL)
			continue;
		r->provider = onboarding_provider_oid(onboarding_provider_from_name(provider));
		r->separator = MemoryContextStrdup(open_settled_cxt, separator);
		if (!isnull)
			deconstruct_array(DatumGetArrayTypeP(labels), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &nulls, &n);
		r->waiting = MemoryContextAllocZero(open_settled_cxt, (n + 1) * sizeof(char *));
		for (int j = 0; j < n; j++)
			if (!nulls[j])
				r->waiting[r->nwaiting++] = MemoryContextStrdup(open_settled_cxt,
																TextDatumGetCString(elems[j]));
		open_nsettled++;
	}

	if (open_statuses != NULL)
		hash_destroy(open_statuses);
	ctl.keysize = sizeof(OpenStatusKey);
	ctl.entrysize = sizeof(OpenStatus);
	ctl.hcxt = CacheMemoryContext;
	open_statuses = hash_create("onboarding open statuses", 256, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	for (int e = 0; e < OB_TALLY_NENTITIES; e++)
	{
		static const ObEntity entities[OB_TALLY_NENTITIES] = {
			OB_ACCOUNT, OB_PROPOSAL, OB_BACKGROUND_CHECK, OB_DOCUMENTSCOPY, OB_DOCUMENT, OB_CLOSURE
		};
		ObGraph		g = onboarding_entity_graph(entities[e]);
		const char *const *labels = onboarding_graph_labels(g);
		const char *name = onboarding_tally_entities[e];

		for (int p = 0; p < nproviders; p++)
			for (int s = 0; labels[s] != NULL; s++)
			{
				OpenStatusKey k;
				OpenStatus *st;
				bool		open;

				memset(&k, 0, sizeof(k));
				k.entity = e;
				open = onboarding_status_has_exit(g, (ObProvider) p, labels[s]);
				for (int i = 0; open && i < nsettled; i++)
				{
					char	   *provider = onboarding_rule_text(settled[i], settled_desc, 2);

					if (strcmp(onboarding_rule_text(settled[i], settled_desc, 1), name) == 0 &&
						strcmp(onboarding_rule_text(settled[i], settled_desc, 3), labels[s]) == 0 &&
						(provider == NULL || strcmp(provider, onboarding_provider_name(p)) == 0))
						open = false;
				}
				if (entities[e] == OB_DOCUMENT && strcmp(labels[s], "validated") != 0)
					open = true;
				k.provider = onboarding_provider_oid((ObProvider) p);
				for (int i = 0; !open && entities[e] == OB_PROPOSAL && i < open_nsettled; i++)
					if (open_settled[i].provider == k.provider)
						for (int w = 0; w < open_settled[i].nwaiting; w++)
							if (strcmp(open_settled[i].waiting[w], labels[s]) == 0)
								open = true;
				k.status = onboarding_status_oid(g, labels[s]);
				st = hash_search(open_statuses, &k, HASH_ENTER, NULL);
				st->open = open;
				st->refused = open_refusing(entities[e], labels[s]);
			}
	}
	open_providers_gen = onboarding_providers_generation();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);
}

/* Compile what the rules say unless it is current. */
static void
open_rules_current(void)
{
	if (!open_valid || open_statuses == NULL ||
		open_providers_gen != onboarding_providers_generation())
		open_compile();
}

/* What the rules say of this status of this entity (labels: enum OIDs), or NULL. */
static const OpenStatus *
open_status(int entity, Oid provider, Oid status)
{
	OpenStatusKey k;

	open_rules_current();
	memset(&k, 0, sizeof(k));
	k.entity = entity;
	k.provider = provider;
	k.status = status;
	return (const OpenStatus *) hash_search(open_statuses, &k, HASH_FIND, NULL);
}

/* dynahash: the hash of an OpenKey (its string by content) */
static uint32
open_key_hash(const void *key, Size keysize)
{
	const OpenKey *k = (const OpenKey *) key;

	return hash_combine(hash_combine(murmurhash32(k->provider), murmurhash32((uint32) k->entity)),
						hash_bytes((const unsigned char *) k->key, strlen(k->key)));
}

/* dynahash: 0 when two OpenKeys are equal */
static int
open_key_match(const void *a, const void *b, Size keysize)
{
	const OpenKey *x = (const OpenKey *) a;
	const OpenKey *y = (const OpenKey *) b;

	if (x->provider != y->provider || x->entity != y->entity)
		return 1;
	return strcmp(x->key, y->key);
}

/* The table of gathered changes, created on first use. */
static HTAB *
open_table(void)
{
	if (open_changes == NULL)
	{
		HASHCTL		ctl;

		open_cxt = AllocSetContextCreate(TopTransactionContext, "onboarding open entities",
										 ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(OpenKey);
		ctl.entrysize = sizeof(OpenEntry);
		ctl.hash = open_key_hash;
		ctl.match = open_key_match;
		ctl.hcxt = open_cxt;
		open_changes = hash_create("onboarding open entities", 64, &ctl,
								   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}
	return open_changes;
}

/* The gathered change of one entity (key: copied when new). */
static OpenEntry *
open_entry(Oid provider, int entity, const char *key)
{
	OpenKey		k = {provider, entity, key};
	bool		found;
	OpenEntry  *e = hash_search(open_table(), &k, HASH_ENTER, &found);

	if (!found)
	{
		e->k.key = MemoryContextStrdup(open_cxt, key);
		e->n = 0;
		e->rfirst = e->rlast = 0;
		e->reason = NULL;
		e->at = 0;
		e->at_null = true;
	}
	return e;
}

/* Add delta to the net change of one entity. */
static void
open_add(Oid provider, int entity, const char *key, int delta)
{
	open_entry(provider, entity, key)->n += delta;
}

/* A text column's value as a C string (palloc'd), or NULL. */
static char *
open_text(const Datum *values, const bool *nulls, AttrNumber att)
{
	return (att == InvalidAttrNumber || nulls[att - 1]) ? NULL : TextDatumGetCString(values[att - 1]);
}

/*
 * Why an entity in a refusing status was refused, as rejection_reasons
 * says it: an account's reason; a proposal's provider status and message;
 * a document's reason, else its provider status.
 */
static char *
open_reason(MemoryContext cxt, const ObTallyCols *cols, const Datum *values, const bool *nulls)
{
	char	   *reason = open_text(values, nulls, cols->reason);
	char	   *pstatus = open_text(values, nulls, cols->provider_status);
	char	   *message = open_text(values, nulls, cols->message);
	char	   *result;

	if (cols->table == OB_S_PROPOSAL && pstatus && message)
		result = psprintf("%s: %s", pstatus, message);
	else
		result = pstrdup(cols->table != OB_S_PROPOSAL && reason ? reason :
						 cols->table != OB_S_ACCOUNT && pstatus ? pstatus :
						 "(no reason given)");
	/* (a row version a statement writes: nothing of it stays but the result) */
	if (reason)
		pfree(reason);
	if (pstatus)
		pfree(pstatus);
	if (message)
		pfree(message);
	return MemoryContextStrdup(cxt, result);
}

/* A refused version of an entity counted sign times: the last written wins. */
static void
open_refused(const ObTallyCols *cols, const Datum *values, const bool *nulls, Oid provider,
			 int entity, const char *key, int sign)
{
	OpenEntry  *e = open_entry(provider, entity, key);

	if (e->rfirst == 0)
		e->rfirst = sign;
	e->rlast = sign;
	if (sign > 0)
	{
		if (e->reason != NULL)
			pfree(e->reason);
		e->reason = open_reason(open_cxt, cols, values, nulls);
		e->at_null = (cols->last_event_at == InvalidAttrNumber || nulls[cols->last_event_at - 1]);
		e->at = e->at_null ? 0 : DatumGetTimestampTz(values[cols->last_event_at - 1]);
	}
}

/*
 * A state row version counted sign times by tally.c (cols: its table's
 * columns): each of its entities whose status is open opens (+1) or
 * closes (-1); one whose status is refusing is refused (+1, with its
 * reason) or no longer (-1); a proposal's row is created (+1) or deleted
 * (-1).
 */
void
onboarding_open_values(const ObTallyCols *cols, const Datum *values, const bool *nulls, int sign)
{
	Oid			provider;
	char	   *key = NULL;

	if (cols->key == InvalidAttrNumber || nulls[cols->provider - 1] || nulls[cols->key - 1])
		return;
	provider = DatumGetObjectId(values[cols->provider - 1]);
	for (int c = 0; c < cols->n; c++)
	{
		const OpenStatus *st;

		if (nulls[cols->att[c] - 1])
			continue;
		st = open_status(cols->entity[c], provider, DatumGetObjectId(values[cols->att[c] - 1]));
		if (st == NULL || (!st->open && !st->refused))
			continue;
		if (key == NULL)
			key = TextDatumGetCString(values[cols->key - 1]);
		if (st->open)
			open_add(provider, cols->entity[c], key, sign);
		if (st->refused)
			open_refused(cols, values, nulls, provider, cols->entity[c], key, sign);
	}
	if (cols->table == OB_S_PROPOSAL)
	{
		if (key == NULL)
			key = TextDatumGetCString(values[cols->key - 1]);
		open_add(provider, OPEN_ROW_EXISTS, key, sign);
	}
	if (key != NULL)
		pfree(key);
}

/* Forget what is gathered, keeping the table. */
static void
open_clear(void)
{
	if (open_cxt != NULL)
		MemoryContextDelete(open_cxt);	/* the table and its keys */
	open_cxt = NULL;
	open_changes = NULL;
}

/* The statements that write the set, by what they do */
typedef enum OpenPlan
{
	OPEN_CLOSE = 0,				/* entities closed: their rows deleted */
	OPEN_OPEN,					/* entities opened: rows inserted */
	OPEN_ADOPT,					/* proposals created: their documents no longer orphans */
	OPEN_ORPHAN					/* proposals deleted: their documents orphans */
} OpenPlan;

static const char *const open_sql[4] = {
	[OPEN_CLOSE] =
	"DELETE FROM onboarding.open_entity o"
	" USING ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3))"
	"       AS u (provider, entity, entity_key)"
	" WHERE o.entity = u.entity AND o.provider = u.provider::onboarding.provider"
	"   AND o.entity_key = u.entity_key",
	[OPEN_OPEN] =
	"WITH u AS ("
	"    SELECT u.provider::onboarding.provider AS provider, u.entity, u.entity_key,"
	"           pg_catalog.split_part(u.entity_key, r.key_separator, 1) AS parent_key"
	"      FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3))"
	"           AS u (provider, entity, entity_key)"
	"      LEFT JOIN onboarding.settled_by_proposal r"
	"        ON r.entity = 'document' AND u.entity = 'proposal_document'"
	"       AND r.provider = u.provider::onboarding.provider"
	"), parent AS ("
	"    SELECT p.provider, p.proposal_key FROM onboarding.proposal p"
	"     WHERE (p.provider, p.proposal_key) IN (SELECT u.provider, u.parent_key FROM u"
	"                                             WHERE u.parent_key IS NOT NULL)"
	"       FOR KEY SHARE OF p"
	")"
	" INSERT INTO onboarding.open_entity (entity, provider, entity_key, parent_key, orphan)"
	" SELECT u.entity, u.provider, u.entity_key, u.parent_key,"
	"        u.parent_key IS NOT NULL AND NOT EXISTS (SELECT FROM parent"
	"                                                  WHERE parent.provider = u.provider"
	"                                                    AND parent.proposal_key = u.parent_key)"
	"   FROM u"
	" ON CONFLICT (entity, provider, entity_key) DO NOTHING",
	[OPEN_ADOPT] =
	"UPDATE onboarding.open_entity o SET orphan = false"
	"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS u (provider, proposal_key)"
	" WHERE o.orphan AND o.provider = u.provider::onboarding.provider"
	"   AND o.parent_key = u.proposal_key",
	[OPEN_ORPHAN] =
	"UPDATE onboarding.open_entity o SET orphan = true"
	"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS u (provider, proposal_key)"
	" WHERE o.parent_key IS NOT NULL AND NOT o.orphan"
	"   AND o.provider = u.provider::onboarding.provider AND o.parent_key = u.proposal_key",
};

/* One-dimensional text[] of n elements. */
static Datum
open_text_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Run one of the statements over n entities (columns: provider, [entity,] key). */
static void
open_run(OpenPlan which, Datum *provider, Datum *entity, Datum *key, int n)
{
	bool		adopt = (which == OPEN_ADOPT || which == OPEN_ORPHAN);
	int			nargs = adopt ? 2 : 3;
	Datum		args[3];
	int			rc;

	if (n == 0)
		return;
	if (open_plans[which] == NULL)
		open_plans[which] = onboarding_spi_prepare(open_sql[which], nargs,
												   (Oid[]) {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID});
	args[0] = open_text_array(provider, n);
	args[1] = open_text_array(adopt ? key : entity, n);
	args[2] = adopt ? (Datum) 0 : open_text_array(key, n);
	rc = SPI_execute_plan(open_plans[which], args, NULL, false, 0);
	if (rc < 0)
		elog(ERROR, "could not write onboarding.open_entity: %s", SPI_result_code_string(rc));
}

/* The separator of a provider whose proposals settle its documents, or NULL. */
static const char *
open_separator(Oid provider)
{
	open_rules_current();
	for (int i = 0; i < open_nsettled; i++)
		if (open_settled[i].provider == provider)
			return open_settled[i].separator;
	return NULL;
}

/*
 * The name an entity goes by in the set: its name in status_tally, but a
 * document of a provider whose proposals settle its documents is a
 * proposal_document, so that the few other documents are one range of
 * the primary key, and the planner's statistics on entity tell them apart.
 */
static const char *
open_entity_name(int entity, Oid provider)
{
	if (entity == OB_TALLY_DOCUMENT && open_separator(provider) != NULL)
		return "proposal_document";
	return onboarding_tally_entities[entity];
}

/* open_entity's columns, in this order */
enum
{
	OA_ENTITY = 0, OA_PROVIDER, OA_KEY, OA_PARENT, OA_ORPHAN, OA_NATTS
};
static const char *const open_colnames[OA_NATTS] = {
	"entity", "provider", "entity_key", "parent_key", "orphan"
};

/* What writing the set row by row needs */
typedef struct OpenWriter
{
	Relation	rel;			/* onboarding.open_entity */
	Relation	pk;				/* its primary key (entity, provider, entity_key) */
	Relation	parent;			/* open_entity_parent_idx (provider, parent_key) */
	Relation	orphan;			/* open_entity_orphan_idx (provider, parent_key) WHERE orphan */
	IndexInfo  *pk_info;
	IndexInfo  *parent_info;
	IndexInfo  *orphan_info;
	AttrNumber	att[OA_NATTS];
	Relation	proposal;		/* onboarding.proposal and its primary key, once needed */
	Relation	proposal_pk;
	TupleTableSlot *slot;		/* a row of the set */
	TupleTableSlot *next;		/* its next version */
	TupleTableSlot *pslot;		/* a proposal */
	CommandId	cid;
	bool		seen;			/* has this command seen the state rows written before it? */
	IndexScanDesc pkscan;		/* a scan of the primary key, begun once, with... */
	SnapshotData dirty;			/* ...its snapshot */
} OpenWriter;

/* Are an index's key columns these attributes, in this order? */
static bool
open_index_is(Relation index, int n, const AttrNumber *atts)
{
	if (index->rd_index->indnkeyatts != n || RelationGetIndexExpressions(index) != NIL)
		return false;
	for (int i = 0; i < n; i++)
		if (index->rd_index->indkey.values[i] != atts[i])
			return false;
	return true;
}

/*
 * What open_shape() found of onboarding.open_entity, kept until an
 * invalidation comes for it (open_invalidate): whether its rows can be
 * written without a statement, and its indexes.
 */
struct OpenShape
{
	bool		valid;
	Oid			relid;
	bool		direct;
	Oid			pk;
	Oid			parent;
	Oid			orphan;
	AttrNumber	att[OA_NATTS];
};

static OpenShape open_shape_cache;

/* An invalidation for relid (InvalidOid: every relation). */
static void
open_shape_forget(Oid relid)
{
	if (relid == InvalidOid || relid == open_shape_cache.relid)
		open_shape_cache.valid = false;
}

/*
 * Is the set as the extension made it, so that its rows can be written
 * without a statement?  A heap of its five columns (of their types), its
 * primary key and its two partial indexes and no other, no trigger and no
 * rule: then each row's index entries are made here, where it is known
 * which partial index takes it.  Else what a user added must take part,
 * and the statements write.  (rel: the set, open.)
 */
static const OpenShape *
open_shape(Relation rel)
{
	OpenShape  *sh = &open_shape_cache;
	TupleDesc	desc = RelationGetDescr(rel);
	static const Oid types[OA_NATTS] = {TEXTOID, InvalidOid, TEXTOID, TEXTOID, BOOLOID};
	List	   *indexes;
	ListCell   *lc;

	if (sh->valid && sh->relid == RelationGetRelid(rel))
		return sh;
	memset(sh, 0, sizeof(*sh));
	sh->relid = RelationGetRelid(rel);
	sh->valid = true;
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->trigdesc != NULL ||
		rel->rd_rules != NULL || desc->natts != OA_NATTS)
		return sh;
	for (int c = 0; c < OA_NATTS; c++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, c);

		if (a->attisdropped || a->attgenerated || strcmp(NameStr(a->attname), open_colnames[c]) != 0 ||
			(OidIsValid(types[c]) && a->atttypid != types[c]))
			return sh;
		sh->att[c] = a->attnum;
	}
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		const char *name = RelationGetRelationName(index);
		AttrNumber	pk_atts[3] = {sh->att[OA_ENTITY], sh->att[OA_PROVIDER], sh->att[OA_KEY]};
		AttrNumber	by_parent[2] = {sh->att[OA_PROVIDER], sh->att[OA_PARENT]};
		bool		partial = RelationGetIndexPredicate(index) != NIL;
		Oid		   *slot = NULL;

		if (index->rd_index->indisprimary && !partial && open_index_is(index, 3, pk_atts))
			slot = &sh->pk;
		else if (strcmp(name, "open_entity_parent_idx") == 0 && partial &&
				 open_index_is(index, 2, by_parent))
			slot = &sh->parent;
		else if (strcmp(name, "open_entity_orphan_idx") == 0 && partial &&
				 open_index_is(index, 2, by_parent))
			slot = &sh->orphan;
		index_close(index, AccessShareLock);
		if (slot == NULL || OidIsValid(*slot))
		{
			list_free(indexes);
			return sh;			/* a user's index: the statements maintain it */
		}
		*slot = lfirst_oid(lc);
	}
	list_free(indexes);
	sh->direct = OidIsValid(sh->pk) && OidIsValid(sh->parent) && OidIsValid(sh->orphan);
	return sh;
}

/*
 * Ready w to write the set row by row, when its shape allows (else
 * false): the primary key open; the other two indexes, the proposals and
 * the indexes' descriptions are opened when first needed.
 */
static bool
open_direct(OpenWriter *w)
{
	const OpenShape *sh;

	open_register();
	sh = open_shape(w->rel);
	if (!sh->direct)
		return false;
	memcpy(w->att, sh->att, sizeof(w->att));
	w->pk = index_open(sh->pk, RowExclusiveLock);
	w->slot = table_slot_create(w->rel, NULL);
	w->next = table_slot_create(w->rel, NULL);
	w->cid = GetCurrentCommandId(true);
	return true;
}

/* The set's two partial indexes, opened on first need. */
static void
open_partial_indexes(OpenWriter *w)
{
	if (w->parent == NULL)
	{
		w->parent = index_open(open_shape_cache.parent, RowExclusiveLock);
		w->orphan = index_open(open_shape_cache.orphan, RowExclusiveLock);
	}
}

/* Close what open_direct() opened (also after it said no). */
static void
open_direct_end(OpenWriter *w)
{
	if (w->slot != NULL)
	{
		ExecDropSingleTupleTableSlot(w->slot);
		ExecDropSingleTupleTableSlot(w->next);
	}
	if (w->pslot != NULL)
		ExecDropSingleTupleTableSlot(w->pslot);
	if (w->pkscan != NULL)
		index_endscan(w->pkscan);
	if (w->pk != NULL)
		index_close(w->pk, RowExclusiveLock);
	if (w->parent != NULL)
		index_close(w->parent, RowExclusiveLock);
	if (w->orphan != NULL)
		index_close(w->orphan, RowExclusiveLock);
	if (w->proposal_pk != NULL)
		index_close(w->proposal_pk, AccessShareLock);
	if (w->proposal != NULL)
		table_close(w->proposal, NoLock);
}

/*
 * The entries of open_entity_parent_idx when the row in slot has a
 * parent_key, and of open_entity_orphan_idx when it is an orphan (their
 * predicates, which open_shape() checked by name and columns).
 */
static void
open_partial_entries(OpenWriter *w, TupleTableSlot *slot)
{
	Datum	   *v = slot->tts_values;
	bool	   *n = slot->tts_isnull;
	Datum		by_parent[2] = {v[w->att[OA_PROVIDER] - 1], v[w->att[OA_PARENT] - 1]};
	bool		by_parent_null[2] = {false, false};

	if (n[w->att[OA_PARENT] - 1])
		return;
	if (w->parent_info == NULL)
	{
		open_partial_indexes(w);
		w->parent_info = BuildIndexInfo(w->parent);
		w->orphan_info = BuildIndexInfo(w->orphan);
	}
	index_insert(w->parent, by_parent, by_parent_null, &slot->tts_tid, w->rel,
				 UNIQUE_CHECK_NO, false, w->parent_info);
	if (!n[w->att[OA_ORPHAN] - 1] && DatumGetBool(v[w->att[OA_ORPHAN] - 1]))
		index_insert(w->orphan, by_parent, by_parent_null, &slot->tts_tid, w->rel,
					 UNIQUE_CHECK_NO, false, w->orphan_info);
}

/*
 * The index entries of the version of a row of the set in slot (at its
 * tid): the primary key's, then the partial indexes' (unless the primary
 * key says the key may be there already: false, and none).  update: a new
 * version of a row, whose key has not changed.
 */
static bool
open_index_entries(OpenWriter *w, TupleTableSlot *slot, bool update)
{
	Datum	   *v = slot->tts_values;
	Datum		pk[3] = {v[w->att[OA_ENTITY] - 1], v[w->att[OA_PROVIDER] - 1], v[w->att[OA_KEY] - 1]};
	bool		pk_null[3] = {false, false, false};

	if (w->pk_info == NULL)
		w->pk_info = BuildIndexInfo(w->pk);
	if (!index_insert(w->pk, pk, pk_null, &slot->tts_tid, w->rel,
					  update ? UNIQUE_CHECK_NO : UNIQUE_CHECK_PARTIAL, update, w->pk_info) &&
		!update)
		return false;
	open_partial_entries(w, slot);
	return true;
}

/* Scan keys: equality on an index's first n columns (provider: an enum, the rest text). */
static void
open_keys(ScanKey sk, Relation index, int n, const Datum *values, const bool *is_enum)
{
	for (int c = 0; c < n; c++)
		ScanKeyEntryInitialize(&sk[c], 0, c + 1, BTEqualStrategyNumber, InvalidOid,
							   index->rd_indcollation[c], is_enum[c] ? F_ENUM_EQ : F_TEXTEQ,
							   values[c]);
}

/*
 * Does the proposal exist (provider, key)?  Its row, found with a dirty
 * snapshot, is locked FOR KEY SHARE until commit, so that a transaction
 * deleting it waits for ours, and then sees the document this one writes
 * (and marks it an orphan); one deleting it now is waited for, and the
 * proposal is gone if it commits.  A proposal created by a transaction
 * still running is not waited for (it would wait for ours in turn when it
 * adopts the documents): absent.
 */
static bool
open_proposal_exists(OpenWriter *w, Datum provider, Datum key)
{
	SnapshotData dirty;
	ScanKeyData sk[2];
	IndexScanDesc scan;
	bool		found;
	ItemPointerData tid;
	TM_FailureData tmfd;
	TM_Result	res;

	if (w->proposal == NULL)
	{
		AttrNumber	keys[2];

		w->proposal = table_open(onboarding_relation_oid("proposal"), RowShareLock);
		keys[0] = onboarding_attnum(RelationGetDescr(w->proposal), "proposal", "provider");
		keys[1] = onboarding_attnum(RelationGetDescr(w->proposal), "proposal", "proposal_key");
		w->proposal_pk = index_open(ob_relation_get_primary_key_index(w->proposal),
									AccessShareLock);
		if (!open_index_is(w->proposal_pk, 2, keys))
			elog(ERROR, "the primary key of onboarding.proposal is not (provider, proposal_key)");
		w->pslot = table_slot_create(w->proposal, NULL);
	}
	if (!w->seen)
	{
		/* the proposal may have been written by this very command: see it */
		CommandCounterIncrement();
		w->cid = GetCurrentCommandId(true);
		w->seen = true;
	}
	InitDirtySnapshot(dirty);
	open_keys(sk, w->proposal_pk, 2, (Datum[]) {provider, key}, (bool[]) {true, false});
	scan = ob_index_beginscan(w->proposal, w->proposal_pk, &dirty, 2, 0);
	index_rescan(scan, sk, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, w->pslot);
	if (found)
		tid = w->pslot->tts_tid;
	index_endscan(scan);
	ExecClearTuple(w->pslot);
	if (!found || (TransactionIdIsValid(dirty.xmin) &&
				   !TransactionIdIsCurrentTransactionId(dirty.xmin)))
		return false;
	res = table_tuple_lock(w->proposal, &tid, InvalidSnapshot, w->pslot, w->cid, LockTupleKeyShare,
						   LockWaitBlock, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
	if (res == TM_Ok)
	{
		bool		isnull;
		Datum		k = slot_getattr(w->pslot, w->proposal_pk->rd_index->indkey.values[1], &isnull);

		/* (a key changed by an UPDATE is another proposal's) */
		found = !isnull && DatumGetBool(DirectFunctionCall2Coll(texteq,
															   w->proposal_pk->rd_indcollation[1],
															   k, key));
	}
	else
		found = (res == TM_SelfModified);	/* (changed by this command: still ours) */
	ExecClearTuple(w->pslot);
	return found;
}

/*
 * Find the set's row of an entity (dirty snapshot), other than the one at
 * but (if valid): its place, or false.  One scan of the primary key serves
 * every look of a flush.
 */
static bool
open_find(OpenWriter *w, Datum entity, Datum provider, Datum key, ItemPointer but,
		  ItemPointer tid)
{
	ScanKeyData sk[3];
	bool		found;

	if (w->pkscan == NULL)
	{
		InitDirtySnapshot(w->dirty);
		w->pkscan = ob_index_beginscan(w->rel, w->pk, &w->dirty, 3, 0);
	}
	open_keys(sk, w->pk, 3, (Datum[]) {entity, provider, key}, (bool[]) {false, true, false});
	index_rescan(w->pkscan, sk, 3, NULL, 0);
	while ((found = index_getnext_slot(w->pkscan, ForwardScanDirection, w->slot)) &&
		   but != NULL && ItemPointerEquals(&w->slot->tts_tid, but))
		;
	if (found)
		*tid = w->slot->tts_tid;
	ExecClearTuple(w->slot);
	return found;
}

/* An entity closed: its row deleted (one already gone is not an error). */
static void
open_direct_close(OpenWriter *w, Datum entity, Datum provider, Datum key)
{
	ItemPointerData tid;
	TM_FailureData tmfd;

	if (open_find(w, entity, provider, key, NULL, &tid))
		(void) table_tuple_delete(w->rel, &tid, w->cid, InvalidSnapshot, InvalidSnapshot, true,
								  &tmfd, false);
}

/*
 * An entity opened: its row inserted, with its proposal's key and whether
 * that is absent.  Not looked for first: the primary key's insertion says
 * whether the key may be there already (as a deferred unique check does),
 * and only then is it looked for, and the new row taken back if it is
 * (rows written behind the triggers' back can leave one).
 */
static void
open_direct_open(OpenWriter *w, int entity, Oid provider, const char *key)
{
	Datum		ename = CStringGetTextDatum(open_entity_name(entity, provider));
	Datum		dkey = CStringGetTextDatum(key);
	const char *sep = entity == OB_TALLY_DOCUMENT ? open_separator(provider) : NULL;
	TupleTableSlot *slot = w->slot;
	ItemPointerData tid;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, OA_NATTS * sizeof(bool));
	slot->tts_values[w->att[OA_ENTITY] - 1] = ename;
	slot->tts_values[w->att[OA_PROVIDER] - 1] = ObjectIdGetDatum(provider);
	slot->tts_values[w->att[OA_KEY] - 1] = dkey;
	slot->tts_values[w->att[OA_ORPHAN] - 1] = BoolGetDatum(false);
	slot->tts_isnull[w->att[OA_ENTITY] - 1] = false;
	slot->tts_isnull[w->att[OA_PROVIDER] - 1] = false;
	slot->tts_isnull[w->att[OA_KEY] - 1] = false;
	slot->tts_isnull[w->att[OA_ORPHAN] - 1] = false;
	if (sep != NULL)
	{
		/* split_part(key, sep, 1): up to the first separator, or the whole key */
		const char *at = strstr(key, sep);
		Datum		parent = at ? PointerGetDatum(cstring_to_text_with_len(key, at - key)) : dkey;

		slot->tts_values[w->att[OA_PARENT] - 1] = parent;
		slot->tts_isnull[w->att[OA_PARENT] - 1] = false;
		slot->tts_values[w->att[OA_ORPHAN] - 1] =
			BoolGetDatum(!open_proposal_exists(w, ObjectIdGetDatum(provider), parent));
	}
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(w->rel, slot, w->cid, 0, NULL);
	if (!open_index_entries(w, slot, false))
	{
		ItemPointerData ours = slot->tts_tid;
		TM_FailureData tmfd;

		if (open_find(w, ename, ObjectIdGetDatum(provider), dkey, &ours, &tid))
		{
			/* there already: the new row goes (seen from a new command) */
			CommandCounterIncrement();
			w->cid = GetCurrentCommandId(true);
			(void) table_tuple_delete(w->rel, &ours, w->cid, InvalidSnapshot, InvalidSnapshot,
									  true, &tmfd, false);
			return;
		}
		/* (a row another transaction had: it is gone) */
		slot = w->slot;
		if (!table_tuple_fetch_row_version(w->rel, &ours, SnapshotAny, slot))
			elog(ERROR, "a row just written to onboarding.open_entity is gone");
		slot_getallattrs(slot);
		open_partial_entries(w, slot);
	}
	ExecClearTuple(w->slot);
}

/*
 * A proposal created (orphan: false) or deleted (true): the documents of
 * the set it is the proposal of change their orphan flag.  Found through
 * open_entity_orphan_idx (created) or open_entity_parent_idx (deleted)
 * with a dirty snapshot: a document another transaction is writing is
 * waited for, and looked for again, so that its flag ends right.
 */
static void
open_direct_adopt(OpenWriter *w, Oid provider, const char *key, bool orphan)
{
	Relation	index;
	Datum		dkey = CStringGetTextDatum(key);
	ScanKeyData sk[2];
	List	   *tids;
	ListCell   *lc;
	TransactionId xwait;

	open_partial_indexes(w);
	index = orphan ? w->parent : w->orphan;
	do
	{
		SnapshotData dirty;
		IndexScanDesc scan;

		tids = NIL;
		xwait = InvalidTransactionId;
		InitDirtySnapshot(dirty);
		open_keys(sk, index, 2, (Datum[]) {ObjectIdGetDatum(provider), dkey}, (bool[]) {true, false});
		scan = ob_index_beginscan(w->rel, index, &dirty, 2, 0);
		index_rescan(scan, sk, 2, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, w->slot))
		{
			ItemPointer tid;

			xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
			if (TransactionIdIsValid(xwait))
				break;
			tid = palloc(sizeof(ItemPointerData));
			*tid = w->slot->tts_tid;
			tids = lappend(tids, tid);
		}
		index_endscan(scan);
		ExecClearTuple(w->slot);
		if (TransactionIdIsValid(xwait))
			XactLockTableWait(xwait, NULL, NULL, XLTW_None);
	} while (TransactionIdIsValid(xwait));

	foreach(lc, tids)
	{
		ItemPointer tid = (ItemPointer) lfirst(lc);
		TupleTableSlot *next = w->next;
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		bool		update_indexes;
		bool		only_summarizing;

		if (!table_tuple_fetch_row_version(w->rel, tid, SnapshotAny, w->slot))
			continue;
		slot_getallattrs(w->slot);
		ExecClearTuple(next);
		memcpy(next->tts_values, w->slot->tts_values, OA_NATTS * sizeof(Datum));
		memcpy(next->tts_isnull, w->slot->tts_isnull, OA_NATTS * sizeof(bool));
		next->tts_values[w->att[OA_ORPHAN] - 1] = BoolGetDatum(orphan);
		next->tts_isnull[w->att[OA_ORPHAN] - 1] = false;
		ExecStoreVirtualTuple(next);
		if (ob_table_tuple_update(w->rel, tid, next, w->cid, InvalidSnapshot, InvalidSnapshot,
								  true, &tmfd, &lockmode, &update_indexes,
								  &only_summarizing) == TM_Ok && update_indexes)
			(void) open_index_entries(w, next, true);
		ExecClearTuple(next);
		ExecClearTuple(w->slot);
	}
}

/* The changes of onboarding.refused_entity of one flush, as arrays */
typedef struct OpenRefusedBatch
{
	Datum	   *provider;
	Datum	   *entity;
	Datum	   *key;
	Datum	   *reason;
	Datum	   *at;
	bool	   *at_null;
	int			nupsert;		/* rows written: [0, nupsert) */
	int			ndelete;		/* rows deleted: [ndelete, size) */
} OpenRefusedBatch;

/*
 * What an entity's refused versions mean for refused_entity: the last one
 * written is kept (inserted or updated); when the last one was replaced
 * or deleted, the row goes, unless the first one seen was written in this
 * batch too (it was never there).
 */
static void
open_refused_gather(OpenEntry *e, OpenRefusedBatch *b)
{
	int			i;

	if (e->rlast > 0)
	{
		i = b->nupsert++;
		b->reason[i] = CStringGetTextDatum(e->reason);
		b->at[i] = TimestampTzGetDatum(e->at);
		b->at_null[i] = e->at_null;
	}
	else if (e->rlast < 0 && e->rfirst < 0)
		i = --b->ndelete;
	else
		return;
	b->provider[i] = CStringGetTextDatum(onboarding_enum_label(e->k.provider));
	b->entity[i] = CStringGetTextDatum(onboarding_tally_entities[e->k.entity]);
	b->key[i] = CStringGetTextDatum(e->k.key);
}

/*
 * Write a batch to onboarding.refused_entity (when it exists), with two
 * statements: refusing statuses are nearly all final, so this is about one
 * row per entity in its life, not per delivery.
 */
static void
open_refused_write(OpenRefusedBatch *b, int size)
{
	static SPIPlanPtr plans[2];
	int			ndel = size - b->ndelete;
	bool		pushed;
	ObSpiFrame	spi;

	if ((b->nupsert == 0 && ndel == 0) ||
		!OidIsValid(get_relname_relid("refused_entity", onboarding_schema_oid())))
		return;
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	onboarding_spi_connect(&spi);
	if (plans[0] == NULL)
	{
		plans[0] = onboarding_spi_prepare(
			"INSERT INTO onboarding.refused_entity AS r"
			"       (entity, provider, entity_key, reason, last_event_at)"
			" SELECT u.entity, u.provider::onboarding.provider, u.entity_key, u.reason, u.at"
			"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
			"                   pg_catalog.unnest($4), pg_catalog.unnest($5))"
			"        AS u (provider, entity, entity_key, reason, at)"
			" ON CONFLICT (entity, provider, entity_key)"
			" DO UPDATE SET reason = excluded.reason, last_event_at = excluded.last_event_at",
			5, (Oid[]) {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID});
		plans[1] = onboarding_spi_prepare(
			"DELETE FROM onboarding.refused_entity r"
			" USING ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3))"
			"       AS u (provider, entity, entity_key)"
			" WHERE r.entity = u.entity AND r.provider = u.provider::onboarding.provider"
			"   AND r.entity_key = u.entity_key",
			3, (Oid[]) {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID});
	}
	if (ndel > 0 &&
		SPI_execute_plan(plans[1], (Datum[]) {open_text_array(b->provider + b->ndelete, ndel),
						 open_text_array(b->entity + b->ndelete, ndel),
						 open_text_array(b->key + b->ndelete, ndel)}, NULL, false, 0) < 0)
		elog(ERROR, "could not delete from onboarding.refused_entity");
	if (b->nupsert > 0)
	{
		int			dims[1] = {b->nupsert};
		int			lbs[1] = {1};
		Datum		at = PointerGetDatum(construct_md_array(b->at, b->at_null, 1, dims, lbs,
														   TIMESTAMPTZOID, sizeof(TimestampTz),
														   true, TYPALIGN_DOUBLE));

		if (SPI_execute_plan(plans[0], (Datum[]) {open_text_array(b->provider, b->nupsert),
							 open_text_array(b->entity, b->nupsert),
							 open_text_array(b->key, b->nupsert),
							 open_text_array(b->reason, b->nupsert), at}, NULL, false, 0) < 0)
			elog(ERROR, "could not write onboarding.refused_entity");
	}
	onboarding_spi_finish(&spi);
	if (pushed)
		PopActiveSnapshot();
}

/* Write one table of gathered changes to onboarding.open_entity. */
static void
open_write(HTAB *changes)
{
	HASH_SEQ_STATUS seq;
	OpenEntry  *e;
	int			size = hash_get_num_entries(changes);
	Datum	   *cols[4][3];
	OpenKey    *opened[4];
	int			n[4] = {0, 0, 0, 0};
	bool		pushed;
	ObSpiFrame	spi;
	OpenRefusedBatch refused = {0};

	refused.provider = palloc(size * sizeof(Datum));
	refused.entity = palloc(size * sizeof(Datum));
	refused.key = palloc(size * sizeof(Datum));
	refused.reason = palloc(size * sizeof(Datum));
	refused.at = palloc(size * sizeof(Datum));
	refused.at_null = palloc(size * sizeof(bool));
	refused.ndelete = size;		/* deletions fill the arrays from their end */
	for (int p = 0; p < 4; p++)
	{
		for (int c = 0; c < 3; c++)
			cols[p][c] = palloc(size * sizeof(Datum));
		opened[p] = palloc(size * sizeof(OpenKey));
	}
	hash_seq_init(&seq, changes);
	while ((e = (OpenEntry *) hash_seq_search(&seq)) != NULL)
	{
		OpenPlan	which;
		int			i;

		open_refused_gather(e, &refused);
		if (e->n == 0)
			continue;
		if (e->k.entity == OPEN_ROW_EXISTS)
			which = e->n > 0 ? OPEN_ADOPT : OPEN_ORPHAN;
		else
			which = e->n > 0 ? OPEN_OPEN : OPEN_CLOSE;
		i = n[which]++;
		opened[which][i] = e->k;
		cols[which][0][i] = CStringGetTextDatum(onboarding_enum_label(e->k.provider));
		cols[which][1][i] = e->k.entity == OPEN_ROW_EXISTS ? (Datum) 0 :
			CStringGetTextDatum(open_entity_name(e->k.entity, e->k.provider));
		cols[which][2][i] = CStringGetTextDatum(e->k.key);
	}
	open_refused_write(&refused, size);
	if (n[OPEN_CLOSE] + n[OPEN_OPEN] + n[OPEN_ADOPT] + n[OPEN_ORPHAN] == 0)
		return;
	{
		OpenWriter	w = {0};
		bool		direct;

		w.rel = table_open(onboarding_relation_oid("open_entity"), RowExclusiveLock);
		direct = open_direct(&w);
		if (direct)
		{
			/* closed first, then opened: an entity's key may move */
			for (int i = 0; i < n[OPEN_CLOSE]; i++)
				open_direct_close(&w, cols[OPEN_CLOSE][1][i],
								  ObjectIdGetDatum(opened[OPEN_CLOSE][i].provider),
								  cols[OPEN_CLOSE][2][i]);
			for (int i = 0; i < n[OPEN_OPEN]; i++)
				open_direct_open(&w, opened[OPEN_OPEN][i].entity, opened[OPEN_OPEN][i].provider,
								 opened[OPEN_OPEN][i].key);
			for (int p = OPEN_ADOPT; p <= OPEN_ORPHAN; p++)
				for (int i = 0; i < n[p]; i++)
					open_direct_adopt(&w, opened[p][i].provider, opened[p][i].key,
									  p == OPEN_ORPHAN);
		}
		open_direct_end(&w);
		table_close(w.rel, NoLock);
		if (direct)
			return;
	}
	/* before commit (tally.c's callback) no statement may be running */
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	onboarding_spi_connect(&spi);
	/* closed first: an entity closed under one key and opened under another */
	for (int p = OPEN_CLOSE; p <= OPEN_ORPHAN; p++)
		open_run((OpenPlan) p, cols[p][0], cols[p][1], cols[p][2], n[p]);
	onboarding_spi_finish(&spi);
	if (pushed)
		PopActiveSnapshot();
}

/*
 * Write the gathered changes to onboarding.open_entity (when it exists: a
 * schema not updated to 0.3.0 has none, and its update fills it), and
 * start again from nothing.  Called by tally.c after it writes its counts.
 * The statements that write the set read the proposals, and a statement
 * that reads state has store.c write its window first: the changes that
 * makes are gathered anew meanwhile, and written in turn.
 */
void
onboarding_open_flush(void)
{
	while (open_changes != NULL && hash_get_num_entries(open_changes) > 0)
	{
		HTAB	   *changes = open_changes;
		MemoryContext cxt = open_cxt;
		MemoryContext old;

		open_changes = NULL;
		open_cxt = NULL;
		if (!OidIsValid(get_relname_relid("open_entity", onboarding_schema_oid())))
		{
			MemoryContextDelete(cxt);
			continue;
		}
		old = MemoryContextSwitchTo(cxt);
		open_write(changes);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);	/* the table, its keys and the arrays */
	}
}

/*
 * Between two deliveries of a statement: the changes gathered are written
 * once they are many, so that a long COPY does not gather one per entity
 * it touches (what is written matches the state rows on disk at any
 * moment: a change is gathered when its row version is written).
 */
void
onboarding_open_bound(void)
{
	if (open_changes != NULL && hash_get_num_entries(open_changes) >= OPEN_MAX_PENDING)
		onboarding_open_flush();
}

/* Before commit tally.c writes (and calls us); an abort forgets everything. */
static void
open_xact(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			open_clear();
			open_saves = NIL;	/* in TopTransactionContext: gone with it */
			break;
		default:
			break;
	}
}

/*
 * Subtransactions, as tally.c's counts: a copy of what is gathered when
 * one begins, given back when it rolls back.
 */
static void
open_subxact(SubXactEvent event, SubTransactionId mySubid,
			 SubTransactionId parentSubid, void *arg)
{
	OpenSave   *save = open_saves ? (OpenSave *) linitial(open_saves) : NULL;

	if (save != NULL && save->subid != mySubid)
		save = NULL;
	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (open_changes != NULL && hash_get_num_entries(open_changes) > 0)
			{
				MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
				HASH_SEQ_STATUS seq;
				OpenEntry  *e;

				save = palloc(sizeof(OpenSave));
				save->subid = mySubid;
				save->n = 0;
				save->entries = palloc(hash_get_num_entries(open_changes) * sizeof(OpenEntry));
				hash_seq_init(&seq, open_changes);
				while ((e = (OpenEntry *) hash_seq_search(&seq)) != NULL)
				{
					save->entries[save->n] = *e;
					save->entries[save->n].k.key = pstrdup(e->k.key);
					if (e->reason != NULL)
						save->entries[save->n].reason = pstrdup(e->reason);
					save->n++;
				}
				open_saves = lcons(save, open_saves);
				MemoryContextSwitchTo(old);
			}
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			open_clear();
			if (save != NULL)
				for (int i = 0; i < save->n; i++)
				{
					OpenEntry  *was = &save->entries[i];
					OpenEntry  *e = open_entry(was->k.provider, was->k.entity, was->k.key);

					e->n = was->n;
					e->rfirst = was->rfirst;
					e->rlast = was->rlast;
					e->reason = was->reason ? MemoryContextStrdup(open_cxt, was->reason) : NULL;
					e->at = was->at;
					e->at_null = was->at_null;
				}
			/* FALLTHROUGH */
		case SUBXACT_EVENT_COMMIT_SUB:
			if (save != NULL)
			{
				open_saves = list_delete_first(open_saves);
				for (int i = 0; i < save->n; i++)
				{
					pfree((char *) save->entries[i].k.key);
					if (save->entries[i].reason != NULL)
						pfree(save->entries[i].reason);
				}
				pfree(save->entries);
				pfree(save);
			}
			break;
		default:
			break;
	}
}

/* At load, right after tally.c's (so in the same order against store.c's). */
void
onboarding_open_init(void)
{
	RegisterXactCallback(open_xact, NULL);
	RegisterSubXactCallback(open_subxact, NULL);
}

/*
 * A state table truncated (table: OB_S_ACCOUNT .. OB_S_CLOSURE): its
 * entities leave the set and refused_entity; a proposal's documents
 * become orphans.  What
 * this transaction gathered was written first (tally.c's trigger).
 */
void
onboarding_open_truncated(int table)
{
	static SPIPlanPtr plans[3];
	static const char *const entities[][3] = {
		{"account"}, {"proposal", "background_check", "documentscopy"},
		{"document", "proposal_document"}, {"closure"}
	};
	Datum		names[3];
	int			n = 0;
	ObSpiFrame	spi;

	if (!OidIsValid(get_relname_relid("open_entity", onboarding_schema_oid())))
		return;
	for (int i = 0; i < 3 && entities[table][i] != NULL; i++)
		names[n++] = CStringGetTextDatum(entities[table][i]);
	onboarding_spi_connect(&spi);
	if (plans[0] == NULL)
		plans[0] = onboarding_spi_prepare("DELETE FROM onboarding.open_entity"
										  " WHERE entity = ANY ($1)", 1, (Oid[]) {TEXTARRAYOID});
	if (plans[1] == NULL)
		plans[1] = onboarding_spi_prepare("UPDATE onboarding.open_entity SET orphan = true"
										  " WHERE parent_key IS NOT NULL AND NOT orphan", 0, NULL);
	if (SPI_execute_plan(plans[0], (Datum[]) {open_text_array(names, n)}, NULL, false, 0) < 0 ||
		(table == OB_S_PROPOSAL && SPI_execute_plan(plans[1], NULL, NULL, false, 0) < 0))
		elog(ERROR, "could not write onboarding.open_entity");
	if (OidIsValid(get_relname_relid("refused_entity", onboarding_schema_oid())))
	{
		if (plans[2] == NULL)
			plans[2] = onboarding_spi_prepare("DELETE FROM onboarding.refused_entity"
											  " WHERE entity = ANY ($1)", 1,
											  (Oid[]) {TEXTARRAYOID});
		if (SPI_execute_plan(plans[2], (Datum[]) {open_text_array(names, n)}, NULL, false, 0) < 0)
			elog(ERROR, "could not delete from onboarding.refused_entity");
	}
	onboarding_spi_finish(&spi);
}

/*
 * AFTER ... FOR EACH STATEMENT on transition, settled_status and
 * settled_by_proposal: what is open may have changed, so every backend
 * compiles it again and the set is computed again from the state tables
 * (recount_open_entity(): it holds deliveries off meanwhile).
 */
PG_FUNCTION_INFO_V1(onboarding_open_rules_changed);
Datum
onboarding_open_rules_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	ObSpiFrame	spi;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("open_rules_changed() must be an AFTER ... FOR EACH STATEMENT trigger")));
	CacheInvalidateRelcache(td->tg_relation);
	open_valid = false;
	onboarding_tally_flush();
	onboarding_spi_connect(&spi);
	if (SPI_execute("SELECT onboarding.recount_open_entity()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count onboarding.open_entity again");
	onboarding_spi_finish(&spi);
	return PointerGetDatum(NULL);
}

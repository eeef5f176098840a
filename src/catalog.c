/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		Names resolved once per backend: the schema, enum labels, and the
 *		columns of onboarding.inbox.
 *
 * Enums are OIDs.  The pipeline compares and stores them as OIDs, resolved
 * from their labels through the syscache once and kept in a small cache
 * that is thrown away whenever pg_type or pg_enum changes (for instance
 * when the extension is dropped and created again in the same session).
 *
 * Providers are the labels of onboarding.provider, whatever they are: none
 * is compiled in.  A provider is the position of its label in the enum's
 * order; the list is read again when the cache is thrown away, and its
 * generation changes only when the labels did (a label added with ALTER
 * TYPE ... ADD VALUE), so the caches sized by it (rules.c, extract.c) are
 * rebuilt then and only then.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "commands/extension.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "access/htup_details.h"
#include "utils/catcache.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"


/* Labels of each graph's status enum, in SQL order */
static const char *const account_labels[] = {
	"requested", "in_analysis", "pending_data", "created", "limited", "active",
	"blocked", "closing", "closed", "rejected", "failed", NULL
};
static const char *const proposal_labels[] = {
	"created", "pending", "in_analysis", "pending_data", "approved", "rejected",
	"expired", "account_created", "account_error", NULL
};
static const char *const document_labels[] = {
	"sent", "awaiting_validation", "resubmitted", "typified", "validated", "invalid",
	"disapproved", "expired", "error", "inexistent", "suspended", NULL
};
static const char *const closure_labels[] = {
	"created", "processing", "pending", "error", "disapproved", "approved", "automatic", NULL
};
static const char *const check_labels[] = {
	"created", "pending", "processing", "approved", "rejected", NULL
};

static const char *const *const graph_labels[OB_NGRAPHS] = {
	account_labels, proposal_labels, document_labels, closure_labels, check_labels
};

/* The state tables and the columns the pipeline writes in them */
const ObStateTable onboarding_state_tables[OB_NSTATE_TABLES] = {
	{"account", "account_key", 1, {"status"}, {NULL},
		11, {OB_F_ENABLED, OB_F_TAX_ID, OB_F_TAX_ID_RAW, OB_F_HOLDER_NAME, OB_F_BANK,
			OB_F_BRANCH, OB_F_NUMBER, OB_F_DIGIT, OB_F_REASON, OB_F_PARTNER_ID,
		OB_F_BUSINESS_UNIT_ID}, false},
	{"proposal", "proposal_key", 3, {"status", "background_check", "documentscopy"},
		{"status_at", "background_check_at", "documentscopy_at"},
		9, {OB_F_TAX_ID, OB_F_TAX_ID_RAW, OB_F_PERSON_TYPE, OB_F_CLIENT_CODE, OB_F_ACCOUNT_KEY,
		OB_F_MESSAGE, OB_F_PARTNER_ID, OB_F_BUSINESS_UNIT_ID, OB_F_ACCOUNTS_KEY}, true},
	{"document", "document_key", 1, {"status"}, {NULL},
		13, {OB_F_DOCUMENT_TYPE, OB_F_DOCUMENT_TYPE_RAW, OB_F_SIGNER, OB_F_ACCOUNT_KEY,
			OB_F_TAX_ID, OB_F_TAX_ID_RAW, OB_F_FILE_NAME, OB_F_URL, OB_F_EXPIRES_AT,
		OB_F_REASON, OB_F_MESSAGE, OB_F_PARTNER_ID, OB_F_BUSINESS_UNIT_ID}, false},
	{"closure", "account_key", 1, {"status"}, {NULL},
		3, {OB_F_MESSAGE, OB_F_PARTNER_ID, OB_F_BUSINESS_UNIT_ID}, false},
};

/* Does the pipeline write this column of state table t (its bookkeeping included)? */
bool
onboarding_state_column(int t, const char *column)
{
	static const char *const bookkeeping[] = {
		"provider", "provider_status", "first_event_at", "last_event_at", "last_inbox_id",
		"last_seen_id", "last_received_at", "subjects"
	};
	const ObStateTable *def = &onboarding_state_tables[t];

	if (strcmp(column, def->keycol) == 0 || (def->has_flow && strcmp(column, "flow") == 0))
		return true;
	for (int i = 0; i < lengthof(bookkeeping); i++)
		if (strcmp(column, bookkeeping[i]) == 0)
			return true;
	for (int c = 0; c < def->nstatus; c++)
		if (strcmp(column, def->statuscol[c]) == 0 ||
			(def->statustime[c] && strcmp(column, def->statustime[c]) == 0))
			return true;
	for (int f = 0; f < def->nfields; f++)
		if (strcmp(column, onboarding_field_names[def->fields[f]]) == 0)
			return true;
	return false;
}

/* Does the pipeline write this column of onboarding.history? */
bool
onboarding_history_column(const char *column)
{
	static const char *const columns[] = {
		"id", "provider", "entity", "entity_key", "from_status", "to_status", "event_at",
		"inbox_id", "reason"
	};

	for (int i = 0; i < lengthof(columns); i++)
		if (strcmp(column, columns[i]) == 0)
			return true;
	return false;
}

/* onboarding.transition.entity names of the graphs */
const char *const onboarding_graph_names[OB_NGRAPHS] = {
	"account", "proposal", "document", "closure", "check"
};

/* SQL names of the enum types, in ObEnumType order */
static const char *const enum_type_names[OB_NENUMS] = {
	"provider", "outcome", "account_status", "proposal_status", "check_status",
	"document_status", "document_type", "closure_status"
};

/* The enum type of each transition graph's statuses */
static const ObEnumType graph_enum[OB_NGRAPHS] = {
	[OB_GRAPH_ACCOUNT] = OB_ENUM_ACCOUNT_STATUS,
	[OB_GRAPH_PROPOSAL] = OB_ENUM_PROPOSAL_STATUS,
	[OB_GRAPH_DOCUMENT] = OB_ENUM_DOCUMENT_STATUS,
	[OB_GRAPH_CLOSURE] = OB_ENUM_CLOSURE_STATUS,
	[OB_GRAPH_CHECK] = OB_ENUM_CHECK_STATUS,
};

static Oid	cached_schema = InvalidOid;
static ObInboxOids cached_inbox;	/* valid when cached_inbox.inbox is set */
/* The labels of onboarding.provider, in enum order */
static int	nproviders = 0;
static Oid *provider_oids = NULL;	/* in TopMemoryContext */
static const char **provider_names = NULL;	/* interned: never freed */
static uint64 providers_gen = 0;	/* bumped when the labels change */
static List *interned_names = NIL;
static Oid	cached_outcome[OB_NOUTCOMES];	/* InvalidOid: not a label (yet) */
static Oid	cached_status[OB_NGRAPHS][OB_MAX_STATUSES];	/* by label position */
static bool cache_valid = false;
static bool callback_registered = false;

/* Forget everything when a type, an enum label or a relation changes. */
static void
catalog_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	cache_valid = false;
	cached_schema = InvalidOid;
	cached_inbox.inbox = InvalidOid;
}

/* Register the invalidation callbacks, once per backend. */
static void
catalog_register(void)
{
	if (callback_registered)
		return;
	CacheRegisterSyscacheCallback(TYPEOID, catalog_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(ENUMTYPOIDNAME, catalog_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(RELOID, catalog_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, catalog_invalidate, (Datum) 0);
	callback_registered = true;
}

/* A copy of name that lives as long as the backend (one per distinct name). */
static const char *
catalog_intern(const char *name)
{
	ListCell   *lc;
	MemoryContext old;
	char	   *copy;

	foreach(lc, interned_names)
		if (strcmp((const char *) lfirst(lc), name) == 0)
			return (const char *) lfirst(lc);
	old = MemoryContextSwitchTo(TopMemoryContext);
	copy = pstrdup(name);
	interned_names = lappend(interned_names, copy);
	MemoryContextSwitchTo(old);
	return copy;
}

/* qsort comparator of pg_enum rows by enumsortorder */
static int
catalog_enum_cmp(const void *a, const void *b)
{
	Form_pg_enum x = (Form_pg_enum) GETSTRUCT(*(const HeapTuple *) a);
	Form_pg_enum y = (Form_pg_enum) GETSTRUCT(*(const HeapTuple *) b);

	return x->enumsortorder < y->enumsortorder ? -1 : x->enumsortorder > y->enumsortorder;
}

/*
 * Read the labels of onboarding.provider in their order; bump the
 * generation when they differ from the ones read before.
 */
static void
catalog_fill_providers(void)
{
	Oid			typoid;
	CatCList   *list;
	HeapTuple  *rows;
	Oid		   *oids;
	const char **names;
	bool		same;

	typoid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("provider"),
							 ObjectIdGetDatum(onboarding_schema_oid()));
	if (!OidIsValid(typoid))
		elog(ERROR, "type onboarding.provider does not exist");
	list = SearchSysCacheList1(ENUMTYPOIDNAME, ObjectIdGetDatum(typoid));
	rows = palloc(sizeof(HeapTuple) * Max(list->n_members, 1));
	for (int i = 0; i < list->n_members; i++)
		rows[i] = &list->members[i]->tuple;
	qsort(rows, list->n_members, sizeof(HeapTuple), catalog_enum_cmp);
	oids = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(list->n_members, 1));
	names = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * Max(list->n_members, 1));
	for (int i = 0; i < list->n_members; i++)
	{
		Form_pg_enum en = (Form_pg_enum) GETSTRUCT(rows[i]);

		oids[i] = en->oid;
		names[i] = catalog_intern(NameStr(en->enumlabel));
	}
	same = (list->n_members == nproviders);
	for (int i = 0; same && i < nproviders; i++)
		same = (oids[i] == provider_oids[i] && names[i] == provider_names[i]);
	if (!same)
		providers_gen++;
	if (provider_oids != NULL)
	{
		pfree(provider_oids);
		pfree(provider_names);
	}
	nproviders = list->n_members;
	provider_oids = oids;
	provider_names = names;
	ReleaseSysCacheList(list);
	pfree(rows);
}

/* Fill the small caches; registers the invalidation callback once. */
static void
catalog_fill(void)
{
	catalog_register();
	catalog_fill_providers();
	for (int i = 0; i < OB_NOUTCOMES; i++)
		cached_outcome[i] = onboarding_enum_oid(OB_ENUM_OUTCOME, onboarding_outcome_names[i]);
	for (int g = 0; g < OB_NGRAPHS; g++)
	{
		const char *const *labels = onboarding_graph_labels((ObGraph) g);

		for (int i = 0; i < OB_MAX_STATUSES; i++)
			cached_status[g][i] = InvalidOid;
		for (int i = 0; labels[i] != NULL; i++)
			cached_status[g][i] = onboarding_enum_oid(graph_enum[g], labels[i]);
	}
	cache_valid = true;
}

/* The graph an entity's status follows. */
ObGraph
onboarding_entity_graph(ObEntity entity)
{
	switch (entity)
	{
		case OB_ACCOUNT:
			return OB_GRAPH_ACCOUNT;
		case OB_PROPOSAL:
			return OB_GRAPH_PROPOSAL;
		case OB_DOCUMENT:
			return OB_GRAPH_DOCUMENT;
		case OB_CLOSURE:
			return OB_GRAPH_CLOSURE;
		default:
			return OB_GRAPH_CHECK;
	}
}

/* The labels of a graph, NULL-terminated. */
const char *const *
onboarding_graph_labels(ObGraph graph)
{
	return graph_labels[graph];
}

/* The static label equal to s in graph, or NULL when s is not one of them. */
const char *
onboarding_status_label(ObGraph graph, const char *s)
{
	int			i = onboarding_status_index(graph, s);

	return i < 0 ? NULL : graph_labels[graph][i];
}

/* Position of a label in its graph's enum, or -1. */
int
onboarding_status_index(ObGraph graph, const char *s)
{
	for (int i = 0; graph_labels[graph][i] != NULL; i++)
		if (strcmp(graph_labels[graph][i], s) == 0)
			return i;
	return -1;
}

/* OID of the schema onboarding. */
Oid
onboarding_schema_oid(void)
{
	catalog_register();
	if (!OidIsValid(cached_schema))
		cached_schema = get_namespace_oid("onboarding", false);
	return cached_schema;
}

/*
 * The inbox, its indexes and its owner, looked up once
 * and kept until a relation changes.
 */
const ObInboxOids *
onboarding_inbox_oids(void)
{
	if (!OidIsValid(cached_inbox.inbox))
	{
		ObInboxOids fresh;
		HeapTuple	tup;

		fresh.inbox = onboarding_relation_oid("inbox");
		fresh.group_index = get_relname_relid("inbox_group_idx", onboarding_schema_oid());
		fresh.hash_index = get_relname_relid("inbox_body_hash_idx", onboarding_schema_oid());
		fresh.group_by_time = false;
		if (OidIsValid(fresh.group_index))
		{
			tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(fresh.group_index));
			if (!HeapTupleIsValid(tup))
				elog(ERROR, "cache lookup failed for index %u", fresh.group_index);
			fresh.group_by_time = ((Form_pg_index) GETSTRUCT(tup))->indnatts == 4;
			ReleaseSysCache(tup);
		}
		if (!OidIsValid(fresh.group_index) && !OidIsValid(fresh.hash_index))
			elog(ERROR, "onboarding.inbox has neither inbox_group_idx nor inbox_body_hash_idx");
		fresh.pkey_index = onboarding_relation_oid("inbox_pkey");
		fresh.id_sequence = onboarding_relation_oid("inbox_id_seq");
		fresh.history_sequence = onboarding_relation_oid("history_id_seq");
		fresh.spread = get_relname_relid("group_partition", onboarding_schema_oid());
		fresh.spread_index = get_relname_relid("group_partition_idx", onboarding_schema_oid());
		if (!OidIsValid(fresh.spread_index))
			fresh.spread = InvalidOid;
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(fresh.inbox));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", fresh.inbox);
		fresh.owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
		cached_inbox = fresh;
	}
	return &cached_inbox;
}

/* OID of a relation of the schema onboarding (error if missing). */
Oid
onboarding_relation_oid(const char *name)
{
	Oid			relid = get_relname_relid(name, onboarding_schema_oid());

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"onboarding.%s\" does not exist", name),
				 errhint("The extension's objects are damaged; reinstall the extension.")));
	return relid;
}

/* OID of an enum label of one of the extension's types. */
Oid
onboarding_enum_oid(ObEnumType type, const char *label)
{
	Oid			typoid;
	Oid			result;

	typoid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
							 CStringGetDatum(enum_type_names[type]),
							 ObjectIdGetDatum(onboarding_schema_oid()));
	if (!OidIsValid(typoid))
		elog(ERROR, "type onboarding.%s does not exist", enum_type_names[type]);
	result = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid,
							 ObjectIdGetDatum(typoid), CStringGetDatum(label));
	return result;
}

/* The label of an enum value (palloc'd). */
char *
onboarding_enum_label(Oid value)
{
	HeapTuple	tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(value));
	char	   *label;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for enum value %u", value);
	label = pstrdup(NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel));
	ReleaseSysCache(tup);
	return label;
}

/* How many labels onboarding.provider has. */
int
onboarding_provider_count(void)
{
	if (!cache_valid)
		catalog_fill();
	return nproviders;
}

/* Changes whenever the labels of onboarding.provider do. */
uint64
onboarding_providers_generation(void)
{
	if (!cache_valid)
		catalog_fill();
	return providers_gen;
}

/* The onboarding.provider label OID of a provider. */
Oid
onboarding_provider_oid(ObProvider provider)
{
	if (!cache_valid)
		catalog_fill();
	if (provider < 0 || provider >= nproviders)
		elog(ERROR, "provider %d is not a label of onboarding.provider", provider);
	return provider_oids[provider];
}

/* The provider of an onboarding.provider label OID. */
ObProvider
onboarding_provider_from_oid(Oid label)
{
	if (!cache_valid)
		catalog_fill();
	for (int i = 0; i < nproviders; i++)
		if (provider_oids[i] == label)
			return (ObProvider) i;
	elog(ERROR, "unknown onboarding.provider label %u", label);
	return OB_PROVIDER_NONE;	/* keep compiler quiet */
}

/* The label of a provider (a string that lives as long as the backend). */
const char *
onboarding_provider_name(ObProvider provider)
{
	if (!cache_valid)
		catalog_fill();
	if (provider < 0 || provider >= nproviders)
		elog(ERROR, "provider %d is not a label of onboarding.provider", provider);
	return provider_names[provider];
}

/* The provider of a label, or OB_PROVIDER_NONE. */
ObProvider
onboarding_provider_from_name(const char *name)
{
	if (!cache_valid)
		catalog_fill();
	for (int i = 0; i < nproviders; i++)
		if (strcmp(provider_names[i], name) == 0)
			return (ObProvider) i;
	return OB_PROVIDER_NONE;
}

/* The onboarding.outcome label OID of an outcome. */
Oid
onboarding_outcome_oid(ObOutcome outcome)
{
	if (!cache_valid)
		catalog_fill();
	return cached_outcome[outcome];
}

/* The outcome an onboarding.outcome label OID stands for. */
ObOutcome
onboarding_outcome_from_oid(Oid label)
{
	for (int o = 0; o < OB_NOUTCOMES; o++)
		if (onboarding_outcome_oid((ObOutcome) o) == label)
			return (ObOutcome) o;
	elog(ERROR, "unknown onboarding.outcome label %u", label);
	return OB_APPLIED;			/* keep compiler quiet */
}

/* The enum label OID of a status of a graph (a label of onboarding_graph_labels). */
Oid
onboarding_status_oid(ObGraph graph, const char *label)
{
	int			i = onboarding_status_index(graph, label);

	if (!cache_valid)
		catalog_fill();
	if (i < 0 || !OidIsValid(cached_status[graph][i]))
		elog(ERROR, "\"%s\" is not a label of onboarding.%s", label, enum_type_names[graph_enum[graph]]);
	return cached_status[graph][i];
}

/* The static label of a status enum OID of a graph; NULL when unknown. */
const char *
onboarding_status_from_oid(ObGraph graph, Oid label)
{
	const char *const *labels = onboarding_graph_labels(graph);

	if (!cache_valid)
		catalog_fill();
	for (int i = 0; labels[i] != NULL; i++)
		if (cached_status[graph][i] == label)
			return labels[i];
	return NULL;
}

/* Attribute number of a column, or InvalidAttrNumber when there is none. */
static AttrNumber
catalog_attnum(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

/*
 * Attribute number of a column of one of the extension's tables (named for
 * the message); error if it is missing.
 */
AttrNumber
onboarding_attnum(TupleDesc desc, const char *table, const char *name)
{
	AttrNumber	att = catalog_attnum(desc, name);

	if (att != InvalidAttrNumber)
		return att;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of onboarding.%s does not exist", name, table),
			 errhint("The extension's objects are damaged; reinstall the extension.")));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/* Find every column the pipeline reads or writes in the inbox. */
void
onboarding_inbox_atts(TupleDesc desc, ObInboxAtts *atts)
{
	atts->id = onboarding_attnum(desc, "inbox", "id");
	atts->received_at = onboarding_attnum(desc, "inbox", "received_at");
	atts->provider = onboarding_attnum(desc, "inbox", "provider");
	atts->payload = onboarding_attnum(desc, "inbox", "payload");
	atts->raw = onboarding_attnum(desc, "inbox", "raw");
	atts->headers = onboarding_attnum(desc, "inbox", "headers");
	atts->event_type = onboarding_attnum(desc, "inbox", "event_type");
	atts->subject = onboarding_attnum(desc, "inbox", "subject");
	atts->status_raw = onboarding_attnum(desc, "inbox", "status_raw");
	atts->event_at = onboarding_attnum(desc, "inbox", "event_at");
	atts->outcome = onboarding_attnum(desc, "inbox", "outcome");
	atts->detail = onboarding_attnum(desc, "inbox", "detail");
	atts->body_hash = onboarding_attnum(desc, "inbox", "body_hash");
	atts->duplicate_of = onboarding_attnum(desc, "inbox", "duplicate_of");
	atts->forced_by = onboarding_attnum(desc, "inbox", "forced_by");
	/* (0.3.0's: absent while the library is newer than the schema) */
	atts->extraction = catalog_attnum(desc, "extraction");
}

/*
 * onboarding.check_status_labels(), run by the event trigger
 * onboarding_guard_state_ddl after ALTER TYPE: the labels of the status
 * enums are the contract (SPEC §3.1) and the transition graphs are compiled
 * against them, so a label added or renamed would be dropped silently by
 * the rule cache: refuse it, naming the label.  The extension's own scripts
 * (ALTER EXTENSION ... UPDATE) may change them.
 */
PG_FUNCTION_INFO_V1(onboarding_check_status_labels);
Datum
onboarding_check_status_labels(PG_FUNCTION_ARGS)
{
	if (creating_extension)
		PG_RETURN_VOID();
	for (int g = 0; g < OB_NGRAPHS; g++)
	{
		const char *type = enum_type_names[graph_enum[g]];
		Oid			typoid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
											 CStringGetDatum(type),
											 ObjectIdGetDatum(onboarding_schema_oid()));
		CatCList   *list;

		if (!OidIsValid(typoid))
			continue;
		list = SearchSysCacheList1(ENUMTYPOIDNAME, ObjectIdGetDatum(typoid));
		for (int i = 0; i < list->n_members; i++)
		{
			Form_pg_enum en = (Form_pg_enum) GETSTRUCT(&list->members[i]->tuple);
			const char *label = NameStr(en->enumlabel);

			if (onboarding_status_label((ObGraph) g, label) == NULL)
			{
				char	   *copy = pstrdup(label);

				ReleaseSysCacheList(list);
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("onboarding.%s cannot have the label \"%s\"", type, copy),
						 errdetail("The statuses of the state tables are a fixed vocabulary: the transition rules and reports are built on it."),
						 errhint("Map the provider's status to one of the existing labels with a row of onboarding.status_map; its own name is kept in provider_status.")));
			}
		}
		ReleaseSysCacheList(list);
	}
	PG_RETURN_VOID();
}

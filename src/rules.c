/*-------------------------------------------------------------------------
 *
 * rules.c
 *		The rule tables, onboarding.status_map (with the guards of
 *		onboarding.status_guard) and onboarding.transition, read once and
 *		cached.
 *
 * Provider knowledge is data: what each provider status means, and which
 * moves each entity may make.  This file loads these tables into a cache
 * that every delivery consults.  A statement trigger on the rule tables
 * sends a relcache invalidation for them, so every backend drops its cache
 * at its next command after a change and reloads it on first use.  A
 * replaced cache is kept until the end of the transaction, so pointers
 * taken from it stay valid for the delivery that holds them.
 *
 * Statuses are the labels of the SQL enums (catalog.c holds them, in the
 * same order); a graph is a boolean matrix over those labels, per provider.
 * Providers are read from the catalog too, so the matrices are allocated for
 * as many as onboarding.provider has labels when the cache is built, and
 * built again when the labels change.
 *
 * A cache is built in a memory context of its own that is a child of the
 * current one until it is complete: a load that fails leaves nothing
 * behind, and only a complete cache is moved under CacheMemoryContext and
 * put in use.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* One row of onboarding.status_map */
typedef struct RuleMapping
{
	ObProvider	provider;
	char	   *event_type;
	char	   *status_raw;
	ObEntity	entity;
	const char *status;			/* points into the static label arrays */
	char	   *label;
	const char **only_from;		/* static labels, NULL-terminated; or NULL */
} RuleMapping;

/* The graphs of one provider */
typedef struct RuleGraphs
{
	bool		legal[OB_NGRAPHS][OB_MAX_STATUSES][OB_MAX_STATUSES];
	uint8		rank[OB_NGRAPHS][OB_MAX_STATUSES];	/* tie order */
} RuleGraphs;

/* The whole cache, allocated in its own context */
typedef struct RuleCache
{
	MemoryContext context;
	uint64		providers_gen;	/* of the provider labels it was built for */
	int			nproviders;
	int			nmappings;
	RuleMapping *mappings;		/* in provider order */
	int		   *first;			/* by provider: its first mapping (nproviders + 1) */
	RuleGraphs *graphs;			/* one per provider */
	pg_tz	   *timezone;		/* onboarding.settings.timezone, resolved */
} RuleCache;

static RuleCache *rules = NULL;
static bool rules_valid = false;
static uint64 rules_generation = 0;	/* bumped by every invalidation */
static Oid	status_map_relid = InvalidOid;
static Oid	transition_relid = InvalidOid;
static Oid	settings_relid = InvalidOid;
static Oid	status_guard_relid = InvalidOid;
static bool callback_registered = false;

/* Relcache callback: a rule table changed (or every relation was flushed). */
static void
rules_invalidate(Datum arg, Oid relid)
{
	/* (a 0.1.0 schema: any change may be the update that creates them) */
	if (relid == InvalidOid || relid == status_map_relid || relid == transition_relid ||
		relid == settings_relid || relid == status_guard_relid || !OidIsValid(status_guard_relid))
	{
		rules_valid = false;
		rules_generation++;
	}
}

/* The graph of a transition.entity name, or -1. */
static int
rules_graph_from_name(const char *name)
{
	for (int g = 0; g < OB_NGRAPHS; g++)
		if (strcmp(onboarding_graph_names[g], name) == 0)
			return g;
	return -1;
}

/*
 * The order of statuses at equal times (SPEC §6): s before s' when s -> s'
 * is legal and s' -> s is not; otherwise the order of the labels in their
 * enum.  That rule compares two statuses; a sort needs one total order, so
 * the statuses are taken in label order and each is inserted right before
 * the first one it must precede (or last), but never before one that must
 * precede it: label order wherever the one-way moves leave it alone.
 */
static void
rules_rank(RuleCache *cache)
{
	for (int g = 0; g < OB_NGRAPHS; g++)
	{
		int			n = 0;

		while (onboarding_graph_labels((ObGraph) g)[n] != NULL)
			n++;
		for (int p = 0; p < cache->nproviders; p++)
		{
			bool		(*legal)[OB_MAX_STATUSES] = cache->graphs[p].legal[g];
			int			order[OB_MAX_STATUSES];
			int			len = 0;

			for (int s = 0; s < n; s++)
			{
				int			after = 0;	/* past every status that must precede s */
				int			pos = -1;	/* before the first one s must precede */

				for (int i = 0; i < len; i++)
				{
					int			t = order[i];

					if (legal[t][s] && !legal[s][t])
						after = i + 1;
					if (pos < 0 && legal[s][t] && !legal[t][s])
						pos = i;
				}
				if (pos < 0)
					pos = len;
				if (pos < after)
					pos = after;
				memmove(&order[pos + 1], &order[pos], (len - pos) * sizeof(int));
				order[pos] = s;
				len++;
			}
			for (int i = 0; i < len; i++)
				cache->graphs[p].rank[g][order[i]] = (uint8) i;
		}
	}
}

/*
 * Read the rule tables (status_map, status_guard, transition, settings;
 * ruleread.c reads them without SQL) into a new cache.
 */
static RuleCache *
rules_load(void)
{
	MemoryContext cxt;
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext scratch;
	RuleCache  *cache;
	uint64		n;

	/* a child of the current context until complete (see the banner) */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "onboarding rules", ALLOCSET_SMALL_SIZES);
	cache = MemoryContextAllocZero(cxt, sizeof(RuleCache));
	cache->context = cxt;
	cache->providers_gen = onboarding_providers_generation();
	cache->nproviders = onboarding_provider_count();
	cache->graphs = MemoryContextAllocZero(cxt, sizeof(RuleGraphs) * Max(cache->nproviders, 1));
	/* the rows read, and what is made of them on the way, go with this */
	scratch = AllocSetContextCreate(caller, "onboarding rule rows", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(scratch);

	/* each mapping with its guard (status_guard is 0.2.0's), in provider order */
	{
		static const char *const map_cols[] = {"provider", "event_type", "status_raw", "entity",
		"status", "label"};
		static const char *const map_order[] = {"provider"};
		static const char *const guard_cols[] = {"provider", "event_type", "entity", "status",
		"from_status"};
		TupleDesc	desc;
		TupleDesc	gdesc = NULL;
		HeapTuple  *rows;
		HeapTuple  *guards = NULL;
		int			nguards = 0;
		char	  **guard_keys;

		n = onboarding_rule_rows("status_map", map_cols, lengthof(map_cols), map_order,
								 lengthof(map_order), &desc, &rows);
		if (OidIsValid(status_guard_relid))
			nguards = onboarding_rule_rows("status_guard", guard_cols, lengthof(guard_cols),
										   NULL, 0, &gdesc, &guards);
		/* the guards' keys as text, once: every mapping looks for its own */
		guard_keys = palloc(sizeof(char *) * 4 * Max(nguards, 1));
		for (int g = 0; g < nguards; g++)
			for (int k = 0; k < 4; k++)
				guard_keys[g * 4 + k] = onboarding_rule_text(guards[g], gdesc, k + 1);
		cache->mappings = MemoryContextAllocZero(cxt, sizeof(RuleMapping) * Max(n, 1));
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = rows[i];
			char	   *provider = onboarding_rule_text(tup, desc, 1);
			char	   *event_type = onboarding_rule_text(tup, desc, 2);
			char	   *entity = onboarding_rule_text(tup, desc, 4);
			char	   *status = onboarding_rule_text(tup, desc, 5);
			char	   *label = onboarding_rule_text(tup, desc, 6);
			RuleMapping *m = &cache->mappings[cache->nmappings];
			ObEntity	e = onboarding_entity_from_name(entity);
			bool		isnull = true;
			Datum		only_from = (Datum) 0;

			if (e == OB_NENTITIES || onboarding_status_label(onboarding_entity_graph(e), status) == NULL)
				continue;		/* the table's CHECK constraints make this unreachable */
			/* its guard: the status_guard row of the same provider, event, entity and status */
			for (int g = 0; g < nguards && isnull; g++)
				if (strcmp(guard_keys[g * 4], provider) == 0 &&
					strcmp(guard_keys[g * 4 + 1], event_type) == 0 &&
					strcmp(guard_keys[g * 4 + 2], entity) == 0 &&
					strcmp(guard_keys[g * 4 + 3], status) == 0)
					only_from = SPI_getbinval(guards[g], gdesc, 5, &isnull);
			m->provider = onboarding_provider_from_name(provider);
			if (!isnull)
			{
				Datum	   *elems;
				bool	   *enulls;
				int			n_from;

				deconstruct_array(DatumGetArrayTypeP(only_from), TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &enulls, &n_from);
				m->only_from = MemoryContextAllocZero(cxt, sizeof(char *) * (n_from + 1));
				for (int k = 0, j = 0; k < n_from; k++)
				{
					const char *l = enulls[k] ? NULL :
						onboarding_status_label(onboarding_entity_graph(e), TextDatumGetCString(elems[k]));

					if (l != NULL)
						m->only_from[j++] = l;
				}
			}
			m->event_type = MemoryContextStrdup(cxt, event_type);
			m->status_raw = MemoryContextStrdup(cxt, onboarding_rule_text(tup, desc, 3));
			m->entity = e;
			m->status = onboarding_status_label(onboarding_entity_graph(e), status);
			m->label = label ? MemoryContextStrdup(cxt, label) : NULL;
			cache->nmappings++;
		}
	}
	/* where each provider's mappings start (they come in provider order) */
	cache->first = MemoryContextAllocZero(cxt, sizeof(int) * (cache->nproviders + 1));
	for (int p = 0, i = 0; p <= cache->nproviders; p++)
	{
		while (i < cache->nmappings && cache->mappings[i].provider < p)
			i++;
		cache->first[p] = i;
	}

	{
		static const char *const cols[] = {"entity", "provider", "from_status", "to_status"};
		TupleDesc	desc;
		HeapTuple  *rows;

		n = onboarding_rule_rows("transition", cols, lengthof(cols), NULL, 0, &desc, &rows);
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = rows[i];
			int			g = rules_graph_from_name(onboarding_rule_text(tup, desc, 1));
			char	   *provider = onboarding_rule_text(tup, desc, 2);
			int			from,
						to;

			if (g < 0)
				continue;
			from = onboarding_status_index(g, onboarding_rule_text(tup, desc, 3));
			to = onboarding_status_index(g, onboarding_rule_text(tup, desc, 4));
			if (from < 0 || to < 0)
				continue;
			for (int p = 0; p < cache->nproviders; p++)
				if (provider == NULL || strcmp(provider, onboarding_provider_name(p)) == 0)
					cache->graphs[p].legal[g][from][to] = true;
		}
	}

	rules_rank(cache);

	/*
	 * The zone naive provider times are read in: one value for the whole
	 * database, so that every session and rebuild() read a body alike.  A
	 * 0.1.0 schema (before ALTER EXTENSION ... UPDATE) has no settings
	 * table: the default then.
	 */
	cache->timezone = onboarding_resolve_timezone(OB_DEFAULT_TIMEZONE);
	if (OidIsValid(settings_relid))
	{
		static const char *const cols[] = {"timezone"};
		TupleDesc	desc;
		HeapTuple  *rows;

		if (onboarding_rule_rows("settings", cols, 1, NULL, 0, &desc, &rows) > 0)
		{
			char	   *zone = onboarding_rule_text(rows[0], desc, 1);
			pg_tz	   *tz = onboarding_resolve_timezone(zone);

			if (tz == NULL)		/* the table's CHECK makes this unreachable */
				elog(ERROR, "onboarding.settings.timezone \"%s\" is not a time zone", zone);
			cache->timezone = tz;
		}
	}
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(scratch);

	/* complete: from now on it lives as long as the backend wants it */
	MemoryContextSetParent(cxt, CacheMemoryContext);
	return cache;
}

/* The current cache, loading it when a rule table changed. */
static RuleCache *
rules_get(void)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(rules_invalidate, (Datum) 0);
		callback_registered = true;
	}
	if (!rules_valid || rules == NULL || rules->providers_gen != onboarding_providers_generation())
	{
		RuleCache  *fresh;
		uint64		generation = rules_generation;

		status_map_relid = onboarding_relation_oid("status_map");
		transition_relid = onboarding_relation_oid("transition");
		settings_relid = get_relname_relid("settings", onboarding_schema_oid());
		status_guard_relid = get_relname_relid("status_guard", onboarding_schema_oid());
		fresh = rules_load();
		/* valid unless a rule table changed while we were reading it */
		rules_valid = (generation == rules_generation);
		if (rules != NULL)
			onboarding_cache_retire(rules->context);
		rules = fresh;
	}
	return rules;
}

/* The zone naive provider times are read in (onboarding.settings). */
pg_tz *
onboarding_timezone(void)
{
	return rules_get()->timezone;
}

/*
 * is_timezone(text) → boolean: would onboarding.settings.timezone accept
 * this zone?  PostgreSQL's own TimeZone syntax and sign; never raises.
 */
PG_FUNCTION_INFO_V1(onboarding_is_timezone);
Datum
onboarding_is_timezone(PG_FUNCTION_ARGS)
{
	char	   *zone = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(onboarding_resolve_timezone(zone) != NULL);
}

/* Where a status of entity sorts among events of equal time (see rules_rank). */
int
onboarding_status_rank(ObEntity entity, ObProvider provider, const char *status)
{
	ObGraph		g = onboarding_entity_graph(entity);
	int			i = status ? onboarding_status_index(g, status) : -1;

	RuleCache  *cache = rules_get();

	if (i < 0 || provider < 0 || provider >= cache->nproviders)
		return OB_MAX_STATUSES;
	return cache->graphs[provider].rank[g][i];
}

/* Is from -> to a legal move of entity for provider? */
bool
onboarding_transition_legal(ObEntity entity, ObProvider provider, const char *from, const char *to)
{
	ObGraph		g = onboarding_entity_graph(entity);
	int			f = onboarding_status_index(g, from);
	int			t = onboarding_status_index(g, to);

	RuleCache  *cache = rules_get();

	if (f < 0 || t < 0 || provider < 0 || provider >= cache->nproviders)
		return false;
	return cache->graphs[provider].legal[g][f][t];
}

/*
 * Does some move of graph g leave status for provider (a transition from
 * it, for the provider or for all)?  What in_progress() asks of
 * onboarding.transition.
 */
bool
onboarding_status_has_exit(ObGraph g, ObProvider provider, const char *status)
{
	int			f = onboarding_status_index(g, status);
	RuleCache  *cache = rules_get();

	if (f < 0 || provider < 0 || provider >= cache->nproviders)
		return false;
	for (int t = 0; t < OB_MAX_STATUSES; t++)
		if (cache->graphs[provider].legal[g][f][t])
			return true;
	return false;
}

/* Is status one of the labels of list (NULL-terminated)? */
bool
onboarding_status_in(const char *status, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, status) == 0)
			return true;
	return false;
}

/*
 * Map every effect's provider status through status_map.  An unknown
 * status of a primary effect makes the delivery unrecognized; a secondary
 * effect whose status has no mapping for its entity is dropped (the event
 * simply does not touch that entity).  Returns false when decided.
 */
bool
onboarding_rules_classify(ObDelivery *d)
{
	RuleCache  *cache = rules_get();
	List	   *kept = NIL;
	ListCell   *lc;
	bool		known = d->provider >= 0 && d->provider < cache->nproviders;

	foreach(lc, d->effects)
	{
		ObEffect   *e = (ObEffect *) lfirst(lc);
		const char *raw = e->status_key;
		RuleMapping *exact = NULL,
				   *any = NULL;

		if (e->status != NULL)	/* force_status: already a label (detect.c) */
		{
			kept = lappend(kept, e);
			continue;
		}
		/* the mappings of the delivery's provider only */
		for (int i = known ? cache->first[d->provider] : 0;
			 known && i < cache->first[d->provider + 1]; i++)
		{
			RuleMapping *m = &cache->mappings[i];

			if (m->entity != e->entity ||
				strcmp(m->event_type, e->rule_event) != 0)
				continue;
			if (raw != NULL && strcmp(m->status_raw, raw) == 0)
				exact = m;
			else if (strcmp(m->status_raw, "*") == 0)
				any = m;
		}
		if (exact == NULL)
			exact = any;
		if (exact == NULL)
		{
			if (e->primary)
				return onboarding_decide(d, OB_UNRECOGNIZED,
								 "%s %s status \"%s\" is not in onboarding.status_map for %s",
								 onboarding_provider_name(d->provider), e->rule_event,
								 e->status_raw ? e->status_raw : "", onboarding_entity_names[e->entity]);
			continue;
		}
		e->status = exact->status;
		e->label = exact->label;
		e->only_from = exact->only_from;
		kept = lappend(kept, e);
	}
	d->effects = kept;
	return true;
}

/*
 * AFTER ... FOR EACH STATEMENT on the rule tables: tell every backend to
 * drop its cached rules.
 */
PG_FUNCTION_INFO_V1(onboarding_rules_changed);
Datum
onboarding_rules_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"onboarding_rules_changed\" was not called by trigger manager")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"onboarding_rules_changed\" must be fired AFTER ... FOR EACH STATEMENT")));
	/*
	 * Every backend's callbacks (this one's at the next command) drop the
	 * caches that read this table, and only those: rules_invalidate here,
	 * extract.c's for the tables of extraction.
	 */
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

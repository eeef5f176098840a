/*-------------------------------------------------------------------------
 *
 * extract.c
 *		Read a provider's body by the rule tables: provider, event, subject,
 *		status, time, and one effect (entity, key, typed fields) per entity
 *		the event touches.
 *
 * A provider is rows, and this file is their interpreter:
 *
 *		onboarding.provider_rule	how a body is recognised as the provider's,
 *									where its event type and time are
 *		onboarding.event_rule		its events (an exact name, or a part of it)
 *		onboarding.effect_rule		the entities each event touches, primary
 *									first, then consequences; one per element
 *									of an array (for_each)
 *		onboarding.value_rule		where the subject, each key, the status and
 *									each field are: JSON paths tried in order,
 *									read by a transform of a closed set;
 *									several rows of a field are alternatives
 *		onboarding.code_map			code tables (document types, flags)
 *
 * The rows are compiled once into a cache: providers by position, events
 * in a hash on (provider, event type), paths split into keys, code tables
 * and constants converted to the type of the column they fill.  A relcache
 * callback on exactly those tables (their statement trigger sends the
 * invalidation) marks it stale; it is compiled again at its next use.  A
 * cache is built in a context that is a child of the caller's until it is
 * complete, so a compilation that fails leaves nothing behind; a replaced
 * cache is freed at the end of the transaction, since the delivery at hand
 * may point into it.
 *
 * Every read checks the shape first (jsonutil.c): a body of any shape is
 * stored, and never crashes the backend.  A body of no known provider or
 * event is "unrecognized"; a known event missing its subject or status is
 * "invalid".  Fields come out typed as their columns (a taxid, a boolean,
 * a document type's enum OID, a timestamptz, jsonb, text), once; nothing
 * downstream parses them again.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "access/hash.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* The closed set of transforms (value_rule.transform) */
typedef enum XTransform
{
	X_TEXT,						/* a string or number; "" is absent */
	X_UPPER,					/* the same, upper-cased (ASCII) */
	X_STATUS,					/* a string or number, "" kept; else a note */
	X_TIME,						/* a provider time; the .NET sentinel is absent */
	X_TAXID,					/* tax_id and tax_id_raw */
	X_TAXID_KEY,				/* canonical when valid, else without masks */
	X_TAXID_KIND,				/* PF for a valid CPF, PJ for a valid CNPJ */
	X_CODE,						/* a code looked up in code_map (arg: table) */
	X_JSONB,					/* an array or object, as jsonb */
	X_TEMPLATE,					/* a composite key (arg: the template) */
	X_CONST,					/* arg itself */
	X_NTRANSFORMS
} XTransform;

static const char *const transform_names[X_NTRANSFORMS] = {
	"text", "upper", "status", "time", "taxid", "taxid_key", "taxid_kind", "code", "jsonb",
	"template", "const"
};

/* Slots a value rule fills: the fields, then these */
#define X_SLOT_SUBJECT	OB_NFIELDS
#define X_SLOT_KEY		(OB_NFIELDS + 1)
#define X_SLOT_STATUS	(OB_NFIELDS + 2)
#define X_NSLOTS		(OB_NFIELDS + 3)

/* A JSON path, split: keys from the root, or from the element (@.) */
typedef struct XPath
{
	const char *text;			/* as written, without "@." (for messages) */
	bool		element;
	int			depth;
	const char **keys;
	int			node;			/* its node in the cache's tree of keys, or -1 */
} XPath;

/*
 * The keys of every path of the rules, as a tree: paths that share a prefix
 * share its nodes, so a delivery looks each one up once (XRead.memo).
 */
typedef struct XNode
{
	int			parent;			/* -1: a key of the root or of the element */
	bool		element;		/* under the element of a for_each */
	const char *key;
} XNode;

/* One entry of a code table, converted for the slot that reads it */
typedef struct XCode
{
	const char *code;
	const char *value;
	bool		ok;				/* value is a value of the slot's column */
	Datum		datum;
} XCode;

/* A piece of a template: a literal, or {paths[|transform][?default]} */
typedef struct XPart
{
	const char *literal;		/* NULL: a placeholder */
	int			npaths;
	XPath	   *paths;
	XTransform	transform;		/* text, upper or taxid_key */
	const char *dflt;
} XPart;

/* One value_rule row, compiled; alternatives of a slot chain through next */
typedef struct XValue
{
	int			slot;
	int			position;
	XTransform	transform;
	int			npaths;
	XPath	   *paths;
	const char *arg;
	const char *if_absent;
	/* code */
	int			ncodes;
	XCode	   *codes;
	XCode	   *other;			/* code "*", or NULL */
	/* template */
	int			nparts;
	XPart	   *parts;
	/* const */
	bool		const_ok;
	Datum		const_datum;
	const char *rule;			/* the row, as explain() names it */
	struct XValue *next;
} XValue;

/* One effect_rule row, compiled with the values it reads */
typedef struct XEffect
{
	ObEntity	entity;
	bool		consequence;
	XPath	   *for_each;
	XPath	   *for_each_else;
	XValue	   *key;
	int			nfields;
	XValue	  **fields;			/* in order of position */
} XEffect;

/* One event_rule row */
typedef struct XEvent
{
	ObProvider	provider;
	const char *event_type;
	bool		contains;
	const char *rule_event;
	XPath	   *requires;
	bool		needs_status;
	XValue	   *subject;		/* NULL: the provider's */
	XValue	   *status;			/* NULL: the provider's */
	List	   *effects;		/* XEffect *, primary ones first */
} XEvent;

/* One provider_rule row */
typedef struct XProvider
{
	ObProvider	provider;
	const char *title;
	XPath		marker;
	XPath	   *marker_object;
	XPath		event_path;
	int			ntimes;
	XPath	   *times;
	bool		fold_status;
	XValue	   *subject;		/* value_rule rows of event * */
	XValue	   *status;
	List	   *contains;		/* XEvent * of match contains, in order */
} XProvider;

/* The key of the event hash */
typedef struct XEventKey
{
	ObProvider	provider;
	const char *event_type;
} XEventKey;

typedef struct XEventEntry
{
	XEventKey	key;
	XEvent	   *event;
} XEventEntry;

/* The compiled rules */
typedef struct XCache
{
	MemoryContext context;
	int			nnodes;
	XNode	   *nodes;			/* the tree of keys (see XNode) */
	int			maxnodes;
	uint64		providers_gen;
	bool		missing;		/* the schema is older than the rule tables */
	int			nproviders;
	XProvider **by_provider;	/* by ObProvider; NULL: no provider_rule row */
	uint64	   *fingerprint;	/* by ObProvider: hash of the rows that read its
								 * bodies (extraction.c) */
	List	   *ordered;		/* XProvider *, by position */
	HTAB	   *events;
} XCache;

/* The tables whose change invalidates the cache */
enum
{
	XT_PROVIDER_RULE,
	XT_EVENT_RULE,
	XT_EFFECT_RULE,
	XT_VALUE_RULE,
	XT_CODE_MAP,
	XT_NTABLES
};
static const char *const rule_tables[XT_NTABLES] = {
	"provider_rule", "event_rule", "effect_rule", "value_rule", "code_map"
};

static XCache *cache = NULL;
static XCache *compiling = NULL;	/* the cache x_load is filling */
static bool cache_valid = false;
static uint64 cache_generation = 0;
static Oid	table_oids[XT_NTABLES];
static bool callback_registered = false;

/* ---------------------------------------------------------------------
 * Typed values
 * ---------------------------------------------------------------------
 */

/*
 * The value of a field's column read from text: true/false for the flags,
 * a label for document_type, a time for expires_at, the canonical form for
 * tax_id, jsonb text for accounts_key; text for the others.  Never raises:
 * false when text is not a value of the column.
 */
bool
onboarding_field_from_text(ObField field, const char *str, Datum *value)
{
	switch (field)
	{
		case OB_F_ENABLED:
		case OB_F_SIGNER:
			{
				bool		b;

				if (!parse_bool(str, &b))
					return false;
				*value = BoolGetDatum(b);
				return true;
			}
		case OB_F_TAX_ID:
			{
				int64		taxid;

				if (onboarding_taxid_parse(str, strlen(str), &taxid) != NULL)
					return false;
				*value = Int64GetDatum(taxid);
				return true;
			}
		case OB_F_DOCUMENT_TYPE:
			{
				Oid			label = onboarding_enum_oid(OB_ENUM_DOCUMENT_TYPE, str);

				if (!OidIsValid(label))
					return false;
				*value = ObjectIdGetDatum(label);
				return true;
			}
		case OB_F_EXPIRES_AT:
			{
				TimestampTz t;

				if (onboarding_parse_time(str, onboarding_timezone(), &t) != OB_TIME_OK)
					return false;
				*value = TimestampTzGetDatum(t);
				return true;
			}
		case OB_F_ACCOUNTS_KEY:
			{
				Jsonb	   *j;
				char	   *why;
				text	   *t = cstring_to_text(str);

				if (onboarding_parse_raw(t, &j, &why) != OB_PARSE_OK)
					return false;
				*value = JsonbPGetDatum(j);
				return true;
			}
		default:
			*value = CStringGetTextDatum(str);
			return true;
	}
}

/* ---------------------------------------------------------------------
 * Compiling the rules
 * ---------------------------------------------------------------------
 */

/*
 * The node of a path in the tree of keys of the cache being compiled,
 * added with its prefixes when new; -1 outside a compilation.
 */
static int
x_path_node(const XPath *p)
{
	XCache	   *c = compiling;
	int			node = -1;

	if (c == NULL)
		return -1;
	for (int i = 0; i < p->depth; i++)
	{
		int			found = -1;

		for (int k = 0; k < c->nnodes && found < 0; k++)
			if (c->nodes[k].parent == node && c->nodes[k].element == p->element &&
				strcmp(c->nodes[k].key, p->keys[i]) == 0)
				found = k;
		if (found < 0)
		{
			if (c->nnodes == c->maxnodes)
			{
				c->maxnodes = Max(c->maxnodes * 2, 64);
				c->nodes = c->nodes ? repalloc(c->nodes, sizeof(XNode) * c->maxnodes) :
					palloc(sizeof(XNode) * c->maxnodes);
			}
			found = c->nnodes++;
			c->nodes[found].parent = node;
			c->nodes[found].element = p->element;
			c->nodes[found].key = p->keys[i];
		}
		node = found;
	}
	return node;
}

/* Split a path of the rule tables ("a.b", "@.x") into its keys. */
static void
x_path_init(XPath *p, const char *text)
{
	char	   *copy;
	char	   *tok;
	int			n = 1;

	p->element = (strncmp(text, "@.", 2) == 0);
	if (p->element)
		text += 2;
	p->text = pstrdup(text);
	for (const char *c = text; *c; c++)
		n += (*c == '.');
	p->keys = palloc(sizeof(char *) * n);
	p->depth = 0;
	copy = pstrdup(text);
	for (tok = strtok(copy, "."); tok != NULL; tok = strtok(NULL, "."))
		p->keys[p->depth++] = tok;
	p->node = x_path_node(p);
}

/* A path, or NULL for a NULL column */
static XPath *
x_path_new(const char *text)
{
	XPath	   *p;

	if (text == NULL)
		return NULL;
	p = palloc0(sizeof(XPath));
	x_path_init(p, text);
	return p;
}

/* The elements of a text[] column as a palloc'd array of strings. */
static int
x_text_array(HeapTuple tup, TupleDesc desc, int col, char ***out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			k = 0;

	*out = NULL;
	if (isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	*out = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			(*out)[k++] = TextDatumGetCString(elems[i]);
	return k;
}

/* A column as a palloc'd string, or NULL. */
static char *
x_col(HeapTuple tup, TupleDesc desc, int col)
{
	return onboarding_rule_text(tup, desc, col);
}

/* A boolean column. */
static bool
x_bool(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return !isnull && DatumGetBool(d);
}

/* The slot a value_rule.field names. */
static int
x_slot(const char *field)
{
	if (strcmp(field, "subject") == 0)
		return X_SLOT_SUBJECT;
	if (strcmp(field, "key") == 0)
		return X_SLOT_KEY;
	if (strcmp(field, "status") == 0)
		return X_SLOT_STATUS;
	return onboarding_field_from_name(field) == OB_NFIELDS ? -1 : (int) onboarding_field_from_name(field);
}

/*
 * Parse a template: literal text with placeholders {p1,p2|transform?dflt}
 * (paths tried in order; transform text, upper or taxid_key; a default for
 * when every path is absent).  Returns NULL when it is well formed, else
 * what is wrong.  With parts NULL it only checks.
 */
static const char *
x_template_parse(const char *tmpl, List **parts)
{
	const char *c = tmpl;
	bool		any = false;

	while (*c)
	{
		const char *open = strchr(c, '{');
		const char *close;
		char	   *inner;
		char	   *q;
		char	   *bar;
		XPart	   *part;

		if (open == NULL)
			open = c + strlen(c);
		if (open > c && parts != NULL)
		{
			part = palloc0(sizeof(XPart));
			part->literal = pnstrdup(c, open - c);
			*parts = lappend(*parts, part);
		}
		if (strchr(c, '}') != NULL && strchr(c, '}') < open)
			return "a \"}\" closes no placeholder";
		if (*open == '\0')
			break;
		close = strchr(open, '}');
		if (close == NULL)
			return "a placeholder is not closed by \"}\"";
		inner = pnstrdup(open + 1, close - open - 1);
		if (strchr(inner, '{') != NULL)
			return "a placeholder contains \"{\"";
		part = palloc0(sizeof(XPart));
		part->transform = X_TEXT;
		q = strchr(inner, '?');
		if (q != NULL)
		{
			*q = '\0';
			part->dflt = q + 1;
		}
		bar = strchr(inner, '|');
		if (bar != NULL)
		{
			*bar = '\0';
			if (strcmp(bar + 1, "text") == 0)
				part->transform = X_TEXT;
			else if (strcmp(bar + 1, "upper") == 0)
				part->transform = X_UPPER;
			else if (strcmp(bar + 1, "taxid_key") == 0)
				part->transform = X_TAXID_KEY;
			else
				return "a placeholder's transform is not text, upper or taxid_key";
		}
		if (inner[0] == '\0')
			return "a placeholder names no path";
		{
			char	   *copy = pstrdup(inner);
			int			n = 1;
			char	   *tok;

			for (char *x = inner; *x; x++)
				n += (*x == ',');
			part->paths = palloc0(sizeof(XPath) * n);
			for (tok = strtok(copy, ","); tok != NULL; tok = strtok(NULL, ","))
			{
				if (tok[0] == '\0' || tok[0] == '.' || tok[strlen(tok) - 1] == '.' ||
					strstr(tok, "..") != NULL || strcmp(tok, "@.") == 0 ||
					(tok[0] == '@' && tok[1] != '.'))
					return "a placeholder's path is not keys joined by dots";
				x_path_init(&part->paths[part->npaths++], tok);
			}
			if (part->npaths == 0)
				return "a placeholder names no path";
		}
		any = true;
		if (parts != NULL)
			*parts = lappend(*parts, part);
		c = close + 1;
	}
	if (!any)
		return "it has no placeholder";
	return NULL;
}

/*
 * is_template(text) → boolean: is this a template of value_rule (the CHECK
 * of value_rule.arg for transform template)?  Never raises.
 */
PG_FUNCTION_INFO_V1(onboarding_is_template);
Datum
onboarding_is_template(PG_FUNCTION_ARGS)
{
	char	   *tmpl = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(x_template_parse(tmpl, NULL) == NULL);
}

/* Compile one value_rule row (columns as selected by x_load). */
static XValue *
x_value_compile(HeapTuple tup, TupleDesc desc, List *codes)
{
	XValue	   *v = palloc0(sizeof(XValue));
	char	  **paths;
	char	   *transform = x_col(tup, desc, 7);
	bool		isnull;

	v->slot = x_slot(x_col(tup, desc, 4));
	v->position = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	v->npaths = x_text_array(tup, desc, 6, &paths);
	v->paths = palloc0(sizeof(XPath) * Max(v->npaths, 1));
	for (int i = 0; i < v->npaths; i++)
		x_path_init(&v->paths[i], paths[i]);
	v->transform = X_TEXT;
	for (int t = 0; t < X_NTRANSFORMS; t++)
		if (strcmp(transform, transform_names[t]) == 0)
			v->transform = (XTransform) t;
	v->arg = x_col(tup, desc, 8);
	v->if_absent = x_col(tup, desc, 9);
	v->rule = psprintf("value_rule (%s, '%s', %s, %s, %d)", x_col(tup, desc, 1), x_col(tup, desc, 2),
					   x_col(tup, desc, 3), x_col(tup, desc, 4), v->position);

	if (v->transform == X_TEMPLATE)
	{
		List	   *parts = NIL;
		const char *problem = x_template_parse(v->arg ? v->arg : "", &parts);
		ListCell   *lc;

		if (problem != NULL)	/* value_rule's CHECK makes this unreachable */
			elog(ERROR, "template \"%s\" of onboarding.value_rule: %s", v->arg, problem);
		v->parts = palloc(sizeof(XPart) * list_length(parts));
		foreach(lc, parts)
			v->parts[v->nparts++] = *(XPart *) lfirst(lc);
	}
	else if (v->transform == X_CONST && v->slot < OB_NFIELDS)
		v->const_ok = onboarding_field_from_text((ObField) v->slot, v->arg, &v->const_datum);
	else if (v->transform == X_CODE)
	{
		ListCell   *lc;
		int			n = 0;

		/* codes: (table, code, value) triples, table-ordered */
		v->codes = palloc0(sizeof(XCode) * Max(list_length(codes) / 3, 1));
		for (lc = list_head(codes); lc != NULL; lc = lnext(codes, lnext(codes, lnext(codes, lc))))
		{
			XCode		c;

			if (strcmp((const char *) lfirst(lc), v->arg) != 0)
				continue;
			c.code = lfirst(lnext(codes, lc));
			c.value = lfirst(lnext(codes, lnext(codes, lc)));
			c.datum = (Datum) 0;
			c.ok = (v->slot < OB_NFIELDS) ?
				onboarding_field_from_text((ObField) v->slot, c.value, &c.datum) : true;
			if (strcmp(c.code, "*") == 0)
			{
				v->other = palloc(sizeof(XCode));
				*v->other = c;
			}
			else
				v->codes[n++] = c;
		}
		v->ncodes = n;
	}
	return v;
}

/* Chain a compiled value into a slot's alternatives, by position. */
static void
x_chain(XValue **head, XValue *v)
{
	while (*head != NULL && (*head)->position <= v->position)
		head = &(*head)->next;
	v->next = *head;
	*head = v;
}

/* Hash and match of the event hash: provider and event type */
static uint32
x_event_hash(const void *key, Size keysize)
{
	const XEventKey *k = key;

	return hash_combine(hash_bytes((const unsigned char *) k->event_type, strlen(k->event_type)),
						(uint32) k->provider);
}

/* 0 when two keys of the event hash are the same provider and event type */
static int
x_event_match(const void *a, const void *b, Size keysize)
{
	const XEventKey *x = a;
	const XEventKey *y = b;

	if (x->provider != y->provider)
		return 1;
	return strcmp(x->event_type, y->event_type);
}

/* The value rules of one level (event type or *, entity or *), by slot */
typedef struct XLevel
{
	ObProvider	provider;
	const char *event_type;
	const char *entity;
	XValue	   *slots[X_NSLOTS];
} XLevel;

/* The level of (provider, event, entity), created on demand. */
static XLevel *
x_level(List **levels, ObProvider provider, const char *event_type, const char *entity, bool create)
{
	ListCell   *lc;
	XLevel	   *l;

	foreach(lc, *levels)
	{
		l = lfirst(lc);
		if (l->provider == provider && strcmp(l->event_type, event_type) == 0 &&
			strcmp(l->entity, entity) == 0)
			return l;
	}
	if (!create)
		return NULL;
	l = palloc0(sizeof(XLevel));
	l->provider = provider;
	l->event_type = event_type;
	l->entity = entity;
	*levels = lappend(*levels, l);
	return l;
}

/*
 * The alternatives of a slot for an effect: those of the most specific
 * level that has any — (event, entity), (event, *), (*, entity), (*, *).
 */
static XValue *
x_resolve(List *levels, ObProvider provider, const char *event_type, const char *entity, int slot)
{
	const char *events[2] = {event_type, "*"};
	const char *entities[2] = {entity, "*"};

	for (int e = 0; e < 2; e++)
		for (int n = 0; n < 2; n++)
		{
			XLevel	   *l = x_level(&levels, provider, events[e], entities[n], false);

			if (l != NULL && l->slots[slot] != NULL)
				return l->slots[slot];
		}
	return NULL;
}

/* qsort comparator of an effect's fields by the position of their first row */
static int
x_field_cmp(const void *a, const void *b)
{
	const XValue *x = *(XValue *const *) a;
	const XValue *y = *(XValue *const *) b;

	if (x->position != y->position)
		return x->position < y->position ? -1 : 1;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/*
 * Mix rows of a rule table into the fingerprints of c: a row whose first
 * column names a provider into that provider's, any other into every
 * provider's.  Rows are added, not chained, so that their order does not
 * matter.
 */
static void
x_fingerprint_rows(XCache *c, HeapTuple *rows, int nrows, TupleDesc desc, bool by_provider,
				   uint64 table)
{
	for (int i = 0; i < nrows; i++)
	{
		uint64		h = onboarding_rule_row_hash(rows[i], desc, by_provider ? 2 : 1, table);
		ObProvider	p = OB_PROVIDER_NONE;

		/* (the provider by name: its OID is not the same in another database) */
		if (by_provider)
		{
			bool		isnull;
			Datum		v = heap_getattr(rows[i], 1, desc, &isnull);

			if (!isnull)
				p = onboarding_provider_from_oid(DatumGetObjectId(v));
			if (p != OB_PROVIDER_NONE)
			{
				const char *name = onboarding_provider_name(p);

				h = hash_bytes_extended((const unsigned char *) name, strlen(name), h);
			}
		}

		for (int k = 0; k < c->nproviders; k++)
			if (p == OB_PROVIDER_NONE || p == k)
				c->fingerprint[k] += h;
	}
}

/*
 * Read the rule tables (ruleread.c) and compile them into cache c.  With
 * shipped (the text of the file of shipped providers), only the providers,
 * from it: a 0.1.0 schema has no rule tables (see x_cache).
 */
static void
x_load(XCache *c, const char *shipped)
{
	static const char *const provider_cols[] = {"provider", "title", "marker", "marker_object",
	"event_path", "time_paths", "fold_status"};
	static const char *const code_cols[] = {"code_table", "code", "value"};
	static const char *const value_cols[] = {"provider", "event_type", "entity", "field", "position",
	"paths", "transform", "arg", "if_absent"};
	static const char *const event_cols[] = {"provider", "event_type", "match", "rule_event",
	"requires", "needs_status"};
	static const char *const effect_cols[] = {"provider", "event_type", "entity", "consequence",
	"for_each", "for_each_else"};
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "onboarding rule rows",
												  ALLOCSET_DEFAULT_SIZES);
	ObSpiFrame	spi;
	HeapTuple  *rows;
	int			nrows;
	HASHCTL		ctl;
	List	   *codes = NIL;
	List	   *levels = NIL;
	List	   *events = NIL;
	HeapTuple	tup;
	TupleDesc	desc;
	ListCell   *lc;

	compiling = c;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(XEventKey);
	ctl.entrysize = sizeof(XEventEntry);
	ctl.hash = x_event_hash;
	ctl.match = x_event_match;
	ctl.hcxt = c->context;
	c->events = hash_create("onboarding events", 64, &ctl,
							HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);

	/* the providers: the table, or (a 0.1.0 schema) the file of shipped ones */
	MemoryContextSwitchTo(scratch);
	if (shipped == NULL)
		nrows = onboarding_rule_rows("provider_rule", provider_cols, lengthof(provider_cols),
									 (const char *[]) {"position"}, 1, &desc, &rows);
	else
	{
		Oid			argtype = JSONBOID;
		Datum		arg = DirectFunctionCall1(jsonb_in, CStringGetDatum(shipped));

		onboarding_spi_connect(&spi);

		if (SPI_execute_with_args("SELECT provider, title, marker, marker_object, event_path,"
								  "       time_paths, fold_status"
								  "  FROM pg_catalog.jsonb_to_recordset($1)"
								  "    AS t (provider text, title text, position integer, marker text,"
								  "          marker_object text, event_path text, time_paths text[],"
								  "          fold_status boolean)"
								  " ORDER BY position", 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the shipped providers");
		desc = SPI_tuptable->tupdesc;
		rows = SPI_tuptable->vals;
		nrows = (int) SPI_processed;
	}
	MemoryContextSwitchTo(c->context);
	if (shipped == NULL)		/* (a 0.1.0 schema keeps no extraction) */
		x_fingerprint_rows(c, rows, nrows, desc, true, XT_PROVIDER_RULE);
	for (int i = 0; i < nrows; i++)
	{
		XProvider  *p = palloc0(sizeof(XProvider));
		char	  **times;

		tup = rows[i];
		p->provider = onboarding_provider_from_name(x_col(tup, desc, 1));
		if (p->provider == OB_PROVIDER_NONE)
			continue;			/* the column's type makes this unreachable */
		p->title = x_col(tup, desc, 2);
		x_path_init(&p->marker, x_col(tup, desc, 3));
		p->marker_object = x_path_new(x_col(tup, desc, 4));
		x_path_init(&p->event_path, x_col(tup, desc, 5));
		p->ntimes = x_text_array(tup, desc, 6, &times);
		p->times = palloc0(sizeof(XPath) * Max(p->ntimes, 1));
		for (int t = 0; t < p->ntimes; t++)
			x_path_init(&p->times[t], times[t]);
		p->fold_status = x_bool(tup, desc, 7);
		c->by_provider[p->provider] = p;
		c->ordered = lappend(c->ordered, p);
	}
	if (shipped != NULL)
	{
		onboarding_spi_finish(&spi);
		MemoryContextSwitchTo(c->context);
		MemoryContextDelete(scratch);
		compiling = NULL;
		return;
	}

	MemoryContextSwitchTo(scratch);
	nrows = onboarding_rule_rows("code_map", code_cols, lengthof(code_cols),
								 code_cols, 2, &desc, &rows);
	MemoryContextSwitchTo(c->context);
	x_fingerprint_rows(c, rows, nrows, desc, false, XT_CODE_MAP);
	for (int i = 0; i < nrows; i++)
	{
		tup = rows[i];
		codes = lappend(codes, x_col(tup, desc, 1));
		codes = lappend(codes, x_col(tup, desc, 2));
		codes = lappend(codes, x_col(tup, desc, 3));
	}

	MemoryContextSwitchTo(scratch);
	nrows = onboarding_rule_rows("value_rule", value_cols, lengthof(value_cols),
								 (const char *[]) {"provider", "event_type", "entity", "position", "field"}, 5,
								 &desc, &rows);
	MemoryContextSwitchTo(c->context);
	x_fingerprint_rows(c, rows, nrows, desc, true, XT_VALUE_RULE);
	for (int i = 0; i < nrows; i++)
	{
		ObProvider	provider;
		XValue	   *v;
		XLevel	   *l;

		tup = rows[i];
		provider = onboarding_provider_from_name(x_col(tup, desc, 1));
		v = x_value_compile(tup, desc, codes);
		if (provider == OB_PROVIDER_NONE || v->slot < 0)
			continue;			/* the columns' CHECKs make this unreachable */
		l = x_level(&levels, provider, x_col(tup, desc, 2), x_col(tup, desc, 3), true);
		x_chain(&l->slots[v->slot], v);
	}

	MemoryContextSwitchTo(scratch);
	nrows = onboarding_rule_rows("event_rule", event_cols, lengthof(event_cols),
								 (const char *[]) {"provider", "position", "event_type"}, 3,
								 &desc, &rows);
	MemoryContextSwitchTo(c->context);
	x_fingerprint_rows(c, rows, nrows, desc, true, XT_EVENT_RULE);
	for (int i = 0; i < nrows; i++)
	{
		XEvent	   *e = palloc0(sizeof(XEvent));
		XProvider  *p;

		tup = rows[i];
		e->provider = onboarding_provider_from_name(x_col(tup, desc, 1));
		if (e->provider == OB_PROVIDER_NONE || (p = c->by_provider[e->provider]) == NULL)
			continue;			/* an event of a provider without a provider_rule */
		e->event_type = x_col(tup, desc, 2);
		e->contains = strcmp(x_col(tup, desc, 3), "contains") == 0;
		e->rule_event = x_col(tup, desc, 4);
		if (e->rule_event == NULL)
			e->rule_event = e->event_type;	/* the rule of its own name */
		e->requires = x_path_new(x_col(tup, desc, 5));
		e->needs_status = x_bool(tup, desc, 6);
		events = lappend(events, e);
		if (e->contains)
			p->contains = lappend(p->contains, e);
		else
		{
			XEventKey	key = {e->provider, e->event_type};
			XEventEntry *entry = hash_search(c->events, &key, HASH_ENTER, NULL);

			entry->event = e;
		}
	}

	MemoryContextSwitchTo(scratch);
	nrows = onboarding_rule_rows("effect_rule", effect_cols, lengthof(effect_cols),
								 (const char *[]) {"provider", "event_type", "consequence", "position", "entity"}, 5,
								 &desc, &rows);
	MemoryContextSwitchTo(c->context);
	x_fingerprint_rows(c, rows, nrows, desc, true, XT_EFFECT_RULE);
	for (int i = 0; i < nrows; i++)
	{
		XEffect    *x = palloc0(sizeof(XEffect));
		ObProvider	provider;
		const char *event_type;
		XEvent	   *e = NULL;

		tup = rows[i];
		provider = onboarding_provider_from_name(x_col(tup, desc, 1));
		event_type = x_col(tup, desc, 2);
		foreach(lc, events)
		{
			XEvent	   *candidate = lfirst(lc);

			if (candidate->provider == provider && strcmp(candidate->event_type, event_type) == 0)
				e = candidate;
		}
		if (e == NULL)
			continue;			/* its provider has no provider_rule */
		x->entity = onboarding_entity_from_name(x_col(tup, desc, 3));
		x->consequence = x_bool(tup, desc, 4);
		x->for_each = x_path_new(x_col(tup, desc, 5));
		x->for_each_else = x_path_new(x_col(tup, desc, 6));
		e->effects = lappend(e->effects, x);
	}
	MemoryContextDelete(scratch);
	compiling = NULL;

	/* each provider's and event's values, from the most specific level */
	foreach(lc, c->ordered)
	{
		XProvider  *p = lfirst(lc);

		p->subject = x_resolve(levels, p->provider, "*", "*", X_SLOT_SUBJECT);
		p->status = x_resolve(levels, p->provider, "*", "*", X_SLOT_STATUS);
	}
	foreach(lc, events)
	{
		XEvent	   *e = lfirst(lc);
		XLevel	   *own = x_level(&levels, e->provider, e->event_type, "*", false);
		ListCell   *lx;

		e->subject = own ? own->slots[X_SLOT_SUBJECT] : NULL;
		e->status = own ? own->slots[X_SLOT_STATUS] : NULL;
		foreach(lx, e->effects)
		{
			XEffect    *x = lfirst(lx);
			const char *entity = onboarding_entity_names[x->entity];

			x->key = x_resolve(levels, e->provider, e->event_type, entity, X_SLOT_KEY);
			x->fields = palloc(sizeof(XValue *) * OB_NFIELDS);
			for (int f = 0; f < OB_NFIELDS; f++)
			{
				XValue	   *v = x_resolve(levels, e->provider, e->event_type, entity, f);

				if (v != NULL)
					x->fields[x->nfields++] = v;
			}
			qsort(x->fields, x->nfields, sizeof(XValue *), x_field_cmp);
		}
	}
}

/* Relcache callback: one of the rule tables changed (or every relation). */
static void
x_invalidate(Datum arg, Oid relid)
{
	for (int t = 0; t < XT_NTABLES; t++)
		if (relid == InvalidOid || relid == table_oids[t])
		{
			cache_valid = false;
			cache_generation++;
			return;
		}
}

/* The text of the file of shipped providers, or NULL when it is missing. */
static char *
x_read_shipped(void)
{
	char		share[MAXPGPATH];
	char		path[MAXPGPATH];
	FILE	   *file;
	StringInfoData buf;
	char		chunk[4096];
	size_t		n;

	get_share_path(my_exec_path, share);
	snprintf(path, sizeof(path), "%s/extension/onboarding_providers.json", share);
	file = AllocateFile(path, "r");
	if (file == NULL)
		return NULL;
	initStringInfo(&buf);
	while ((n = fread(chunk, 1, sizeof(chunk), file)) > 0)
		appendBinaryStringInfo(&buf, chunk, n);
	FreeFile(file);
	return buf.data;
}

/* The current compiled rules, compiled again when a rule table changed. */
static XCache *
x_cache(void)
{
	XCache	   *fresh;
	MemoryContext cxt;
	MemoryContext old;
	uint64		generation;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(x_invalidate, (Datum) 0);
		callback_registered = true;
	}
	if (cache_valid && cache != NULL && cache->providers_gen == onboarding_providers_generation())
		return cache;
	/* a 0.1.0 schema: the same cache until the update creates the tables */
	if (cache != NULL && cache->missing && cache->providers_gen == onboarding_providers_generation() &&
		!OidIsValid(get_relname_relid(rule_tables[XT_PROVIDER_RULE], onboarding_schema_oid())))
		return cache;

	generation = cache_generation;
	/* a child of the caller's context until complete: a failure leaves nothing */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "onboarding extraction rules",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	fresh = palloc0(sizeof(XCache));
	fresh->context = cxt;
	fresh->providers_gen = onboarding_providers_generation();
	fresh->nproviders = onboarding_provider_count();
	fresh->by_provider = palloc0(sizeof(XProvider *) * Max(fresh->nproviders, 1));
	fresh->fingerprint = palloc0(sizeof(uint64) * Max(fresh->nproviders, 1));
	for (int t = 0; t < XT_NTABLES; t++)
	{
		table_oids[t] = get_relname_relid(rule_tables[t], onboarding_schema_oid());
		fresh->missing |= !OidIsValid(table_oids[t]);
	}
	/*
	 * A 0.1.0 schema (the library updated, not yet the extension) has no
	 * rule tables.  Its deliveries are still stored as the provider's, so
	 * the providers are read from the file of the shipped ones (generated
	 * from this version's rows, and checked against them by the tests);
	 * they are derived by the update, whose rebuild() reads them again.
	 */
	PG_TRY();
	{
		if (!fresh->missing)
			x_load(fresh, NULL);
		else
		{
			char	   *shipped = x_read_shipped();

			if (shipped != NULL)
				x_load(fresh, shipped);
		}
	}
	PG_FINALLY();
	{
		compiling = NULL;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);

	MemoryContextSetParent(cxt, CacheMemoryContext);
	if (cache != NULL)
		onboarding_cache_retire(cache->context);
	cache = fresh;
	/*
	 * valid unless a rule table changed while it was read; a 0.1.0 schema
	 * is looked at again each time (the update creates the tables)
	 */
	cache_valid = (generation == cache_generation) && !fresh->missing;
	return cache;
}

/*
 * The fingerprint of the rules that read provider's bodies (its rows of
 * provider_rule, event_rule, effect_rule and value_rule, and code_map):
 * equal fingerprints, equal extractions of a body.  0 when the rule tables
 * do not exist (a 0.1.0 schema), which no kept extraction has.
 */
uint64
onboarding_extract_fingerprint(ObProvider provider)
{
	XCache	   *c = x_cache();

	if (c->missing || provider < 0 || provider >= c->nproviders)
		return 0;
	return c->fingerprint[provider] | 1;
}

/* ---------------------------------------------------------------------
 * Reading a body
 * ---------------------------------------------------------------------
 */

/* What a delivery's reading has at hand */
typedef struct XRead
{
	XCache	   *c;
	ObDelivery *d;
	XProvider  *p;
	JsonbContainer *root;
	JsonbContainer *element;	/* of a for_each, or NULL */
	JsonbValue **memo;			/* by node: what the root has there */
	bool	   *looked;			/* by node: memo is set */
} XRead;

/*
 * The value at a node of the tree of keys, or NULL when a step is missing
 * or not an object.  Nodes under the root are looked up once per delivery;
 * those under the element of a for_each, once per element read.
 */
static JsonbValue *
x_node(XRead *r, int id)
{
	const XNode *n = &r->c->nodes[id];
	JsonbContainer *in;
	JsonbValue *v;

	if (!n->element && r->looked[id])
		return r->memo[id];
	if (n->parent < 0)
		in = n->element ? r->element : r->root;
	else
	{
		JsonbValue *up = x_node(r, n->parent);

		in = (up != NULL && up->type == jbvBinary) ? up->val.binary.data : NULL;
	}
	v = in != NULL ? onboarding_json_get(in, n->key) : NULL;
	if (!n->element)
	{
		r->memo[id] = v;
		r->looked[id] = true;
	}
	return v;
}

/* The value at a path, or NULL when a step is missing or not an object. */
static JsonbValue *
x_get(XRead *r, const XPath *path)
{
	JsonbContainer *c = path->element ? r->element : r->root;
	JsonbValue *v = NULL;

	if (path->node >= 0)
		return x_node(r, path->node);

	for (int i = 0; i < path->depth; i++)
	{
		if (c == NULL)
			return NULL;
		v = onboarding_json_get(c, path->keys[i]);
		if (v == NULL)
			return NULL;
		if (i < path->depth - 1)
			c = (v->type == jbvBinary) ? v->val.binary.data : NULL;
	}
	return v;
}

/* Is v an object (a container that is not an array)? */
static bool
x_is_object(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

/* A string or number at path as text; NULL when absent, another type or "". */
static char *
x_text(XRead *r, const XPath *path)
{
	JsonbValue *v = x_get(r, path);
	char	   *s;

	if (v == NULL || v->type == jbvBool)
		return NULL;
	s = onboarding_json_scalar_text(v);
	if (s != NULL && s[0] == '\0')
		return NULL;
	return s;
}

/*
 * The first of paths with a text (see x_text), else dflt (a copy), else
 * NULL; *what names where it was found, for notes (the first path when the
 * default was taken, "value" without paths).
 */
static char *
x_first_text(XRead *r, const XPath *paths, int npaths, const char *dflt, const char **what)
{
	for (int i = 0; i < npaths; i++)
	{
		char	   *s = x_text(r, &paths[i]);

		if (s != NULL)
		{
			*what = paths[i].text;
			return s;
		}
	}
	*what = npaths > 0 ? paths[0].text : "value";
	return dflt != NULL ? pstrdup(dflt) : NULL;
}

/*
 * explain(): record that what (a value of the delivery) came from rule
 * through path, or, with rule NULL, that no rule gave it; unresolved holds
 * the paths tried in vain on the way (see ObTrace).  Nothing unless the
 * delivery is traced.
 */
static void
x_trace(XRead *r, const char *what, const char *rule, const char *path, const char *value,
		List *unresolved)
{
	ObTrace    *t;

	if (!r->d->trace_on)
		return;
	t = palloc0(sizeof(ObTrace));
	t->what = what;
	t->rule = rule;
	t->path = path;
	t->value = value != NULL ? pstrdup(value) : NULL;
	t->unresolved = unresolved;
	r->d->trace = lappend(r->d->trace, t);
}

/* explain(): a path added to unresolved. */
static List *
x_trace_missed(XRead *r, List *unresolved, const char *path)
{
	return r->d->trace_on ? lappend(unresolved, (void *) path) : unresolved;
}

/* explain(): the paths of v added to unresolved (a template's, its parts'). */
static List *
x_trace_miss(XRead *r, List *unresolved, const XValue *v)
{
	if (!r->d->trace_on)
		return unresolved;
	for (int i = 0; i < v->npaths; i++)
		unresolved = x_trace_missed(r, unresolved, v->paths[i].text);
	for (int p = 0; p < v->nparts; p++)
		for (int i = 0; i < v->parts[p].npaths; i++)
			unresolved = x_trace_missed(r, unresolved, v->parts[p].paths[i].text);
	return unresolved;
}

/*
 * explain(): where alternative v found its value: the path, "if_absent"
 * when its default was taken, the template, or "constant".
 */
static const char *
x_trace_source(XRead *r, const XValue *v)
{
	if (!r->d->trace_on)
		return NULL;			/* (called for its argument: keep it off the live path) */
	if (v->transform == X_CONST)
		return "constant";
	if (v->transform == X_TEMPLATE)
		return v->arg;
	for (int i = 0; i < v->npaths; i++)
	{
		JsonbValue *j = x_get(r, &v->paths[i]);

		if (j != NULL && j->type != jbvNull && j->type != jbvBool &&
			!(j->type == jbvString && j->val.string.len == 0))
			return v->paths[i].text;
	}
	return v->if_absent != NULL ? "if_absent" : NULL;
}

/* explain(): drop what was recorded of what (the event's own rule reads it again). */
static void
x_trace_forget(XRead *r, const char *what)
{
	ListCell   *lc;

	if (!r->d->trace_on)
		return;
	foreach(lc, r->d->trace)
	{
		if (strcmp(((ObTrace *) lfirst(lc))->what, what) == 0)
			r->d->trace = foreach_delete_current(r->d->trace, lc);
	}
}

/* The key form of a taxpayer number: canonical when valid, else unmasked. */
static char *
x_taxid_key(const char *raw)
{
	int64		value;

	if (onboarding_taxid_parse(raw, strlen(raw), &value) == NULL)
	{
		char	   *buf = palloc(OB_TAXID_BUFLEN);

		onboarding_taxid_to_cstring(value, buf);
		return buf;
	}
	return onboarding_taxid_strip(raw, strlen(raw));
}

/* s upper-cased, ASCII only (no locale), in place. */
static char *
x_upper(char *s)
{
	for (char *c = s; *c; c++)
		*c = pg_ascii_toupper((unsigned char) *c);
	return s;
}

/* A text as a key transform makes it: upper-cased, or a taxpayer's key. */
static char *
x_keyed(char *s, XTransform transform)
{
	if (s == NULL)
		return NULL;
	if (transform == X_UPPER)
		return x_upper(s);
	if (transform == X_TAXID_KEY)
		return x_taxid_key(s);
	return s;
}

/* A template filled in; NULL when a placeholder has no value. */
static char *
x_template(XRead *r, const XValue *v)
{
	StringInfoData out;

	initStringInfo(&out);
	for (int i = 0; i < v->nparts; i++)
	{
		const XPart *part = &v->parts[i];
		const char *what;
		char	   *s;

		if (part->literal != NULL)
		{
			appendStringInfoString(&out, part->literal);
			continue;
		}
		s = x_keyed(x_first_text(r, part->paths, part->npaths, part->dflt, &what), part->transform);
		if (s == NULL)
			return NULL;
		appendStringInfoString(&out, s);
	}
	return out.data;
}

/*
 * The status: a string or a number (as decimal text) at one of the paths
 * of the alternatives.  Another type is noted, and the next path tried.
 */
static char *
x_status(XRead *r, const XValue *alternatives)
{
	List	   *missed = NIL;

	for (const XValue *v = alternatives; v != NULL; v = v->next)
		for (int i = 0; i < v->npaths; i++)
		{
			JsonbValue *j = x_get(r, &v->paths[i]);
			char	   *s;

			if (j == NULL || j->type == jbvNull)
			{
				missed = x_trace_missed(r, missed, v->paths[i].text);
				continue;
			}
			if (j->type != jbvString && j->type != jbvNumeric)
			{
				onboarding_note(r->d, "%s is %s", v->paths[i].text, onboarding_json_type_name(j));
				missed = x_trace_missed(r, missed, v->paths[i].text);
				continue;
			}
			s = onboarding_json_scalar_text(j);
			x_trace(r, "status", v->rule, v->paths[i].text, s, missed);
			return s;
		}
	if (alternatives != NULL)
		x_trace(r, "status", NULL, NULL, NULL, missed);
	return NULL;
}

/*
 * Set a field of effect e from a value read as text: the column's value,
 * or a note when the text is not one.
 */
static void
x_set_text(XRead *r, ObEffect *e, int slot, const char *what, const char *s)
{
	if (!onboarding_field_from_text((ObField) slot, s, &e->values[slot]))
	{
		onboarding_note(r->d, "%s \"%s\" is not a value of %s; ignored", what,
						onboarding_clip(s, 200), onboarding_field_names[slot]);
		return;
	}
	e->carried[slot] = OB_CARRIED;
}

/*
 * Read one alternative of a text-valued slot (subject, key): the text, or
 * NULL.  No notes: a key is what it is.
 */
static char *
x_key(XRead *r, const XValue *alternatives, const char *label)
{
	List	   *missed = NIL;

	for (const XValue *v = alternatives; v != NULL; v = v->next)
	{
		const char *what;
		char	   *s;

		if (v->transform == X_TEMPLATE)
			s = x_template(r, v);
		else if (v->transform == X_CONST)
			s = pstrdup(v->arg);
		else
			s = x_keyed(x_first_text(r, v->paths, v->npaths, v->if_absent, &what), v->transform);
		if (s != NULL)
		{
			x_trace(r, label, v->rule, x_trace_source(r, v), s, missed);
			return s;
		}
		missed = x_trace_miss(r, missed, v);
	}
	if (alternatives != NULL)
		x_trace(r, label, NULL, NULL, NULL, missed);
	return NULL;
}

/* Set a field of effect e to a value of its column. */
static void
x_set(ObEffect *e, int slot, Datum value)
{
	e->values[slot] = value;
	e->carried[slot] = OB_CARRIED;
}

/* jsonb: the first of the paths holding an array or an object; false if none. */
static bool
x_field_jsonb(XRead *r, ObEffect *e, const XValue *v)
{
	for (int i = 0; i < v->npaths; i++)
	{
		JsonbValue *j = x_get(r, &v->paths[i]);

		if (j == NULL || j->type != jbvBinary)
			continue;
		if (v->slot == OB_F_ACCOUNTS_KEY)
			x_set(e, v->slot, JsonbPGetDatum(JsonbValueToJsonb(j)));
		else
			x_set_text(r, e, v->slot, v->paths[i].text,
					   JsonbToCString(NULL, j->val.binary.data, j->val.binary.len));
		return true;
	}
	return false;
}

/*
 * time: the first of the paths holding a provider time; the .NET sentinel
 * and a string that is not a time (noted) are absent.  False if none.
 */
static bool
x_field_time(XRead *r, ObEffect *e, const XValue *v)
{
	for (int i = 0; i < v->npaths; i++)
	{
		JsonbValue *j = x_get(r, &v->paths[i]);
		TimestampTz ts;
		char	   *s;

		if (j == NULL || j->type != jbvString || j->val.string.len == 0)
			continue;
		s = pnstrdup(j->val.string.val, j->val.string.len);
		switch (onboarding_parse_time(s, onboarding_timezone(), &ts))
		{
			case OB_TIME_OK:
				if (v->slot == OB_F_EXPIRES_AT)
					x_set(e, v->slot, TimestampTzGetDatum(ts));
				else
					x_set_text(r, e, v->slot, v->paths[i].text, onboarding_time_text(ts));
				return true;
			case OB_TIME_SENTINEL:
				break;
			case OB_TIME_BAD:
				onboarding_note(r->d, "%s \"%s\" is not a time; ignored", v->paths[i].text,
								onboarding_clip(s, 200));
				break;
		}
	}
	return false;
}

/* taxid: tax_id_raw as sent, tax_id when it is a valid CPF or CNPJ (else a note). */
static void
x_field_taxid(XRead *r, ObEffect *e, const char *s)
{
	int64		value;
	const char *problem = onboarding_taxid_parse(s, strlen(s), &value);

	x_set(e, OB_F_TAX_ID_RAW, CStringGetTextDatum(s));
	if (problem == NULL)
		x_set(e, OB_F_TAX_ID, Int64GetDatum(value));
	else
		onboarding_note(r->d, "tax id \"%s\" kept raw: %s", s, problem);
}

/*
 * code: the value of code s in the code table (ASCII case ignored); an
 * unknown code is noted and takes the value of code "*", if any.
 */
static void
x_field_code(XRead *r, ObEffect *e, const XValue *v, const char *what, const char *s)
{
	const XCode *hit = NULL;

	for (int k = 0; k < v->ncodes && hit == NULL; k++)
		if (pg_strcasecmp(v->codes[k].code, s) == 0)
			hit = &v->codes[k];
	if (hit == NULL)
	{
		hit = v->other;
		onboarding_note(r->d, "%s \"%s\" is not in onboarding.code_map (%s); %s%s",
						what, onboarding_clip(s, 200), v->arg,
						hit ? "typed as " : "ignored", hit ? hit->value : "");
		if (hit == NULL)
			return;
	}
	if (!hit->ok)
		onboarding_note(r->d, "onboarding.code_map (%s) value \"%s\" is not a value of %s; ignored",
						v->arg, hit->value, onboarding_field_names[v->slot]);
	else
		x_set(e, v->slot, hit->datum);
}

/*
 * Read one field of effect e through its alternatives; the first that
 * yields a value sets it.  Transforms note what they could not read.
 */
static void
x_field(XRead *r, ObEffect *e, const XValue *alternatives)
{
	List	   *missed = NIL;
	const char *label = NULL;

	if (r->d->trace_on && alternatives != NULL)
		label = psprintf("%s.%s", onboarding_entity_names[e->entity],
						 alternatives->slot < OB_NFIELDS ?
						 onboarding_field_names[alternatives->slot] : "?");
	for (const XValue *v = alternatives; v != NULL; v = v->next)
	{
		const char *what;
		char	   *s;
		int64		value;

		switch (v->transform)
		{
			case X_CONST:
				if (v->const_ok)
					x_set(e, v->slot, v->const_datum);
				else
					onboarding_note(r->d, "constant \"%s\" is not a value of %s; ignored",
									v->arg, onboarding_field_names[v->slot]);
				x_trace(r, label, v->rule, "constant", v->arg, missed);
				return;
			case X_TEMPLATE:
				if ((s = x_template(r, v)) == NULL)
				{
					missed = x_trace_miss(r, missed, v);
					continue;
				}
				x_set_text(r, e, v->slot, "template", s);
				x_trace(r, label, v->rule, v->arg, s, missed);
				return;
			case X_JSONB:
			case X_TIME:
				if (v->transform == X_JSONB ? x_field_jsonb(r, e, v) : x_field_time(r, e, v))
				{
					x_trace(r, label, v->rule, x_trace_source(r, v), NULL, missed);
					return;
				}
				missed = x_trace_miss(r, missed, v);
				continue;
			default:
				break;
		}

		/* the transforms of one text */
		s = x_first_text(r, v->paths, v->npaths, v->if_absent, &what);
		if (s == NULL)
		{
			missed = x_trace_miss(r, missed, v);
			continue;
		}
		x_trace(r, label, v->rule, x_trace_source(r, v), s, missed);
		switch (v->transform)
		{
			case X_TAXID:
				x_field_taxid(r, e, s);
				break;
			case X_TAXID_KIND:
				if (onboarding_taxid_parse(s, strlen(s), &value) == NULL)
					x_set_text(r, e, v->slot, what, value < INT64CONST(1000000000) ? "PF" : "PJ");
				break;
			case X_TAXID_KEY:
			case X_UPPER:
				x_set_text(r, e, v->slot, what, x_keyed(s, v->transform));
				break;
			case X_CODE:
				x_field_code(r, e, v, what, s);
				break;
			default:
				x_set_text(r, e, v->slot, what, s);
				break;
		}
		return;
	}
	if (alternatives != NULL)
		x_trace(r, label, NULL, NULL, NULL, missed);
}

/* The event time: the first of the provider's time paths that is present. */
static void
x_event_time(XRead *r)
{
	List	   *missed = NIL;
	const char *rule = NULL;

	if (r->d->trace_on)
		rule = psprintf("provider_rule (%s).time_paths", onboarding_provider_name(r->d->provider));
	for (int i = 0; i < r->p->ntimes; i++)
	{
		const XPath *path = &r->p->times[i];
		JsonbValue *v = x_get(r, path);
		char	   *s;

		if (v == NULL)
		{
			missed = x_trace_missed(r, missed, path->text);
			continue;
		}
		if (v->type == jbvNull)
		{
			x_trace(r, "event time", rule, path->text, NULL, missed);
			return;
		}
		if (v->type != jbvString)
		{
			onboarding_note(r->d, "%s is %s, not a time; treated as absent", path->text,
							onboarding_json_type_name(v));
			x_trace(r, "event time", rule, path->text, NULL, missed);
			return;
		}
		s = pnstrdup(v->val.string.val, v->val.string.len);
		x_trace(r, "event time", rule, path->text, s, missed);
		switch (onboarding_parse_time(s, onboarding_timezone(), &r->d->event_at))
		{
			case OB_TIME_OK:
				r->d->has_event_at = true;
				break;
			case OB_TIME_SENTINEL:
				break;
			case OB_TIME_BAD:
				onboarding_note(r->d, "%s \"%s\" is not a time; treated as absent", path->text,
								onboarding_clip(s, 200));
				break;
		}
		return;
	}
	if (r->p->ntimes > 0)
		x_trace(r, "event time", NULL, NULL, NULL, missed);
}

/*
 * What a slot's alternatives read, for "without ...": the first path of
 * each (the others are other spellings of it); a template's placeholders.
 */
static const char *
x_describe(const XValue *alternatives)
{
	StringInfoData out;

	initStringInfo(&out);
	if (alternatives == NULL)
		return "a value_rule row to read it by";
	for (const XValue *v = alternatives; v != NULL; v = v->next)
	{
		if (v->transform == X_TEMPLATE)
		{
			bool		first = true;

			appendStringInfoString(&out, out.len > 0 ? ", or " : "");
			for (int i = 0; i < v->nparts; i++)
				if (v->parts[i].literal == NULL && v->parts[i].dflt == NULL)
				{
					appendStringInfo(&out, "%s%s", first ? "" : " and ", v->parts[i].paths[0].text);
					first = false;
				}
			appendStringInfoString(&out, " to key it by");
		}
		else if (v->npaths > 0)
			appendStringInfo(&out, "%s%s", out.len > 0 ? " or " : "", v->paths[0].text);
	}
	return out.data;
}

/* Is the body the provider's: a string at its marker (and an object at marker_object)? */
static bool
x_recognises(XRead *r, const XProvider *p)
{
	JsonbValue *v = x_get(r, &p->marker);

	if (v == NULL || v->type != jbvString)
		return false;
	return p->marker_object == NULL || x_is_object(x_get(r, p->marker_object));
}

/* Find the provider of a body that came without one; false when none. */
static bool
x_detect_provider(XCache *c, XRead *r)
{
	StringInfoData why;
	ListCell   *lc;
	int			n = list_length(c->ordered);
	int			i = 0;

	foreach(lc, c->ordered)
	{
		XProvider  *p = lfirst(lc);

		if (x_recognises(r, p))
		{
			r->d->provider = p->provider;
			if (r->d->trace_on)
			{
				const char *name = onboarding_provider_name(p->provider);

				x_trace(r, "provider", psprintf("provider_rule (%s).marker", name),
						p->marker.text, name, NIL);
			}
			return true;
		}
	}
	if (n == 0 && c->missing)
		return onboarding_decide(r->d, OB_UNRECOGNIZED,
								 "no provider: the rule tables of extraction do not exist yet "
								 "(run ALTER EXTENSION onboarding UPDATE), nor the file of shipped providers");
	if (n == 0)
		return onboarding_decide(r->d, OB_UNRECOGNIZED, "no provider: onboarding.provider_rule is empty");
	initStringInfo(&why);
	foreach(lc, c->ordered)
	{
		XProvider  *p = lfirst(lc);

		if (i > 0)
			appendStringInfoString(&why, n > 2 ? ", " : " ");
		if (i > 0 && i == n - 1)
			appendStringInfoString(&why, "and ");
		appendStringInfo(&why, "no string %s", p->marker.text);
		if (p->marker_object != NULL)
			appendStringInfo(&why, " with an object %s", p->marker_object->text);
		appendStringInfo(&why, " (%s)", p->title);
		i++;
	}
	return onboarding_decide(r->d, OB_UNRECOGNIZED, "no provider: the body has %s", why.data);
}

/* The event rule of the delivery's event type; sets *missing for "requires". */
static XEvent *
x_find_event(XCache *c, XRead *r, XEvent **missing)
{
	XEventKey	key = {r->p->provider, r->d->event_type};
	XEventEntry *entry = hash_search(c->events, &key, HASH_FIND, NULL);
	ListCell   *lc;

	*missing = NULL;
	if (entry != NULL)
	{
		if (entry->event->requires == NULL || x_is_object(x_get(r, entry->event->requires)))
			return entry->event;
		*missing = entry->event;
	}
	foreach(lc, r->p->contains)
	{
		XEvent	   *e = lfirst(lc);

		if (strstr(r->d->event_type, e->event_type) != NULL &&
			(e->requires == NULL || x_is_object(x_get(r, e->requires))))
			return e;
	}
	return NULL;
}

/* One effect of the event, read (with the element of a for_each). */
static void
x_effect(XRead *r, XEvent *ev, XEffect *x)
{
	ObEffect   *e = palloc0(sizeof(ObEffect));
	char	   *key = x->key ?
		x_key(r, x->key, r->d->trace_on ? psprintf("%s.key", onboarding_entity_names[x->entity]) : NULL) :
		NULL;

	e->entity = x->entity;
	e->key = key != NULL ? key : r->d->subject;
	e->rule_event = ev->rule_event;
	e->status_raw = r->d->status_raw;
	e->status_key = e->status_raw;
	if (r->p->fold_status && e->status_raw != NULL)
		e->status_key = x_upper(pstrdup(e->status_raw));
	e->primary = !x->consequence;
	for (int i = 0; i < x->nfields; i++)
		x_field(r, e, x->fields[i]);
	r->d->effects = lappend(r->d->effects, e);
}

/* The effects of a for_each: one per object element of the array. */
static void
x_effects_each(XRead *r, XEvent *ev, XEffect *x)
{
	JsonbValue *arr = x_get(r, x->for_each);

	if (arr != NULL && arr->type == jbvBinary && JsonContainerIsArray(arr->val.binary.data) &&
		!JsonContainerIsScalar(arr->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(arr->val.binary.data);
		JsonbValue	v;
		JsonbIteratorToken tok;
		int			skipped = 0;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (x_is_object(&v))
			{
				r->element = v.val.binary.data;
				x_effect(r, ev, x);
			}
			else
				skipped++;
		}
		r->element = NULL;
		if (skipped > 0)
			onboarding_note(r->d, "%d element%s of %s not an object; skipped",
							skipped, skipped == 1 ? "" : "s", x->for_each->text);
		return;
	}
	/* no array: the object holding for_each_else's text is the one element */
	if (x->for_each_else != NULL && x_text(r, x->for_each_else) != NULL)
	{
		XPath		parent = *x->for_each_else;
		JsonbValue *holder;

		parent.depth--;
		parent.node = parent.node >= 0 ? r->c->nodes[parent.node].parent : -1;
		holder = parent.depth > 0 ? x_get(r, &parent) : NULL;
		r->element = parent.depth == 0 ? r->root :
			(holder != NULL && holder->type == jbvBinary ? holder->val.binary.data : NULL);
		if (r->element != NULL)
			x_effect(r, ev, x);
		r->element = NULL;
	}
}

/*
 * Read a provider's body: the provider (unless the caller gave it), the
 * event, subject, status and time, and the effects.  Returns false, with
 * d->decided and an outcome set, when the delivery cannot go further.
 */
bool
onboarding_extract(ObDelivery *d, JsonbContainer *root)
{
	XCache	   *c = x_cache();
	XRead		r = {c, d, NULL, root, NULL, NULL, NULL};
	XEvent	   *ev;
	XEvent	   *missing;
	ListCell   *lc;

	r.memo = palloc(sizeof(JsonbValue *) * Max(c->nnodes, 1));
	r.looked = palloc0(sizeof(bool) * Max(c->nnodes, 1));
	if (d->trace != NIL)
		d->trace_on = false;	/* traced once: its first extraction */
	if (d->provider == OB_PROVIDER_NONE && !x_detect_provider(c, &r))
		return false;
	if (d->provider < 0 || d->provider >= c->nproviders || c->by_provider[d->provider] == NULL)
		return onboarding_decide(d, OB_UNRECOGNIZED, "provider %s has no row in onboarding.provider_rule",
								 onboarding_provider_name(d->provider));
	r.p = c->by_provider[d->provider];

	/* what every event of the provider has: time, and maybe subject and status */
	x_event_time(&r);
	{
		JsonbValue *v = x_get(&r, &r.p->event_path);

		if (v != NULL && v->type == jbvString)
			d->event_type = pnstrdup(v->val.string.val, v->val.string.len);
		if (d->trace_on)
			x_trace(&r, "event type", psprintf("provider_rule (%s).event_path",
											   onboarding_provider_name(d->provider)),
					r.p->event_path.text, d->event_type, NIL);
	}
	if (r.p->subject != NULL)
		d->subject = x_key(&r, r.p->subject, "subject");
	if (r.p->status != NULL)
		d->status_raw = x_status(&r, r.p->status);
	if (d->event_type == NULL)
		return onboarding_decide(d, OB_UNRECOGNIZED, "%s body without a string %s",
								 r.p->title, r.p->event_path.text);
	if (c->missing)
		return onboarding_decide(d, OB_UNRECOGNIZED,
								 "%s %s: the rule tables of extraction do not exist yet; "
								 "ALTER EXTENSION onboarding UPDATE derives it",
								 r.p->title, d->event_type);
	if (r.p->marker_object != NULL)
	{
		JsonbValue *v = x_get(&r, r.p->marker_object);

		if (!x_is_object(v))
			return onboarding_decide(d, OB_INVALID, "%s %s whose %s is %s, not an object",
									 r.p->title, d->event_type, r.p->marker_object->text,
									 onboarding_json_type_name(v));
	}

	ev = x_find_event(c, &r, &missing);
	if (ev == NULL && missing != NULL)
		return onboarding_decide(d, OB_INVALID, "%s %s without a %s object",
								 r.p->title, d->event_type, missing->requires->text);
	if (ev == NULL)
		return onboarding_decide(d, OB_UNRECOGNIZED, "%s %s \"%s\" is not an onboarding event",
								 r.p->title, r.p->event_path.text, d->event_type);

	if (d->trace_on)
		x_trace(&r, "event", psprintf("event_rule (%s, '%s')", onboarding_provider_name(d->provider),
									  ev->event_type), NULL, ev->rule_event, NIL);

	/* the event's own subject and status, where it has them */
	if (ev->subject != NULL)
	{
		x_trace_forget(&r, "subject");
		d->subject = x_key(&r, ev->subject, "subject");
	}
	if (ev->status != NULL)
	{
		x_trace_forget(&r, "status");
		d->status_raw = x_status(&r, ev->status);
	}
	if (d->subject == NULL)
		return onboarding_decide(d, OB_INVALID, "%s %s without %s", r.p->title, d->event_type,
								 x_describe(ev->subject ? ev->subject : r.p->subject));
	if (d->status_raw == NULL && ev->needs_status)
		return onboarding_decide(d, OB_INVALID, "%s %s without %s", r.p->title, d->event_type,
								 x_describe(ev->status ? ev->status : r.p->status));

	foreach(lc, ev->effects)
	{
		XEffect    *x = lfirst(lc);

		if (x->for_each == NULL)
			x_effect(&r, ev, x);
		else
		{
			x_effects_each(&r, ev, x);
			if (d->effects == NIL)
				return onboarding_decide(d, OB_INVALID, "%s %s without %s%s%s", r.p->title,
										 d->event_type, x->for_each->text,
										 x->for_each_else ? " or " : "",
										 x->for_each_else ? x->for_each_else->text : "");
		}
	}
	return true;
}

/*-------------------------------------------------------------------------
 *
 * onboarding.h
 *		Shared declarations of the onboarding extension.
 *
 * A delivery travels through one pipeline, one file per step:
 *
 *		parse.c		raw text -> jsonb (strict, then the bare-word repair)
 *		extract.c	a provider's body -> event, subject, status, time, typed
 *					fields, by the rule tables (provider_rule ... code_map)
 *		detect.c	jsonb -> an operator's body read, a provider's to extract.c
 *		extraction.c  what detection gave, kept beside the delivery so that a
 *					later fold does not read its body again
 *		rules.c		the status rules (status_map, transition, status_guard,
 *					settings), cached; a delivery's statuses classified
 *		dedupe.c	the body seen before?
 *		delivery.c	a delivery read from an inbox row, prepared (the steps
 *					above), its derived columns written back
 *		derive.c	the fold in event order: the incremental path, rows read
 *					and written, and the pipeline's way in; with fold.c (the
 *					rules of SPEC §6), lock.c (the rows locked all or none),
 *					group.c (a group folded again, from its checkpoints
 *					when archived: checkpoint.c) and window.c (a late
 *					delivery refolded from its place)
 *
 * on foundations: taxid.c (the CPF/CNPJ base type), onboarding.c (shared
 * helpers), jsonutil.c (safe jsonb access), catalog.c (names resolved
 * once, the state tables' columns), spi.c (SPI as the extension's owner),
 * timeparse.c (provider times), ruleread.c (the rule tables read without
 * SQL), bind.c (what a user added to a state table, honoured through the
 * executor's row primitives), store.c (the pipeline's own reads and writes
 * of its tables) and statement.c (the executor hooks that police the
 * statements running while it writes).
 * The entry points sit on top: inbox.c (the inbox's triggers, module
 * load), state.c (the state tables' trigger, force_status()), rebuild.c
 * (rebuild() and rebuild_concurrently()), erase.c (erase(), which folds
 * the person's groups again through rebuild.c) and explain.c.
 *
 * The sections below follow that order from the bottom up: a file calls
 * only into the sections above its own, and the entry points call into
 * none of each other but for erase.c, which calls rebuild.c's engine.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ONBOARDING_H
#define ONBOARDING_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* ---------------------------------------------------------------------
 * taxid.c — CPF and CNPJ
 *
 * A taxid is stored as an int64: a CPF as its 9 base digits (0 ..
 * 999999999), a CNPJ as 10^9 plus its 12 base characters read as a base-36
 * number.  Check digits are derived, never stored.  The order is therefore
 * every CPF before every CNPJ, each in the order of its canonical text.
 * ---------------------------------------------------------------------
 */
#define OB_TAXID_BUFLEN		15		/* 14 characters and the terminator */

/*
 * Parse a CPF or CNPJ in any usual mask.  On success store the value in
 * *result and return NULL; otherwise return a sentence (no capital, no
 * period) saying which rule failed.  Never raises.
 */
extern const char *onboarding_taxid_parse(const char *str, size_t len, int64 *result);

/* Write the bare canonical form of a taxid into buf (OB_TAXID_BUFLEN). */
extern void onboarding_taxid_to_cstring(int64 value, char *buf);

/* The text with blanks and mask characters (. / -) removed, upper-cased. */
extern char *onboarding_taxid_strip(const char *str, size_t len);

/* ---------------------------------------------------------------------
 * The vocabulary of the pipeline
 * ---------------------------------------------------------------------
 */

/*
 * A provider: the position of its label in onboarding.provider (catalog.c
 * reads the labels; none is compiled in), or OB_PROVIDER_NONE.
 */
typedef int ObProvider;

#define OB_PROVIDER_NONE	(-1)

/* onboarding.outcome, in label order */
typedef enum ObOutcome
{
	OB_APPLIED = 0,
	OB_DUPLICATE,
	OB_STALE,
	OB_ILLEGAL,
	OB_UNRECOGNIZED,
	OB_INVALID,
	OB_REFUSED,					/* a user constraint refused its change (0.3.0) */
	OB_NOUTCOMES
} ObOutcome;

/* What a status belongs to; the names are onboarding.history.entity */
typedef enum ObEntity
{
	OB_ACCOUNT = 0,
	OB_PROPOSAL,
	OB_DOCUMENT,
	OB_CLOSURE,
	OB_BACKGROUND_CHECK,
	OB_DOCUMENTSCOPY,
	OB_NENTITIES
} ObEntity;

/* Non-status fields an event may carry for its entity's row */
typedef enum ObField
{
	OB_F_ENABLED = 0,
	OB_F_TAX_ID,				/* canonical text, set only when valid */
	OB_F_TAX_ID_RAW,
	OB_F_HOLDER_NAME,
	OB_F_BANK,
	OB_F_BRANCH,
	OB_F_NUMBER,
	OB_F_DIGIT,
	OB_F_REASON,
	OB_F_CLIENT_CODE,
	OB_F_PERSON_TYPE,
	OB_F_ACCOUNT_KEY,
	OB_F_MESSAGE,
	OB_F_DOCUMENT_TYPE,
	OB_F_DOCUMENT_TYPE_RAW,
	OB_F_SIGNER,
	OB_F_FILE_NAME,
	OB_F_URL,
	OB_F_EXPIRES_AT,			/* ISO text of a timestamptz */
	OB_F_PARTNER_ID,
	OB_F_BUSINESS_UNIT_ID,
	OB_F_ACCOUNTS_KEY,			/* jsonb text */
	OB_NFIELDS
} ObField;

/* Whether an effect carries a field, and as what */
typedef enum ObCarried
{
	OB_NOT_CARRIED = 0,			/* the row keeps what it has */
	OB_CARRIED,					/* values[] holds the column's value */
	OB_CARRIED_NULL				/* an operator emptied it */
} ObCarried;

/* One status change a delivery asks for. */
typedef struct ObEffect
{
	ObEntity	entity;
	char	   *key;
	const char *rule_event;		/* event_type under which status_map lists it */
	char	   *status_raw;		/* status as sent (NULL: "*" rows only) */
	const char *status_key;		/* status_raw as status_map spells it */
	bool		primary;		/* false: a consequence, applied only if legal */
	/* filled by classification */
	const char *status;			/* mapped label, NULL when unknown */
	const char *label;			/* provider's own name, for provider_status */
	const char *const *only_from;	/* status_guard.from_status, NULL-terminated */
	/* the fields, typed as their columns: extraction reads them once */
	Datum		values[OB_NFIELDS];
	uint8		carried[OB_NFIELDS];	/* ObCarried */
	/* filled by derivation, for explain() */
	const char *from;			/* the entity's status before */
	const char *verdict;		/* create, refresh, change, stale, illegal, skipped */
} ObEffect;

/* A delivery on its way through the pipeline. */
typedef struct ObDelivery
{
	Jsonb	   *payload;		/* NULL when the body is not JSON */
	ObProvider	provider;
	bool		forced;			/* written by force_status() */
	int64		id;				/* inbox id; may be renumbered (derive.c) */
	/* detection */
	char	   *event_type;
	char	   *subject;
	char	   *status_raw;
	bool		has_event_at;
	TimestampTz event_at;
	bool		has_order_at;	/* its place in event order (derive.c): the */
	TimestampTz order_at;		/* event time, or the one it follows */
	bool		has_received_at;	/* inbox.received_at (NULL in explain()) */
	TimestampTz received_at;
	List	   *effects;		/* ObEffect *, primary ones first */
	/* result */
	bool		decided;		/* outcome is final, derivation skipped */
	ObOutcome	outcome;
	StringInfoData detail;		/* sentences joined by "; " */
	int64		duplicate_of;	/* 0 when not a duplicate */
	int64		duplicate_candidate;	/* a time-less repeat: derivation decides */
	uint64		body_hash;
	bytea	   *extraction;		/* detection's result, kept (extraction.c) */
	/* explain(): which rule gave each value, and what did not resolve */
	bool		trace_on;		/* set by explain() for its own delivery */
	List	   *trace;			/* ObTrace *, in the order they were read */
} ObDelivery;

/*
 * One value as extraction read it, for explain(): what it is ("subject",
 * "status", "event time", "account.number", ...), the rule row that gave
 * it, the path it came from (NULL when nothing resolved) and the value; the
 * paths of that rule and of the rules before it that resolved to nothing.
 */
typedef struct ObTrace
{
	const char *what;
	const char *rule;
	const char *path;
	char	   *value;
	List	   *unresolved;		/* const char * */
} ObTrace;

extern const char *const onboarding_entity_names[OB_NENTITIES];
extern const char *const onboarding_outcome_names[OB_NOUTCOMES];
extern const char *const onboarding_field_names[OB_NFIELDS];
extern ObField onboarding_field_from_name(const char *name);

/* ---------------------------------------------------------------------
 * onboarding.c
 * ---------------------------------------------------------------------
 */
#define OB_DEFAULT_TIMEZONE "America/Sao_Paulo"

extern struct pg_tz *onboarding_resolve_timezone(const char *name);
extern char *onboarding_clip(const char *s, int maxbytes);
extern void onboarding_note(ObDelivery *d, const char *fmt,...) pg_attribute_printf(2, 3);
extern bool onboarding_decide(ObDelivery *d, ObOutcome outcome, const char *fmt,...) pg_attribute_printf(3, 4);
extern ObEntity onboarding_entity_from_name(const char *name);
extern void onboarding_cache_retire(MemoryContext cxt);

/* ---------------------------------------------------------------------
 * jsonutil.c
 * ---------------------------------------------------------------------
 */
extern JsonbValue *onboarding_json_get(JsonbContainer *c, const char *key);
extern JsonbContainer *onboarding_json_object(JsonbContainer *c, const char *key);
extern JsonbContainer *onboarding_json_array(JsonbContainer *c, const char *key);
extern char *onboarding_json_scalar_text(JsonbValue *v);
extern char *onboarding_json_text(JsonbContainer *c, const char *key);
extern char *onboarding_json_string(JsonbContainer *c, const char *key);
extern const char *onboarding_json_type_name(JsonbValue *v);

/* ---------------------------------------------------------------------
 * catalog.c — names resolved once: enum labels, the inbox's columns
 * ---------------------------------------------------------------------
 */
typedef enum ObEnumType
{
	OB_ENUM_PROVIDER = 0,
	OB_ENUM_OUTCOME,
	OB_ENUM_ACCOUNT_STATUS,
	OB_ENUM_PROPOSAL_STATUS,
	OB_ENUM_CHECK_STATUS,
	OB_ENUM_DOCUMENT_STATUS,
	OB_ENUM_DOCUMENT_TYPE,
	OB_ENUM_CLOSURE_STATUS,
	OB_NENUMS
} ObEnumType;

/* Attribute numbers of onboarding.inbox, found by name. */
typedef struct ObInboxAtts
{
	AttrNumber	id;
	AttrNumber	received_at;
	AttrNumber	provider;
	AttrNumber	payload;
	AttrNumber	raw;
	AttrNumber	headers;
	AttrNumber	event_type;
	AttrNumber	subject;
	AttrNumber	status_raw;
	AttrNumber	event_at;
	AttrNumber	outcome;
	AttrNumber	detail;
	AttrNumber	body_hash;
	AttrNumber	duplicate_of;
	AttrNumber	forced_by;
	AttrNumber	extraction;		/* InvalidAttrNumber before 0.3.0 */
} ObInboxAtts;

/* OIDs the pipeline needs for every delivery */
typedef struct ObInboxOids
{
	Oid			inbox;
	Oid			group_index;	/* onboarding.inbox_group_idx (provider, subject,
								 * event_at, body_hash); InvalidOid on a 0.1.0
								 * schema */
	bool		group_by_time;	/* it has event_at (0.3.0): else (provider,
								 * subject, body_hash) */
	Oid			hash_index;		/* onboarding.inbox_body_hash_idx: a 0.1.0
								 * schema's, else InvalidOid */
	Oid			pkey_index;		/* onboarding.inbox_pkey */
	Oid			id_sequence;	/* the identity sequence of inbox.id */
	Oid			history_sequence;	/* the identity sequence of history.id */
	Oid			spread;			/* onboarding.group_partition (0.3.0), else
								 * InvalidOid */
	Oid			spread_index;	/* its index on (provider, subject) */
	Oid			owner;			/* the role derivations run as */
} ObInboxOids;

extern Oid	onboarding_schema_oid(void);
extern const ObInboxOids *onboarding_inbox_oids(void);

/* ---------------------------------------------------------------------
 * parts.c — the relations that hold the inbox's rows (its leaf partitions)
 * ---------------------------------------------------------------------
 */
typedef enum ObInboxIndex
{
	OB_INBOX_GROUP_INDEX,		/* inbox_group_idx's */
	OB_INBOX_HASH_INDEX,		/* inbox_body_hash_idx's (0.1.0) */
	OB_INBOX_PKEY,				/* inbox_pkey's */
	OB_INBOX_NINDEXES
} ObInboxIndex;

typedef struct ObInboxPartOids
{
	Oid			rel;			/* a leaf: a partition, or the inbox itself */
	Oid			index[OB_INBOX_NINDEXES];	/* its children of the inbox's indexes */
} ObInboxPartOids;

struct RelationData;
extern const ObInboxPartOids *onboarding_inbox_parts(struct RelationData *inbox, int *n);
extern bool onboarding_inbox_holds(Oid relid);
extern bool onboarding_inbox_route(struct RelationData *inbox, AttrNumber received_at,
								   TimestampTz at, Oid *leaf);
extern Oid	onboarding_inbox_default_leaf(struct RelationData *inbox);
extern Oid	onboarding_history_route(struct RelationData *history, AttrNumber inbox_id_att,
									 int64 inbox_id);
extern List *onboarding_history_leaves(struct RelationData *history);
extern void onboarding_group_keys(struct ScanKeyData *keys, AttrNumber provider_att,
								  AttrNumber subject_att, ObProvider provider,
								  const char *subject);
extern Oid	onboarding_enum_oid(ObEnumType type, const char *label);
extern char *onboarding_enum_label(Oid value);
extern int	onboarding_provider_count(void);
extern uint64 onboarding_providers_generation(void);
extern Oid	onboarding_provider_oid(ObProvider provider);
extern ObProvider onboarding_provider_from_oid(Oid label);
extern const char *onboarding_provider_name(ObProvider provider);
extern ObProvider onboarding_provider_from_name(const char *name);
extern Oid	onboarding_outcome_oid(ObOutcome outcome);
extern ObOutcome onboarding_outcome_from_oid(Oid label);
extern AttrNumber onboarding_attnum(TupleDesc desc, const char *table, const char *name);
extern void onboarding_inbox_atts(TupleDesc desc, ObInboxAtts *atts);
extern Oid	onboarding_relation_oid(const char *name);

/* ruleread.c */
extern int	onboarding_rule_rows(const char *table, const char *const *columns, int ncols,
								 const char *const *order, int norder, TupleDesc *desc,
								 HeapTuple **rows);
extern char *onboarding_rule_text(HeapTuple tup, TupleDesc desc, int col);
extern uint64 onboarding_rule_row_hash(HeapTuple tup, TupleDesc desc, int first, uint64 seed);

/* The statuses, by transition graph (the labels of their enums) */
#define OB_MAX_STATUSES	16

/* The transition graphs; the names are onboarding.transition.entity */
typedef enum ObGraph
{
	OB_GRAPH_ACCOUNT = 0,
	OB_GRAPH_PROPOSAL,
	OB_GRAPH_DOCUMENT,
	OB_GRAPH_CLOSURE,
	OB_GRAPH_CHECK,				/* background_check and documentscopy */
	OB_NGRAPHS
} ObGraph;

extern const char *const onboarding_graph_names[OB_NGRAPHS];

/*
 * The state tables: the columns the pipeline writes in each (the one
 * source of that list: derive.c folds them, store.c tells them from the
 * columns a user added, state.c guards them against direct UPDATEs).
 * Indexed like ObStoreId: account, proposal, document, closure.
 */
#define OB_NSTATE_TABLES		4
#define OB_MAX_STATE_STATUSES	3
#define OB_MAX_STATE_FIELDS		16

typedef struct ObStateTable
{
	const char *name;
	const char *keycol;
	int			nstatus;
	const char *statuscol[OB_MAX_STATE_STATUSES];
	const char *statustime[OB_MAX_STATE_STATUSES];	/* NULL: last_event_at */
	int			nfields;
	ObField		fields[OB_MAX_STATE_FIELDS];
	bool		has_flow;		/* proposal.flow: which check came first */
} ObStateTable;

extern const ObStateTable onboarding_state_tables[OB_NSTATE_TABLES];
extern bool onboarding_state_column(int table, const char *column);
extern bool onboarding_history_column(const char *column);
extern ObGraph onboarding_entity_graph(ObEntity entity);
extern const char *const *onboarding_graph_labels(ObGraph graph);
extern int	onboarding_status_index(ObGraph graph, const char *s);
extern const char *onboarding_status_label(ObGraph graph, const char *s);
extern Oid	onboarding_status_oid(ObGraph graph, const char *label);
extern const char *onboarding_status_from_oid(ObGraph graph, Oid label);

/* ---------------------------------------------------------------------
 * spi.c — SPI as the extension's owner, with plans prepared safely
 * ---------------------------------------------------------------------
 */
/* What onboarding_spi_connect() changed, for onboarding_spi_finish() to restore */
typedef struct ObSpiFrame
{
	Oid			saved_userid;
	int			saved_sec;
	int			guc_nestlevel;	/* undoes the pinned search_path */
} ObSpiFrame;

extern void onboarding_spi_connect(ObSpiFrame *frame);
extern void onboarding_spi_finish(ObSpiFrame *frame);
extern SPIPlanPtr onboarding_spi_prepare(const char *sql, int nargs, Oid *argtypes);

/* ---------------------------------------------------------------------
 * rules.c
 * ---------------------------------------------------------------------
 */
extern bool onboarding_transition_legal(ObEntity entity, ObProvider provider,
										const char *from, const char *to);
extern int	onboarding_status_rank(ObEntity entity, ObProvider provider, const char *status);
extern bool onboarding_rules_classify(ObDelivery *d);
extern bool onboarding_status_in(const char *status, const char *const *list);
extern bool onboarding_status_has_exit(ObGraph g, ObProvider provider, const char *status);
extern struct pg_tz *onboarding_timezone(void);

/* ---------------------------------------------------------------------
 * timeparse.c
 * ---------------------------------------------------------------------
 */
typedef enum ObTimeResult
{
	OB_TIME_OK,
	OB_TIME_SENTINEL,
	OB_TIME_BAD
} ObTimeResult;

struct pg_tz;
extern ObTimeResult onboarding_parse_time(const char *s, struct pg_tz *zone, TimestampTz *result);
extern char *onboarding_time_text(TimestampTz t);

/* ---------------------------------------------------------------------
 * parse.c
 * ---------------------------------------------------------------------
 */
typedef enum ObParseResult
{
	OB_PARSE_OK,
	OB_PARSE_REPAIRED,
	OB_PARSE_FAILED
} ObParseResult;

extern ObParseResult onboarding_parse_raw(text *raw, Jsonb **result, char **why);

/* ---------------------------------------------------------------------
 * extract.c — the rule tables' interpreter
 * ---------------------------------------------------------------------
 */
extern bool onboarding_extract(ObDelivery *d, JsonbContainer *root);
extern bool onboarding_field_from_text(ObField field, const char *text, Datum *value);
extern uint64 onboarding_extract_fingerprint(ObProvider provider);

/* ---------------------------------------------------------------------
 * detect.c
 * ---------------------------------------------------------------------
 */
extern bool onboarding_detect(ObDelivery *d);

/* ---------------------------------------------------------------------
 * extraction.c — what reading a body gave, kept beside the delivery
 * ---------------------------------------------------------------------
 */
extern bytea *onboarding_extraction_save(ObDelivery *d);
extern bool onboarding_extraction_load(ObDelivery *d, bytea *kept, char *event_type,
									   char *subject, char *status_raw);

/* ---------------------------------------------------------------------
 * bind.c — what a user added to a state table, honoured on the pipeline's
 * writes (through the executor's row primitives)
 * ---------------------------------------------------------------------
 */
typedef struct ObBind ObBind;

/* One delivery's writes to bound tables (on the caller's stack) */
typedef struct ObBindBracket
{
	struct ObBindBracket *outer;
	ObBind	   *written;		/* the bound tables written in it */
} ObBindBracket;

struct RelationData;
struct ResultRelInfo;
struct EState;
struct TupleTableSlot;
extern bool onboarding_bind_needed(struct RelationData *rel, int table);
extern ObBind *onboarding_bind_open(struct RelationData *rel, struct ResultRelInfo *rri,
									struct EState *estate, int table);
extern void onboarding_bind_set_root(ObBind *b, ObBind *root);
extern bool onboarding_bind_owned(ObBind *b, int attno0);
extern void onboarding_bind_defaults(ObBind *b, Datum *values, bool *nulls);
extern char *onboarding_bind_judge(ObBind *b, Datum *values, bool *nulls, ItemPointer self,
								   bool unique);
extern void onboarding_bind_insert(ObBind *b, struct TupleTableSlot *slot, CommandId cid);
extern void onboarding_bind_update(ObBind *b, ItemPointer tid, struct TupleTableSlot *slot,
								   CommandId cid);
extern void onboarding_bind_delete(ObBind *b, ItemPointer tid, CommandId cid);
extern bool onboarding_bind_is_pipeline_write(struct RelationData *rel, HeapTuple old);
extern void onboarding_bind_begin(ObBindBracket *br);
extern void onboarding_bind_end(ObBindBracket *br, struct EState *estate);
extern void onboarding_bind_abort(ObBindBracket *br);
extern void onboarding_bind_reset(void);
extern void onboarding_bind_close(ObBind *b);
extern void onboarding_bind_clear(ObBind *b);

/* ---------------------------------------------------------------------
 * store.c — the pipeline's own reads and writes of its tables
 * ---------------------------------------------------------------------
 */
typedef enum ObStoreId
{
	OB_S_ACCOUNT = 0,
	OB_S_PROPOSAL,
	OB_S_DOCUMENT,
	OB_S_CLOSURE,
	OB_S_HISTORY,
	OB_S_INBOX,					/* read only: duplicate detection's index */
	OB_NSTORES
} ObStoreId;

#define OB_NWRITTEN_STORES OB_S_INBOX	/* the ones the pipeline writes */

typedef struct ObStore ObStore;

/* Where a state row is, and whether this transaction wrote it (and when) */
typedef struct ObStoreRow
{
	ItemPointerData tid;
	bool		ours;
	CommandId	cmin;
} ObStoreRow;

/* How onboarding_store_find() treats a row someone else holds */
typedef enum ObLockMode
{
	OB_LOCK_NONE,				/* read as the active snapshot sees it (explain) */
	OB_LOCK_WAIT,				/* lock it, waiting as long as it takes */
	OB_LOCK_NOWAIT				/* lock it, or say it would block */
} ObLockMode;

typedef enum ObFound
{
	OB_ABSENT,
	OB_FOUND,
	OB_WOULD_BLOCK
} ObFound;

extern void onboarding_store_init(void);
extern ObStore *onboarding_store(ObStoreId which);
extern void onboarding_store_begin(void);
extern bool onboarding_store_holds_rows(void);
extern TupleDesc onboarding_store_desc(ObStore *s);
extern uint64 onboarding_store_serial(ObStore *s);
extern AttrNumber onboarding_store_attnum(ObStore *s, const char *name);
extern ObFound onboarding_store_find(ObStore *s, ObProvider provider, const char *key, ObLockMode mode,
									 Datum *values, bool *nulls, ObStoreRow *row);
extern bool onboarding_store_create(ObStore *s, Datum *values, bool *nulls, ObStoreRow *row);
extern void onboarding_store_update(ObStore *s, ObStoreRow *row, Datum *values, bool *nulls);
extern void onboarding_store_delete(ObStore *s, ObStoreRow *row, Datum *values);
extern void onboarding_store_flush(bool close);
extern void onboarding_store_append(ObStore *s, Datum *values, bool *nulls);
extern bool onboarding_store_window_holds(Oid relid);
extern bool onboarding_store_pending(void);
extern bool onboarding_store_plan_touches(struct PlannedStmt *stmt);
extern const char *onboarding_store_name(ObStoreId which);

/* statement.c */
extern void onboarding_statement_init(void);
extern void onboarding_statement_reset(void);
extern void onboarding_statement_adopt(void);
extern bool onboarding_statement_row_may_be_discarded(void);
extern Relation onboarding_store_index(ObStore *s, Oid indexoid);
extern TupleTableSlot *onboarding_store_slot(ObStore *s);
extern ObBind *onboarding_store_bind(ObStore *s);
extern void onboarding_store_bracket_end(ObBindBracket *br);
extern void onboarding_store_forget_bound(void);
extern void onboarding_store_clear_bound(void);
extern bool onboarding_store_is_primary_key(const char *table, const char *constraint);
extern int64 onboarding_store_sweep(ObStoreId which,
									 bool (*keep) (int table, Oid provider, const char *key,
												   int64 written_by),
									 bool dry);
/* A history row as span.c reads it */
typedef struct ObHistoryRow
{
	int64		id;
	bool		at_null;
	TimestampTz at;
	char	   *status;			/* to_status */
} ObHistoryRow;

extern List *onboarding_store_history_tail(Oid provider, const char *entity, const char *key,
										   bool bounded, TimestampTz hi, TimestampTz down_to,
										   int limit, bool *untimed, bool *complete);
extern bool onboarding_store_history_next(Oid provider, const char *entity, const char *key,
										  TimestampTz at, TimestampTz *next);
extern List *onboarding_store_history_around(Oid provider, const char *entity, const char *key,
											 bool all, TimestampTz at, bool *untimed,
											 bool *has_next, TimestampTz *next);
extern bool onboarding_store_history_before(Oid provider, const char *entity, const char *key,
											TimestampTz at, char **status);
/* Where a history row is: the relation holding it (history, or a leaf), and its tid */
typedef struct ObHistoryPlace
{
	Oid			rel;
	ItemPointerData tid;
} ObHistoryPlace;

extern bool onboarding_store_history_find(Oid provider, const char *entity, const char *key,
										  TimestampTz at, int64 inbox_id, const char *from,
										  const char *to, ObHistoryPlace *place);
extern void onboarding_store_history_delete(const ObHistoryPlace *place);
extern int	onboarding_store_history_keep(Oid provider, const char *entity, const char *key,
										  int n, Datum **values, bool **nulls);
extern void onboarding_store_rewrite(ObStore *s, int64 id, Oid part, ItemPointer tid, int n,
									 const int *cols, const Datum *values, const bool *nulls);
extern int	onboarding_store_nparts(ObStore *s);
extern Relation onboarding_store_part(ObStore *s, int i, ObInboxIndex which, Relation *index);
extern Oid	onboarding_store_part_oid(ObStore *s, int i);
extern Relation onboarding_store_relation(ObStore *s);
extern Relation onboarding_store_spread(ObStore *s, Relation *index, TupleTableSlot **slot);
extern void onboarding_store_note_group(ObProvider provider, const char *subject, TimestampTz at,
										Oid leaf);
extern const ObInboxAtts *onboarding_store_inbox_atts(ObStore *s);

/* spread.c — which partitions of the inbox hold a group's deliveries */
extern bool onboarding_spread_parts(ObStore *inbox, ObProvider provider, const char *subject,
									bool *want);

/* ---------------------------------------------------------------------
 * dedupe.c
 * ---------------------------------------------------------------------
 */
struct RelationData;
extern void onboarding_dedupe_release(void);
extern uint64 onboarding_dedupe_hash(Jsonb *payload);
extern int64 onboarding_dedupe_find(const ObInboxAtts *atts, ObDelivery *d,
									bool lock);

/* ---------------------------------------------------------------------
 * delivery.c — a delivery read from, prepared for and written to an inbox row
 * ---------------------------------------------------------------------
 */
#define OB_MAX_KEY_BYTES	1024	/* longest entity key: keys are indexed */

extern void onboarding_delivery_init(ObDelivery *d, HeapTuple tuple, TupleDesc desc,
									 const ObInboxAtts *atts);
extern bool onboarding_delivery_is_record(ObDelivery *d);
extern int64 onboarding_delivery_new_id(void);
extern bool onboarding_prepare_delivery(ObDelivery *d, text *raw);
extern bool onboarding_prepare_kept(ObDelivery *d, HeapTuple stored, TupleDesc desc,
									const ObInboxAtts *atts, bool *going);
extern void onboarding_mark_duplicate(ObDelivery *d, int64 original);
extern HeapTuple onboarding_delivery_store(HeapTuple tuple, TupleDesc desc, const ObInboxAtts *atts,
										   ObDelivery *d, bool set_payload);
extern void onboarding_delivery_rewrite(ObDelivery *d, HeapTuple stored, TupleDesc desc,
										const ObInboxAtts *stored_atts);

/* ---------------------------------------------------------------------
 * derive.c — dedupe, lock the entities, order, check, write state and history
 * ---------------------------------------------------------------------
 */
/* Who runs the pipeline: the inbox trigger, rebuild(), or explain() */
typedef enum ObRunMode
{
	OB_RUN_LIVE,
	OB_RUN_REPLAY,
	OB_RUN_DRY
} ObRunMode;

extern void onboarding_process_delivery(struct RelationData *inbox, const ObInboxAtts *atts,
										ObDelivery *d, text *raw, ObRunMode mode, int64 original);
extern void onboarding_derive(struct RelationData *inbox, const ObInboxAtts *atts, ObDelivery *d,
							  bool dry_run);
/* What folding a group again found (rebuild(); group.c) */
typedef struct ObGroupReport
{
	int64		deliveries;		/* stored deliveries folded */
	int64	   *ids;			/* their ids */
	List	   *subjects;		/* char *: the subjects it covered (it may grow) */
	List	   *moved;			/* char *: subjects its deliveries have now, elsewhere */
} ObGroupReport;

extern void onboarding_derive_group(struct RelationData *inbox, const ObInboxAtts *atts,
									ObProvider provider, const char *subject,
									ObGroupReport *report);
extern Datum onboarding_subjects_with(Datum current, const char *subject);
extern void onboarding_derive_seen_begin(MemoryContext cxt);
extern bool onboarding_derive_seen(int table, Oid provider, const char *key);
extern void onboarding_derive_seen_end(void);

/* rebuild.c, for erase.c: its locks, and its group engine for a set of subjects */
extern void onboarding_rebuild_lock(void);
extern int64 onboarding_rebuild_subjects(Datum subjects, Datum loose_ids, int64 erasure);

/* tally.c: the counts behind onboarding.daily and onboarding.funnel */
extern void onboarding_tally_init(void);
extern void onboarding_tally_delivery(TimestampTz received_at, ObProvider provider,
									  ObOutcome outcome, int delta);
extern void onboarding_tally_flush(void);

/* status_tally's entities, and a state table's status columns that count them */
#define OB_TALLY_NENTITIES 6
#define OB_TALLY_DOCUMENT 4		/* onboarding_tally_entities[4], "document" */
extern const char *const onboarding_tally_entities[OB_TALLY_NENTITIES];
typedef struct ObTallyCols
{
	int			n;				/* status columns */
	AttrNumber	provider;		/* the provider column */
	AttrNumber	att[3];			/* each status column */
	int			entity[3];		/* and the entity it counts */
	int			table;			/* OB_S_ACCOUNT .. OB_S_CLOSURE */
	AttrNumber	key;			/* the key column (onboarding.open_entity's entity_key) */
	AttrNumber	reason;			/* what rejection_reasons reads (InvalidAttrNumber: none) */
	AttrNumber	provider_status;
	AttrNumber	message;
	AttrNumber	last_event_at;
} ObTallyCols;
extern void onboarding_tally_status(Oid provider_label, int entity, Oid status_label, int delta);
extern void onboarding_tally_span(Oid provider_label, const char *entity, const char *status,
								  int32 bucket, int delta);
extern void onboarding_tally_cols(int table, TupleDesc desc, ObTallyCols *cols);
struct Tuplestorestate;
extern void onboarding_transition_rows(struct Tuplestorestate *rows, TupleDesc desc,
									   void (*fn) (TupleTableSlot *slot, void *arg, int sign),
									   void *arg, int sign);
extern void onboarding_tally_values(const ObTallyCols *cols, const Datum *values,
									const bool *nulls, int sign);
extern void onboarding_tally_slot(const ObTallyCols *cols, TupleTableSlot *slot, int sign);

/* open.c: onboarding.open_entity, the entities still on their way */
extern void onboarding_open_init(void);
extern void onboarding_open_values(const ObTallyCols *cols, const Datum *values,
								   const bool *nulls, int sign);
extern void onboarding_open_flush(void);
extern void onboarding_open_bound(void);
extern void onboarding_open_truncated(int table);

/* span.c: onboarding.stage_span, what stage_durations reads */
extern void onboarding_span_init(void);
extern void onboarding_span_row(Relation rel, const Datum *values, const bool *nulls, int sign);
extern void onboarding_span_slot(Relation rel, TupleTableSlot *slot, int sign);
extern bool onboarding_span_pending(void);
extern void onboarding_span_flush(void);
extern void onboarding_span_bound(void);

/* ---------------------------------------------------------------------
 * The fold's own files: fold.c (the rules), lock.c (the lock protocol),
 * derive.c (rows read and written, the incremental path), group.c (the
 * group fold), window.c (the bounded refold).  What they share; nothing
 * outside them uses it.
 * ---------------------------------------------------------------------
 */
/* The state tables, in locking order */
typedef enum ObTable
{
	OB_T_ACCOUNT = 0,
	OB_T_PROPOSAL,
	OB_T_DOCUMENT,
	OB_T_CLOSURE,
	OB_NTABLES
} ObTable;

#define OB_MAX_STATUS_COLS OB_MAX_STATE_STATUSES
#define OB_MAX_ATTEMPTS 8		/* rounds of lock-or-create before giving up */

extern const char *const onboarding_table_names[OB_NTABLES];

/*
 * Column positions (0-based) of a state table, resolved for the table as
 * opened in the current transaction.
 */
typedef struct ObTableCols
{
	uint64		serial;			/* of the open table they were resolved for */
	int			natts;
	int			provider;
	int			key;
	int			status[OB_MAX_STATUS_COLS];
	int			statustime[OB_MAX_STATUS_COLS];	/* -1: last_event_at */
	int			provider_status;
	int			fields[OB_MAX_STATE_FIELDS];
	int			first_event_at;
	int			last_event_at;
	int			last_inbox_id;
	int			last_seen_id;
	int			last_received_at;	/* -1: none (a 0.1.0 schema) */
	int			subjects;		/* -1: none (a 0.1.0 schema) */
	int			flow;			/* -1: none */
	bool	   *owned;			/* per attribute: a column the pipeline writes
								 * (the others are a user's, kept as they are) */
} ObTableCols;

/* The same for onboarding.history */
typedef struct ObHistoryCols
{
	uint64		serial;
	int			natts;
	int			provider;
	int			entity;
	int			entity_key;
	int			from_status;
	int			to_status;
	int			event_at;
	int			inbox_id;
	int			reason;
} ObHistoryCols;

/* One entity row: its state as the fold has it */
typedef struct ObEntState
{
	ObTable		table;
	char	   *key;
	bool		in_table;		/* found (and locked) in its table */
	bool		exists;			/* has a state in the fold */
	ObStoreRow	row;
	Datum	   *values;			/* its columns */
	bool	   *nulls;
	/* group fold */
	bool		has_max_at;		/* latest time among deliveries placed so far */
	TimestampTz max_at;
	int64	   *later;			/* ids of later deliveries that may make an
								 * earlier one stale, nearest on top (group.c) */
	int			nlater;
	/* bounded refold: fields and provider_status the fold has set */
	bool	   *set;
	/* group fold: its checkpoint (checkpoint.c), read once */
	bool		ckpt_checked;
	bool		has_ckpt;
	int64		ckpt_covers;	/* the deliveries folded into it: ids up to this */
	Datum	   *ckpt_values;	/* its columns, laid out as the table's */
	bool	   *ckpt_nulls;
} ObEntState;

/* What one delivery does to one entity row */
typedef struct ObTouch
{
	ObEntState *ent;
	ObEffect   *effect[OB_MAX_STATUS_COLS];
	const char *next[OB_MAX_STATUS_COLS];
	bool		changed[OB_MAX_STATUS_COLS];
} ObTouch;

/* A history row the fold made */
typedef struct ObHistRow
{
	ObEntity	entity;
	const char *key;
	const char *from;
	const char *to;
	bool		has_at;
	TimestampTz at;
	int64		inbox_id;
	const char *reason;
} ObHistRow;

/* A fold: the rows it knows, and the history it makes */
typedef struct ObFold
{
	ObProvider	provider;
	List	   *ents;			/* ObEntState * */
	List	   *history;		/* ObHistRow *, in the order made */
	bool		may_have_ckpt;	/* group fold: its group has a checkpoint (checkpoint.c) */
} ObFold;

/* A bounded refold, planned: what it writes (window.c) */
typedef struct ObWindow
{
	bool		ready;			/* planned: write it (onboarding_window_write) */
	ObFold		fnew;			/* the rows with L, their final values */
	List	   *rewrite;		/* ObGroupItem * judged otherwise than stored */
	List	   *removed;		/* ItemPointer: history rows no longer made */
	List	   *added;			/* ObHistRow *: history rows newly made */
	ObEntState *stale_ent;		/* L is stale: the row, */
	int64		stale_id;		/* and the delivery after it that came first */
	int			read;			/* deliveries read after L's place */
	ObDelivery	prepared;		/* L as it came, for the group fold */
	char	   *prepared_detail;	/* (onboarding_window_write: a race) */
} ObWindow;

/* A delivery of a group, as the fold sees it (group.c) */
typedef struct ObGroupItem
{
	ObDelivery *d;
	ObDelivery	prepared;		/* *d as prepared, before any fold judged it */
	char	   *prepared_detail;	/* its detail then */
	HeapTuple	stored;			/* its inbox row; NULL for the one being inserted */
	List	   *touches;		/* ObTouch *, when it takes part in the fold */
	bool		has_at;			/* its place: time ... */
	TimestampTz at;
	uint64		seq;			/* ... and tie-break */
	bool		covered;		/* folded into a checkpoint: not folded again */
} ObGroupItem;

/* How a fold's writes went (derive.c) */
typedef enum ObWriteResult
{
	W_DONE,
	W_RACED,					/* a row another session created meanwhile */
	W_REFUSED					/* a user's constraint or trigger refused them */
} ObWriteResult;

/* checkpoint.c */
extern bool onboarding_checkpoint_covers(ObFold *f, List *touches, int64 id);
extern void onboarding_checkpoint_start(ObFold *f, ObEntState *e);
extern bool onboarding_checkpoint_in_group(ObProvider provider, List *subjects);
extern bool onboarding_checkpoint_holds(int table, Oid provider, const char *key);
extern bool onboarding_checkpoint_archived(Oid relid);
extern void onboarding_checkpoint_erase_check(Datum subjects, Datum forms);

/* fold.c */
extern void onboarding_derive_bound(Datum *value, bool *isnull, bool has_t, TimestampTz t,
		bool greatest);
extern void onboarding_ent_add_subject(ObEntState *e, const char *subject);
extern List *onboarding_ent_subjects(ObEntState *e);
extern void onboarding_fold_step(ObFold *f, ObDelivery *d, List *touches);
extern List *onboarding_fold_touches(ObFold *f, ObDelivery *d);
extern bool onboarding_subjects_add(List **list, const char *s);

/* lock.c */
extern ObEntState *onboarding_derive_lock_attempt(ObProvider provider, List *ents, ObLockMode mode,
		bool keep);
extern ObEntState *onboarding_derive_lock_nowait(ObProvider provider, List *ents);
extern void onboarding_derive_lock_rows(ObProvider provider, List *ents, bool dry_run);
extern void onboarding_derive_subxact_rethrow(MemoryContext cxt, ResourceOwner owner);

/* derive.c */
extern ObEntity onboarding_derive_entity(ObTable table, int col);
extern ObGraph onboarding_derive_graph(ObTable table, int col);
extern ObStore *onboarding_derive_open(ObTable which, ObTableCols **colsp);
extern ObStore *onboarding_derive_open_history(void);
extern List *onboarding_derive_subjects(ObDelivery *d, ObFold *f);
extern ObTable onboarding_derive_table(ObEntity entity, int *col);
extern ObWriteResult onboarding_derive_write(ObFold *f, bool group, char **why, int64 *culprit);
extern bool onboarding_fold_bound(ObFold *f);
extern bool onboarding_fold_write_rows(ObFold *f);
extern void onboarding_hist_values(Oid provider, ObHistRow *h, Datum **valuesp, bool **nullsp);

/* group.c */
extern void onboarding_delivery_reset(ObDelivery *d, const ObDelivery *prepared,
		const char *detail);
extern void onboarding_group_derive(Relation inbox, const ObInboxAtts *atts, ObDelivery *late,
		ObProvider provider, List *subjects, bool dry_run, HTAB *pool, ObGroupReport *report);
extern void onboarding_derive_stale(ObDelivery *d, ObEntState *e, int64 later_id);
extern ObEntState *onboarding_group_gather(Relation inbox, const ObInboxAtts *atts,
		ObDelivery *late, List *refused, ObProvider provider, List **subjects, ObLockMode mode,
		ObFold *f, List **items, HTAB *pool);
extern int64 onboarding_group_bodies_read(void);
extern ObGroupItem *onboarding_group_item_read(HeapTuple tup, TupleDesc desc,
		const ObInboxAtts *atts);
extern ObGroupItem *onboarding_group_item_pooled(HTAB *pool, int64 id, HeapTuple tup,
		TupleDesc desc, const ObInboxAtts *atts);
extern void onboarding_group_item_reset(ObGroupItem *it);
extern HTAB *onboarding_group_pool_create(void);

/* window.c */
extern bool onboarding_window_plan(Relation inbox, const ObInboxAtts *atts, ObDelivery *d,
		ObFold *f, HTAB *pool, ObWindow *w);
extern bool onboarding_window_later(ObDelivery *d);
extern bool onboarding_window_write(Relation inbox, const ObInboxAtts *atts, ObDelivery *d,
		ObWindow *w);

#endif							/* ONBOARDING_H */

/*-------------------------------------------------------------------------
 *
 * erase.c
 *		erase(): a person's personal data taken out of the stored deliveries
 *		and the rows they derive (LGPD art. 18), leaving tombstones.
 *
 * The person is a tax id.  Their deliveries are those of the groups of the
 * rows that carry the tax id (accounts, proposals, documents) and of the
 * groups of the deliveries whose body, raw text or headers mention it, and
 * those of no group yet that mention it.  In each, every string under a key
 * that holds personal data (a tax id, a name, an e-mail, a phone, a file
 * name, a URL: the keys the rules read tax ids, holder names, file names
 * and URLs from, and a fixed list) becomes "[erased <hash>]", the hash keyed
 * by a random number drawn for this erasure and never kept: equal values
 * stay equal and different ones different, so the same deliveries group and
 * repeat as before, and nothing can be recovered.  Elsewhere the tax id,
 * wherever it is written (bare or masked, alone or inside a key or a URL),
 * becomes "erased-<erasure id>".  A body's raw text goes (the parsed body
 * is what derivation reads); a raw text that never parsed keeps only its
 * tax id replaced.  Then the person's groups are folded again from the
 * erased bodies (rebuild.c), which rewrites their state, history and
 * derived columns and deletes the rows keyed by the tax id: statuses, times
 * and outcomes stay (but for two deliveries of one entity with the same
 * time and status, whose tie the body's hash breaks: which of them is
 * applied and which stale may swap), and verify() finds the erased bodies
 * deriving exactly what is stored.  The erasure is recorded in
 * onboarding.erasure, without the tax id.
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/* Keys whose strings are personal data, whatever the rules say (normalised) */
static const char *const erase_fixed_keys[] = {
	"name", "nome", "fullname", "nomecompleto", "socialname", "nomesocial",
	"mothername", "nomemae", "nomedamae", "fathername", "nomepai",
	"email", "phone", "phonenumber", "telefone", "celular", "mobile",
	"birthdate", "dateofbirth", "datanascimento", "address", "endereco",
	"street", "logradouro", "zipcode", "cep", "filename", "url", "link", "fileurl",
	"documentnumber", "taxnumber", "taxid", "cpf", "cnpj", "rg",
};

/* One erasure: what the tax id becomes, and how to recognise what to erase */
typedef struct Eraser
{
	char	   *token;			/* what the tax id becomes: "erased-<id>" */
	List	   *forms;			/* char *: the tax id as it may be written */
	List	   *keys;			/* char *: normalised keys whose strings are personal */
	uint64		seed;			/* keys the hash of an erased value; never stored */
	int64		values;			/* strings erased */
} Eraser;

/* A key as compared: lower case, letters and digits only. */
static char *
erase_normal_key(const char *key, int len)
{
	char	   *out = palloc(len + 1);
	int			n = 0;

	for (int i = 0; i < len; i++)
		if (isalnum((unsigned char) key[i]))
			out[n++] = (char) tolower((unsigned char) key[i]);
	out[n] = '\0';
	return out;
}

/* Is this (normalised) key one whose strings are personal? */
static bool
erase_personal_key(Eraser *e, const char *key)
{
	ListCell   *lc;

	if (key == NULL)
		return false;
	foreach(lc, e->keys)
		if (strcmp((const char *) lfirst(lc), key) == 0)
			return true;
	return false;
}

/* s with every occurrence of from replaced by to (a new string), or NULL if none. */
static char *
erase_replace(const char *s, const char *from, const char *to)
{
	StringInfoData out;
	const char *at;
	size_t		flen = strlen(from);

	if (flen == 0 || (at = strstr(s, from)) == NULL)
		return NULL;
	initStringInfo(&out);
	while (at != NULL)
	{
		appendBinaryStringInfo(&out, s, at - s);
		appendStringInfoString(&out, to);
		s = at + flen;
		at = strstr(s, from);
	}
	appendStringInfoString(&out, s);
	return out.data;
}

/* s with the tax id replaced by the token wherever it is written, or NULL if nowhere. */
static char *
erase_taxid_in(Eraser *e, const char *s)
{
	char	   *result = NULL;
	ListCell   *lc;

	foreach(lc, e->forms)
	{
		char	   *r = erase_replace(result != NULL ? result : s, (const char *) lfirst(lc), e->token);

		if (r != NULL)
			result = r;
	}
	return result;
}

/* Is s a tombstone already, an earlier erasure's? */
static bool
erase_is_tombstone(const char *s, int len)
{
	return (len >= 8 && strncmp(s, "[erased ", 8) == 0) ||
		(len > 7 && strncmp(s, "erased-", 7) == 0 && strspn(s + 7, "0123456789") == (size_t) (len - 7));
}

/*
 * What a string of a body becomes (NULL: it stays).  Under a personal key,
 * a hash of the whole of it, keyed by the erasure's seed: the same value
 * always gives the same hash, so a key that is personal still groups the
 * same deliveries; elsewhere, the tax id replaced by the token wherever it
 * is written.  An earlier erasure's tombstone stays as it is.
 */
static char *
erase_string(Eraser *e, const char *s, int len, bool personal)
{
	char	   *copy;
	char	   *r;

	if (len == 0 || erase_is_tombstone(s, len))
		return NULL;
	copy = pnstrdup(s, len);
	if (personal)
		r = psprintf("[erased %08x]",
					 (uint32) hash_bytes_extended((const unsigned char *) copy, len, e->seed));
	else
		r = erase_taxid_in(e, copy);
	if (r != NULL)
		e->values++;
	pfree(copy);
	return r;
}

/*
 * A jsonb value with personal data erased (see the file's comment); sets
 * *changed.  Object keys are tested for the tax id too (a body keyed by
 * CPF); a number that spells the tax id becomes the token.
 */
static Jsonb *
erase_jsonb(Eraser *e, Jsonb *j, bool *changed)
{
	JsonbIterator *it = JsonbIteratorInit(&j->root);
	JsonbParseState *state = NULL;
	JsonbValue	v;
	JsonbValue *res = NULL;
	JsonbIteratorToken tok;
	List	   *key_stack = NIL;	/* char *: the key each open container is under */
	char	   *key = NULL;			/* the key of the value coming next */

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
			case WJB_BEGIN_ARRAY:
				key_stack = lcons(key, key_stack);
				res = pushJsonbValue(&state, tok, NULL);
				break;
			case WJB_END_OBJECT:
			case WJB_END_ARRAY:
				key = (char *) linitial(key_stack);
				key_stack = list_delete_first(key_stack);
				res = pushJsonbValue(&state, tok, NULL);
				break;
			case WJB_KEY:
				{
					char	   *r = erase_string(e, v.val.string.val, v.val.string.len, false);

					key = erase_normal_key(v.val.string.val, v.val.string.len);
					if (r != NULL)
					{
						v.val.string.val = r;
						v.val.string.len = strlen(r);
						*changed = true;
					}
					res = pushJsonbValue(&state, tok, &v);
					break;
				}
			case WJB_VALUE:
			case WJB_ELEM:
				{
					/* an element is under the key of its array */
					const char *under = tok == WJB_VALUE ? key : (const char *) linitial(key_stack);
					char	   *r = NULL;

					if (v.type == jbvString)
						r = erase_string(e, v.val.string.val, v.val.string.len,
										 erase_personal_key(e, under));
					else if (v.type == jbvNumeric)
					{
						char	   *digits = DatumGetCString(DirectFunctionCall1(numeric_out,
																				 NumericGetDatum(v.val.numeric)));

						r = erase_string(e, digits, strlen(digits), erase_personal_key(e, under));
						if (r == NULL)
						{
							/* a CPF sent as a number has lost its leading zeros */
							ListCell   *lc;

							foreach(lc, e->forms)
							{
								const char *f = (const char *) lfirst(lc);

								while (*f == '0')
									f++;
								if (*f != '\0' && strcmp(f, digits) == 0)
								{
									r = pstrdup(e->token);
									e->values++;
								}
							}
						}
					}
					if (r != NULL)
					{
						v.type = jbvString;
						v.val.string.val = r;
						v.val.string.len = strlen(r);
						*changed = true;
					}
					res = pushJsonbValue(&state, tok, &v);
					break;
				}
			default:
				res = pushJsonbValue(&state, tok, &v);
				break;
		}
	}
	return JsonbValueToJsonb(res);
}

/* The ways a tax id is written: its canonical text, and its mask. */
static List *
erase_forms(int64 taxid)
{
	char		bare[OB_TAXID_BUFLEN];
	List	   *forms = NIL;

	onboarding_taxid_to_cstring(taxid, bare);
	if (strlen(bare) == 11)
		forms = lappend(forms, psprintf("%.3s.%.3s.%.3s-%.2s", bare, bare + 3, bare + 6, bare + 9));
	else
	{
		forms = lappend(forms, psprintf("%.2s.%.3s.%.3s/%.4s-%.2s", bare, bare + 2, bare + 5,
										bare + 8, bare + 12));
		forms = lappend(forms, erase_normal_key(bare, strlen(bare)));	/* lower case too */
	}
	forms = lcons(pstrdup(bare), forms);
	return forms;
}

/* Inbox ids (int64 in pointers) as an int8[], for SQL. */
static Datum
erase_ids_array(List *ids)
{
	Datum	   *elems = palloc(sizeof(Datum) * list_length(ids));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, ids)
		elems[n++] = Int64GetDatum((int64) (intptr_t) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* Strings as a text[], for SQL. */
static Datum
erase_subjects_array(List *forms)
{
	Datum	   *elems = palloc(sizeof(Datum) * list_length(forms));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, forms)
		elems[n++] = CStringGetTextDatum((const char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * The keys whose strings are personal: the last name of every path the
 * rules read a tax id, a holder's name, a file name or a URL from, and the
 * fixed list above.
 */
static List *
erase_keys(void)
{
	List	   *keys = NIL;

	for (int i = 0; i < lengthof(erase_fixed_keys); i++)
		keys = lappend(keys, pstrdup(erase_fixed_keys[i]));
	if (SPI_execute("SELECT DISTINCT pg_catalog.lower(pg_catalog.regexp_replace("
					"         pg_catalog.substring(p, '([A-Za-z0-9_-]+)[^A-Za-z0-9_-]*$'),"
					"         '[^A-Za-z0-9]', '', 'g'))"
					"  FROM onboarding.value_rule, pg_catalog.unnest(paths) p"
					" WHERE field IN ('tax_id', 'tax_id_raw', 'holder_name', 'file_name', 'url')",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "erase: could not read the rules' personal paths");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *k = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (k != NULL && *k != '\0')
			keys = lappend(keys, k);
	}
	return keys;
}

/*
 * The schema of the taxid base type (the extension taxid's, normally
 * public), quoted: its = operator is there, not in pg_catalog.
 */
static const char *
erase_taxid_schema(void)
{
	Oid			domain = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("taxid"),
										 ObjectIdGetDatum(onboarding_schema_oid()));

	HeapTuple	tup;
	Oid			nsp;

	if (!OidIsValid(domain))
		elog(ERROR, "erase: type onboarding.taxid is missing");
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(getBaseType(domain)));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "erase: the base type of onboarding.taxid is missing");
	nsp = ((Form_pg_type) GETSTRUCT(tup))->typnamespace;
	ReleaseSysCache(tup);
	return quote_identifier(get_namespace_name(nsp));
}

/*
 * Erase one stored delivery (a row of the query below: id, ctid, payload,
 * raw, headers, subject, tableoid); returns whether it changed.
 */
static bool
erase_delivery(Eraser *e, HeapTuple tup, TupleDesc desc, const ObInboxAtts *atts)
{
	ObStore    *inbox = onboarding_store(OB_S_INBOX);
	bool		isnull;
	bool		changed = false;
	int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	ItemPointer tid = (ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, 2, &isnull));
	Oid			part = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
	Datum		payload = SPI_getbinval(tup, desc, 3, &isnull);
	bool		payload_null = isnull;
	Datum		raw = SPI_getbinval(tup, desc, 4, &isnull);
	bool		raw_null = isnull;
	Datum		headers = SPI_getbinval(tup, desc, 5, &isnull);
	bool		headers_null = isnull;
	/* what the body gave, kept (extraction.c), goes with it: read again */
	int			cols[5] = {atts->payload, atts->raw, atts->headers, atts->body_hash,
	atts->extraction};
	Datum		values[5] = {payload, raw, headers, (Datum) 0, (Datum) 0};
	bool		nulls[5] = {payload_null, raw_null, headers_null, true, true};

	if (!payload_null)
	{
		Jsonb	   *p = erase_jsonb(e, DatumGetJsonbP(payload), &changed);

		values[0] = JsonbPGetDatum(p);
		values[3] = Int64GetDatum((int64) onboarding_dedupe_hash(p));
		nulls[3] = false;
		/* the parsed body is what derivation reads: the verbatim text goes */
		if (!raw_null)
		{
			nulls[1] = true;
			changed = true;
		}
	}
	else if (!raw_null)
	{
		char	   *r = erase_taxid_in(e, TextDatumGetCString(raw));

		if (r != NULL)
		{
			values[1] = CStringGetTextDatum(r);
			changed = true;
			e->values++;
		}
	}
	if (!headers_null)
		values[2] = JsonbPGetDatum(erase_jsonb(e, DatumGetJsonbP(headers), &changed));
	if (changed)
		onboarding_store_rewrite(inbox, id, part, tid, atts->extraction != InvalidAttrNumber ? 5 : 4,
								 cols, values, nulls);
	return changed;
}

/*
 * Before the locks: every delivery stored so far whose body, raw text or
 * headers mention the tax id, as its group (provider, subject) or, of no
 * group, its id; and the last id stored then (the search is repeated under
 * the locks among those stored after it).  A scan of the inbox, which
 * deliveries do not wait for.  The lists are made in the caller's memory.
 */
static void
erase_scan(Eraser *e, int64 *scanned_to, List **providers, List **subjects, List **loose)
{
	MemoryContext caller = CurrentMemoryContext;
	ObSpiFrame	spi;
	bool		isnull;

	*providers = *subjects = *loose = NIL;
	onboarding_spi_connect(&spi);
	if (SPI_execute("SELECT coalesce(pg_catalog.max(id), 0) FROM onboarding.inbox", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "erase: could not read the inbox");
	*scanned_to = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (SPI_execute_with_args("SELECT DISTINCT i.provider::pg_catalog.text, i.subject,"
							  "       CASE WHEN i.subject IS NULL THEN i.id END"
							  "  FROM onboarding.inbox i"
							  " WHERE i.id OPERATOR(pg_catalog.<=) $2"
							  "   AND EXISTS (SELECT FROM pg_catalog.unnest($1) f"
							  "                WHERE pg_catalog.strpos(coalesce(i.payload::pg_catalog.text, '')"
							  "                      OPERATOR(pg_catalog.||) coalesce(i.raw, '')"
							  "                      OPERATOR(pg_catalog.||) coalesce(i.headers::pg_catalog.text, ''),"
							  "                      f) OPERATOR(pg_catalog.>) 0)",
							  2, (Oid[]) {TEXTARRAYOID, INT8OID},
							  (Datum[]) {erase_subjects_array(e->forms), Int64GetDatum(*scanned_to)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "erase: could not search the inbox");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		char	   *provider = SPI_getvalue(t, SPI_tuptable->tupdesc, 1);
		char	   *subject = SPI_getvalue(t, SPI_tuptable->tupdesc, 2);
		Datum		id = SPI_getbinval(t, SPI_tuptable->tupdesc, 3, &isnull);
		MemoryContext old = MemoryContextSwitchTo(caller);

		if (subject != NULL && provider != NULL)
		{
			*providers = lappend(*providers, pstrdup(provider));
			*subjects = lappend(*subjects, pstrdup(subject));
		}
		else if (subject == NULL)
			*loose = lappend(*loose, (void *) (intptr_t) DatumGetInt64(id));
		MemoryContextSwitchTo(old);
	}
	onboarding_spi_finish(&spi);
}

/*
 * erase(tax_id taxid, reason text) → bigint
 *
 * Erase a person's personal data from the deliveries and the rows they
 * derive (see the file's comment), holding deliveries off meanwhile (the
 * locks of replay_lock(): an erasure is one person's few deliveries), and
 * return the id of the erasure's record.
 */
PG_FUNCTION_INFO_V1(onboarding_erase);
Datum
onboarding_erase(PG_FUNCTION_ARGS)
{
	ObSpiFrame	spi;
	Eraser		e = {0};
	int64		taxid;
	char	   *reason;
	int64		erasure;
	int64		deliveries = 0;
	bool		isnull;
	ObInboxAtts atts;
	Relation	inbox;
	char	   *query;
	int64		scanned_to;
	List	   *seen_providers;
	List	   *seen_subjects;
	List	   *seen_loose;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("erase() needs a tax id and a reason"),
				 errhint("The reason is recorded in onboarding.erasure: the request's reference, say.")));
	taxid = PG_GETARG_INT64(0);
	reason = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strspn(reason, " \t\r\n") == strlen(reason))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("erase() needs a reason"),
				 errhint("The reason is recorded in onboarding.erasure: the request's reference, say.")));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("erase() must run under READ COMMITTED"),
				 errdetail("It folds the person's deliveries again, reading them as they are once it holds its locks."),
				 errhint("Call it in a READ COMMITTED transaction (the default).")));

	/* where the inbox mentions the tax id, read before the locks */
	e.forms = erase_forms(taxid);
	erase_scan(&e, &scanned_to, &seen_providers, &seen_subjects, &seen_loose);

	/* no delivery may arrive while the person's are rewritten */
	onboarding_rebuild_lock();
	onboarding_store_flush(true);
	onboarding_spi_connect(&spi);
	inbox = table_open(onboarding_relation_oid("inbox"), NoLock);
	onboarding_inbox_atts(RelationGetDescr(inbox), &atts);

	if (SPI_execute_with_args("INSERT INTO onboarding.erasure (erased_by, reason)"
							  " VALUES (pg_catalog.session_user(), $1) RETURNING id",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(reason)},
							  NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "erase: could not record the erasure");
	erasure = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	e.token = psprintf("erased-" INT64_FORMAT, erasure);
	e.keys = erase_keys();
	e.seed = pg_prng_uint64(&pg_global_prng_state);

	/*
	 * The person's deliveries: every delivery of the groups of the rows that
	 * carry the tax id (their keys, and every subject that touched them) and
	 * of the groups of the deliveries that mention it, and every delivery of
	 * no group that mentions it.  Mentions are searched in the whole inbox
	 * (an invalid or unrecognised body derives no row to find it by): before
	 * the locks, so that deliveries flow meanwhile (erase_scan), and here,
	 * under the locks, among those stored since.
	 */
	query = psprintf("WITH mentions AS ("
					 "  SELECT i.provider, i.subject, i.id"
					 "    FROM onboarding.inbox i"
					 "   WHERE i.id OPERATOR(pg_catalog.>) $3"
					 "     AND EXISTS (SELECT FROM pg_catalog.unnest($2) f"
					 "                  WHERE pg_catalog.strpos(coalesce(i.payload::pg_catalog.text, '')"
					 "                        OPERATOR(pg_catalog.||) coalesce(i.raw, '')"
					 "                        OPERATOR(pg_catalog.||) coalesce(i.headers::pg_catalog.text, ''),"
					 "                        f) OPERATOR(pg_catalog.>) 0)),"
					 " held AS ("
					 "  SELECT provider, account_key AS k, subjects FROM onboarding.account"
					 "   WHERE tax_id OPERATOR(%1$s.=) $1::onboarding.taxid"
					 "  UNION ALL"
					 "  SELECT provider, proposal_key, subjects FROM onboarding.proposal"
					 "   WHERE tax_id OPERATOR(%1$s.=) $1::onboarding.taxid"
					 "  UNION ALL"
					 "  SELECT provider, document_key, subjects FROM onboarding.document"
					 "   WHERE tax_id OPERATOR(%1$s.=) $1::onboarding.taxid),"
					 " groups AS ("
					 "  SELECT r.provider, s.subject"
					 "    FROM held r, pg_catalog.unnest(pg_catalog.array_append(r.subjects, r.k)) s(subject)"
					 "  UNION"
					 "  SELECT m.provider, m.subject FROM mentions m WHERE m.subject IS NOT NULL"
					 "  UNION"
					 "  SELECT g.provider::onboarding.provider, g.subject"
					 "    FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5)) g(provider, subject))"
					 " SELECT i.id, i.ctid, i.payload, i.raw, i.headers, i.subject, i.tableoid"
					 "   FROM onboarding.inbox i JOIN groups g"
					 "     ON i.provider OPERATOR(pg_catalog.=) g.provider"
					 "    AND i.subject OPERATOR(pg_catalog.=) g.subject"
					 " UNION ALL"
					 " SELECT i.id, i.ctid, i.payload, i.raw, i.headers, i.subject, i.tableoid"
					 "   FROM onboarding.inbox i"
					 "  WHERE i.subject IS NULL"
					 "    AND (i.id OPERATOR(pg_catalog.=) ANY ($6)"
					 "         OR i.id IN (SELECT m.id FROM mentions m WHERE m.subject IS NULL))"
					 "  ORDER BY 1",
					 erase_taxid_schema());
	if (SPI_execute_with_args(query, 6,
							  (Oid[]) {TEXTOID, TEXTARRAYOID, INT8OID, TEXTARRAYOID, TEXTARRAYOID,
								  INT8ARRAYOID},
							  (Datum[]) {CStringGetTextDatum((const char *) linitial(e.forms)),
								  erase_subjects_array(e.forms), Int64GetDatum(scanned_to),
								  erase_subjects_array(seen_providers),
								  erase_subjects_array(seen_subjects), erase_ids_array(seen_loose)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "erase: could not find the person's deliveries");
	{
		SPITupleTable *found = SPI_tuptable;
		uint64		n = SPI_processed;
		List	   *group_subjects = NIL;
		List	   *loose = NIL;
		Datum		loose_ids = (Datum) 0;

		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = found->vals[i];
			char	   *subject = SPI_getvalue(tup, found->tupdesc, 6);

			deliveries++;
			(void) erase_delivery(&e, tup, found->tupdesc, &atts);
			if (subject != NULL)
				(void) onboarding_subjects_add(&group_subjects, subject);
			else
				loose = lappend(loose, (void *) DatumGetPointer(SPI_getbinval(tup, found->tupdesc, 1,
																				 &isnull)));
		}
		CommandCounterIncrement();
		if (loose != NIL)
			loose_ids = erase_ids_array(loose);
		/* (rolls the erasure back when the person's rows stand in a checkpoint) */
		onboarding_checkpoint_erase_check(erase_subjects_array(group_subjects),
										  erase_subjects_array(e.forms));
		/* (no subject at all: the array of none, so that the scope is not everything) */
		(void) onboarding_rebuild_subjects(erase_subjects_array(group_subjects), loose_ids, erasure);

		/*
		 * The groups no delivery is in any more (their subject carried the
		 * tax id) leave onboarding.group_partition: their deliveries' new
		 * groups were given rows as they were rewritten (spread.c).
		 */
		if (OidIsValid(onboarding_inbox_oids()->spread) &&
			SPI_execute_with_args("DELETE FROM onboarding.group_partition g"
								  " WHERE g.subject OPERATOR(pg_catalog.=) ANY ($1)"
								  "   AND NOT EXISTS (SELECT FROM onboarding.inbox i"
								  "                    WHERE i.provider OPERATOR(pg_catalog.=) g.provider"
								  "                      AND i.subject OPERATOR(pg_catalog.=) g.subject)",
								  1, (Oid[]) {TEXTARRAYOID},
								  (Datum[]) {erase_subjects_array(group_subjects)},
								  NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "erase: could not forget the person's groups");
	}

	if (SPI_execute_with_args("UPDATE onboarding.erasure SET deliveries = $2, values_erased = $3"
							  " WHERE id OPERATOR(pg_catalog.=) $1",
							  3, (Oid[]) {INT8OID, INT8OID, INT8OID},
							  (Datum[]) {Int64GetDatum(erasure), Int64GetDatum(deliveries),
								  Int64GetDatum(e.values)},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "erase: could not record the erasure");
	table_close(inbox, NoLock);
	onboarding_spi_finish(&spi);
	onboarding_store_flush(true);
	onboarding_tally_flush();
	PG_RETURN_INT64(erasure);
}

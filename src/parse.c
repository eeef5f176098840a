/*-------------------------------------------------------------------------
 *
 * parse.c
 *		Turn a raw body into jsonb without ever raising.
 *
 * A caller that could not parse the body hands us its text.  We validate
 * it with PostgreSQL's own JSON parser (pg_parse_json returns its errors
 * instead of throwing them), check what jsonb would still refuse (numbers
 * numeric cannot hold, strings too long, nesting too deep for the stack),
 * and only then build the jsonb.  When strict parsing fails we try the one
 * known provider defect, an unquoted bare-word value such as
 * "Method": UpdateAccount.  Whatever happens, the caller gets a result and
 * a sentence, never an error, so the delivery is always stored.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include <ctype.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "compat.h"

/* Nesting deeper than this is refused before the recursive parser sees it. */
#define OB_MAX_DEPTH			1000
/*
 * Bodies larger than this are not parsed: jsonb needs up to ~12 bytes per
 * one-character element, and its limit is 256 MB (JENTRY_OFFLENMASK).
 * Webhooks are kilobytes.
 */
#define OB_MAX_JSONB_BODY		(16 * 1024 * 1024)

/* What the validation callbacks found that pg_parse_json itself accepts. */
typedef struct ParseCheck
{
	const char *problem;		/* first problem, or NULL */
} ParseCheck;

/*
 * Would numeric_in accept this JSON number token?  It refuses a value with
 * more than 131072 digits before the decimal point or more than 16383
 * after it (NUMERIC_WEIGHT_MAX, NUMERIC_DSCALE_MAX).
 */
static bool
parse_number_fits(const char *tok)
{
	const char *p = tok;
	long		intdigits = 0,
				fracdigits = 0,
				exponent = 0,
				firstnonzero = -1,	/* position of the first significant digit */
				position = 0;

	if (*p == '-')
		p++;
	for (; isdigit((unsigned char) *p); p++, position++, intdigits++)
		if (firstnonzero < 0 && *p != '0')
			firstnonzero = position;
	if (*p == '.')
		for (p++; isdigit((unsigned char) *p); p++, position++, fracdigits++)
			if (firstnonzero < 0 && *p != '0')
				firstnonzero = position;
	if (*p == 'e' || *p == 'E')
	{
		int			sign = 1;

		p++;
		if (*p == '+' || *p == '-')
			sign = (*p++ == '-') ? -1 : 1;
		for (; isdigit((unsigned char) *p); p++)
		{
			exponent = exponent * 10 + (*p - '0');
			if (exponent > 10000000)
				return false;
		}
		exponent *= sign;
	}
	if (fracdigits - exponent > 16383)
		return false;
	/* digits before the decimal point of the value: its decimal weight + 1 */
	return firstnonzero < 0 || (intdigits - firstnonzero) + exponent <= 131072;
}

/* Scalar callback: flag numbers and strings jsonb cannot store. */
static ob_json_action_result
parse_check_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ParseCheck *check = (ParseCheck *) state;

	if (check->problem != NULL)
		return OB_JSON_ACTION_OK;
	if (tokentype == JSON_TOKEN_NUMBER && !parse_number_fits(token))
		check->problem = "a number is out of the range jsonb can store";
	else if (tokentype == JSON_TOKEN_STRING && strlen(token) > JENTRY_OFFLENMASK)
		check->problem = "a string is longer than jsonb can store";
	return OB_JSON_ACTION_OK;
}

/* Field callback: flag keys jsonb cannot store. */
static ob_json_action_result
parse_check_field(void *state, char *fname, bool isnull)
{
	ParseCheck *check = (ParseCheck *) state;

	if (check->problem == NULL && strlen(fname) > JENTRY_OFFLENMASK)
		check->problem = "a key is longer than jsonb can store";
	return OB_JSON_ACTION_OK;
}

/* Deepest nesting of objects and arrays, counting only outside strings. */
static int
parse_depth(const char *s, int len)
{
	int			depth = 0,
				deepest = 0;
	bool		instring = false;

	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if (instring)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				instring = false;
		}
		else if (c == '"')
			instring = true;
		else if (c == '{' || c == '[')
		{
			if (++depth > deepest)
				deepest = depth;
		}
		else if (c == '}' || c == ']')
			depth--;
	}
	return deepest;
}

/*
 * Validate s as JSON that jsonb can hold.  Returns NULL when it is, else a
 * sentence saying why not.
 */
static char *
parse_validate(char *s, int len)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	ParseCheck	check = {NULL};
	JsonParseErrorType err;

	if (len > OB_MAX_JSONB_BODY)
		return psprintf("body of %d bytes is too large to store as jsonb", len);
	if (parse_depth(s, len) > OB_MAX_DEPTH)
		return psprintf("nesting is deeper than %d levels", OB_MAX_DEPTH);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &check;
	sem.scalar = parse_check_scalar;
	sem.object_field_start = parse_check_field;

	lex = ob_make_json_lex_context_cstring_len(s, len, GetDatabaseEncoding(), true);
	err = pg_parse_json(lex, &sem);
	if (err != JSON_SUCCESS)
		return json_errdetail(err, lex);
	if (check.problem != NULL)
		return pstrdup(check.problem);
	return NULL;
}

/*
 * The one known provider defect: a value that is a bare word, as in
 * "Method": UpdateAccount.  Quote every bare word that follows a colon
 * outside a string (true, false and null excepted).  Returns the repaired
 * text, or NULL when there was nothing to repair.  *first gets the first
 * word repaired, for the detail message.
 */
static char *
parse_repair_bare_words(const char *s, int len, int *nrepaired, char **first)
{
	StringInfoData out;
	bool		instring = false;
	bool		aftercolon = false;

	*nrepaired = 0;
	*first = NULL;
	initStringInfo(&out);
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if (instring)
		{
			appendStringInfoChar(&out, c);
			if (c == '\\' && i + 1 < len)
				appendStringInfoChar(&out, s[++i]);
			else if (c == '"')
				instring = false;
			continue;
		}
		if (aftercolon && (isalpha((unsigned char) c) || c == '_'))
		{
			int			j = i;

			while (j < len && (isalnum((unsigned char) s[j]) || s[j] == '_' ||
							   s[j] == '-' || s[j] == '.'))
				j++;
			if (!((j - i == 4 && strncmp(s + i, "true", 4) == 0) ||
				  (j - i == 5 && strncmp(s + i, "false", 5) == 0) ||
				  (j - i == 4 && strncmp(s + i, "null", 4) == 0)))
			{
				appendStringInfoChar(&out, '"');
				appendBinaryStringInfo(&out, s + i, j - i);
				appendStringInfoChar(&out, '"');
				if (*nrepaired == 0)
					*first = pnstrdup(s + i, j - i);
				(*nrepaired)++;
			}
			else
				appendBinaryStringInfo(&out, s + i, j - i);
			i = j - 1;
			aftercolon = false;
			continue;
		}
		if (c == '"')
			instring = true;
		if (!isspace((unsigned char) c))
			aftercolon = (c == ':');
		appendStringInfoChar(&out, c);
	}
	if (*nrepaired == 0)
	{
		pfree(out.data);
		return NULL;
	}
	return out.data;
}

/* Build the jsonb of text already validated by parse_validate. */
static Jsonb *
parse_to_jsonb(char *s)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

/*
 * Parse a raw body.  Returns OB_PARSE_OK or OB_PARSE_REPAIRED with *result
 * set, or OB_PARSE_FAILED; *why gets a sentence for the inbox detail in the
 * last two cases.
 */
ObParseResult
onboarding_parse_raw(text *raw, Jsonb **result, char **why)
{
	char	   *s = text_to_cstring(raw);
	int			len;
	char	   *problem;
	char	   *repaired;
	char	   *first;
	int			nrepaired;

	*result = NULL;
	*why = NULL;

	/*
	 * A UTF-8 byte-order mark some senders put first is not JSON: read what
	 * follows it (raw itself is stored verbatim, mark included).
	 */
	if ((unsigned char) s[0] == 0xEF && (unsigned char) s[1] == 0xBB && (unsigned char) s[2] == 0xBF)
		s += 3;
	len = strlen(s);

	problem = parse_validate(s, len);
	if (problem == NULL)
	{
		*result = parse_to_jsonb(s);
		return OB_PARSE_OK;
	}

	repaired = parse_repair_bare_words(s, len, &nrepaired, &first);
	if (repaired != NULL && parse_validate(repaired, strlen(repaired)) == NULL)
	{
		*result = parse_to_jsonb(repaired);
		*why = psprintf("raw body repaired: %d unquoted value%s quoted (first: %s)",
						nrepaired, nrepaired == 1 ? "" : "s", first);
		return OB_PARSE_REPAIRED;
	}

	*why = psprintf("raw body is not valid JSON: %s", problem);
	return OB_PARSE_FAILED;
}

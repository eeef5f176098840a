/*-------------------------------------------------------------------------
 *
 * jsonutil.c
 *		Safe, typed access to jsonb objects.
 *
 * Provider bodies are untrusted: a field the pipeline reads may be missing,
 * null, or of any JSON type.  Every accessor here checks the shape before
 * it reads and returns NULL when the shape is not the one asked for, so the
 * pipeline never trusts a body it has not checked.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "utils/builtins.h"
#include "utils/numeric.h"

/* Look up key in an object container; NULL when c is not an object or the key is absent. */
JsonbValue *
onboarding_json_get(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	if (c == NULL || !JsonContainerIsObject(c))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT, &k);
}

/* The object stored under key, or NULL when absent or not an object. */
JsonbContainer *
onboarding_json_object(JsonbContainer *c, const char *key)
{
	JsonbValue *v = onboarding_json_get(c, key);

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

/* The array stored under key, or NULL when absent or not an array. */
JsonbContainer *
onboarding_json_array(JsonbContainer *c, const char *key)
{
	JsonbValue *v = onboarding_json_get(c, key);

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) ||
		JsonContainerIsScalar(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

/*
 * A scalar as text: strings as they are, numbers in decimal, booleans as
 * true/false.  NULL for absent, null, objects and arrays.
 */
char *
onboarding_json_scalar_text(JsonbValue *v)
{
	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/* The text of a string or number under key (see onboarding_json_scalar_text). */
char *
onboarding_json_text(JsonbContainer *c, const char *key)
{
	JsonbValue *v = onboarding_json_get(c, key);

	if (v == NULL || v->type == jbvBool)
		return NULL;
	return onboarding_json_scalar_text(v);
}

/* The string under key, or NULL when absent or not a string. */
char *
onboarding_json_string(JsonbContainer *c, const char *key)
{
	JsonbValue *v = onboarding_json_get(c, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * A JSON type with its article, for "X is ..." in messages: "a string",
 * "a number", "an object", "an array", "a boolean", "null".
 */
const char *
onboarding_json_type_name(JsonbValue *v)
{
	if (v == NULL)
		return "absent";
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsObject(v->val.binary.data) ? "an object" : "an array";
		default:
			return "a value";
	}
}

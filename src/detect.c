/*-------------------------------------------------------------------------
 *
 * detect.c
 *		Work out what kind of delivery a body is: an operator's (an override
 *		of force_status(), a direct UPDATE recorded by its trigger), or a
 *		provider's, which extract.c reads by the rule tables.
 *
 * Nothing here knows a provider: a provider's body goes to the
 * interpreter of extract.c whole.  Nothing here knows what a status means
 * either: classification against onboarding.status_map happens in rules.c.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

/* A new effect for entity/key, appended to the delivery's list. */
static ObEffect *
detect_effect(ObDelivery *d, ObEntity entity, char *key, const char *rule_event,
			  char *status_raw)
{
	ObEffect   *e = palloc0(sizeof(ObEffect));

	e->entity = entity;
	e->key = key;
	e->rule_event = rule_event;
	e->status_raw = status_raw;
	e->status_key = status_raw;
	e->primary = true;
	d->effects = lappend(d->effects, e);
	return e;
}

/* ------------------------------------------------------------------------
 * force_status(): an operator's override, recorded as a delivery.
 * ------------------------------------------------------------------------
 */
/* An override recorded by force_status(): entity, key, status, reason. */
static bool
detect_forced(ObDelivery *d, JsonbContainer *root)
{
	char	   *entity = onboarding_json_string(root, "entity");
	char	   *reason;
	ObEffect   *e;
	ObEntity	kind;

	d->event_type = "force_status";
	d->subject = onboarding_json_string(root, "key");
	d->status_raw = onboarding_json_string(root, "status");
	if (entity == NULL || d->subject == NULL || d->status_raw == NULL)
		return onboarding_decide(d, OB_INVALID, "force_status body without entity, key or status");
	if (d->provider == OB_PROVIDER_NONE)
		return onboarding_decide(d, OB_INVALID, "force_status delivery without a provider");
	kind = onboarding_entity_from_name(entity);
	if (kind == OB_NENTITIES)
		return onboarding_decide(d, OB_INVALID, "force_status entity \"%s\" is unknown", entity);
	e = detect_effect(d, kind, d->subject, "force_status", d->status_raw);
	/* a label of the entity's enum, or the override is invalid */
	e->status = onboarding_status_label(onboarding_entity_graph(kind), d->status_raw);
	if (e->status == NULL)
		return onboarding_decide(d, OB_INVALID, "force_status status \"%s\" is not a status of %s",
						 d->status_raw, entity);
	reason = onboarding_json_string(root, "reason");
	if (reason != NULL)
	{
		e->values[OB_F_REASON] = CStringGetTextDatum(reason);
		e->carried[OB_F_REASON] = OB_CARRIED;
	}
	return true;
}

/*
 * A legal direct UPDATE of a state table, recorded by its trigger (state.c)
 * so that the log stays complete: {"entity", "key", "statuses": {entity
 * name: status, ...}, "fields": {column: text or null, ...}, "by", "at"}.
 * Each status is an effect on the row, past the graph like an override;
 * the fields ride on the first.
 */
static bool
detect_direct_update(ObDelivery *d, JsonbContainer *root)
{
	char	   *entity = onboarding_json_string(root, "entity");
	JsonbContainer *statuses = onboarding_json_object(root, "statuses");
	JsonbContainer *fields = onboarding_json_object(root, "fields");
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	ObEffect   *first = NULL;

	d->event_type = "direct_update";
	d->subject = onboarding_json_string(root, "key");
	if (entity == NULL || d->subject == NULL || statuses == NULL)
		return onboarding_decide(d, OB_INVALID, "direct_update body without entity, key or statuses");
	if (d->provider == OB_PROVIDER_NONE)
		return onboarding_decide(d, OB_INVALID, "direct_update delivery without a provider");

	it = JsonbIteratorInit(statuses);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;
		JsonbValue	val;
		ObEntity	kind;
		ObEffect   *e;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &val, true);
		kind = onboarding_entity_from_name(name);
		if (kind == OB_NENTITIES || val.type != jbvString)
			return onboarding_decide(d, OB_INVALID, "direct_update status of \"%s\" is not a status", name);
		e = detect_effect(d, kind, d->subject, "direct_update",
						  pnstrdup(val.val.string.val, val.val.string.len));
		e->status = onboarding_status_label(onboarding_entity_graph(kind), e->status_raw);
		if (e->status == NULL)
			return onboarding_decide(d, OB_INVALID, "direct_update status \"%s\" is not a status of %s",
									 e->status_raw, name);
		if (first == NULL)
			first = e;
	}
	if (first == NULL)
		return onboarding_decide(d, OB_INVALID, "direct_update body without a status");
	d->status_raw = first->status_raw;
	if (fields == NULL)
		return true;
	it = JsonbIteratorInit(fields);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;
		JsonbValue	val;
		ObField		f;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &val, true);
		f = onboarding_field_from_name(name);
		if (f == OB_NFIELDS)
			continue;
		if (val.type == jbvNull)
			first->carried[f] = OB_CARRIED_NULL;
		else if (val.type == jbvString)
		{
			char	   *text = pnstrdup(val.val.string.val, val.val.string.len);

			if (!onboarding_field_from_text(f, text, &first->values[f]))
				return onboarding_decide(d, OB_INVALID, "direct_update field %s \"%s\" is not a value of its column",
										 name, onboarding_clip(text, 200));
			first->carried[f] = OB_CARRIED;
		}
	}
	return true;
}

/*
 * Detect the provider (unless the caller gave it), the event, subject,
 * status and time, and the effects.  Returns false, with d->decided and an
 * outcome set, when the delivery cannot go further.
 */
bool
onboarding_detect(ObDelivery *d)
{
	JsonbContainer *root;

	Assert(d->payload != NULL);
	root = &d->payload->root;
	if (!JsonContainerIsObject(root))
	{
		if (d->forced)
			return onboarding_decide(d, OB_INVALID, "force_status body is not an object");
		return onboarding_decide(d, OB_UNRECOGNIZED, "body is a JSON %s, not an object",
						 JsonContainerIsArray(root) && !JsonContainerIsScalar(root) ?
						 "array" : "scalar");
	}

	if (d->forced)
	{
		char	   *kind = onboarding_json_string(root, "kind");

		if (kind != NULL && strcmp(kind, "direct_update") == 0)
			return detect_direct_update(d, root);
		return detect_forced(d, root);
	}

	return onboarding_extract(d, root);
}

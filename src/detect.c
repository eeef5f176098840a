/*-------------------------------------------------------------------------
 *
 * detect.c
 *		Work out what a delivery is: provider, event, subject, status, time,
 *		and the state changes it asks for.
 *
 * One function per provider reads the fields SPEC §5 names, each through
 * the shape-checking accessors of jsonutil.c, and turns the body into a
 * list of effects (entity, key, provider status, fields).  Nothing here
 * knows what a status means: classification against onboarding.status_map
 * happens in rules.c.  A body of no known shape is "unrecognized"; a known
 * event missing its key or status is "invalid".  Unknown extra fields are
 * ignored, so a provider adding fields never breaks ingestion.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include <ctype.h>

#include "utils/builtins.h"
#include "utils/jsonb.h"

/* Fitbank DocumentType codes (SPEC §5); any other code is "other". */
static const char *const fitbank_document_types[] = {
	"identity_front",			/* 0 */
	"cpf",						/* 1 */
	"proof_of_address",			/* 2 */
	"cnh",						/* 3 */
	"cnpj",						/* 4 */
	"contract",					/* 5 */
	"power_of_attorney",		/* 6 */
	"identity_back",			/* 7 */
	"other",					/* 8: DocumentError */
	NULL,						/* 9: not assigned */
	"identity",					/* 10 */
	NULL,						/* 11: not assigned */
	"kyc_report",				/* 12 */
	"other",					/* 13 */
	"selfie",					/* 14 */
	"election_minutes",			/* 15 */
	"cnh_back",					/* 16 */
};

/* Celcoin file types (body.files[].type) and the document type each means. */
static const struct
{
	const char *code;
	const char *type;
}			celcoin_document_types[] = {
	{"RG_FRONT", "identity_front"},
	{"RG_BACK", "identity_back"},
	{"RG", "identity"},
	{"CNH_FRONT", "cnh"},
	{"CNH", "cnh"},
	{"CNH_BACK", "cnh_back"},
	{"SELFIE", "selfie"},
	{"CPF", "cpf"},
	{"CNPJ", "cnpj"},
	{"PROOF_OF_ADDRESS", "proof_of_address"},
	{"CONTRACT", "contract"},
	{"SOCIAL_CONTRACT", "contract"},
	{"POWER_OF_ATTORNEY", "power_of_attorney"},
	{"ELECTION_MINUTES", "election_minutes"},
	{"KYC_REPORT", "kyc_report"},
};

/* A new effect for entity/key, appended to the delivery's list. */
static ObEffect *
detect_effect(ObDelivery *d, ObEntity entity, char *key, const char *rule_event,
			  char *status_raw, bool primary)
{
	ObEffect   *e = palloc0(sizeof(ObEffect));

	e->entity = entity;
	e->key = key;
	e->rule_event = rule_event;
	e->status_raw = status_raw;
	e->primary = primary;
	d->effects = lappend(d->effects, e);
	return e;
}

/* A string or number field, NULL when empty: providers send "" for "none". */
static char *
detect_text(JsonbContainer *c, const char *key)
{
	char	   *s = onboarding_json_text(c, key);

	if (s != NULL && s[0] == '\0')
		return NULL;
	return s;
}

/*
 * Record a taxpayer number on an effect: tax_id_raw as sent, tax_id when it
 * is a valid CPF or CNPJ.  An invalid number never fails the delivery; the
 * detail says why it was not kept as a taxid.
 */
static void
detect_taxpayer(ObDelivery *d, ObEffect *e, char *raw)
{
	int64		value;
	const char *problem;

	if (raw == NULL)
		return;
	e->fields[OB_F_TAX_ID_RAW] = raw;
	problem = onboarding_taxid_parse(raw, strlen(raw), &value);
	if (problem == NULL)
	{
		char	   *buf = palloc(OB_TAXID_BUFLEN);

		onboarding_taxid_to_cstring(value, buf);
		e->fields[OB_F_TAX_ID] = buf;
	}
	else
		onboarding_note(d, "tax id \"%s\" kept raw: %s", raw, problem);
}

/*
 * A key made of a taxpayer number: the canonical form when valid, else the
 * text as sent with mask characters removed (SPEC §5).
 */
static char *
detect_taxpayer_key(const char *raw)
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

/* Read the event time from field name (string) and set d->event_at. */
static void
detect_time(ObDelivery *d, JsonbContainer *c, const char *name)
{
	JsonbValue *v = onboarding_json_get(c, name);
	char	   *s;

	if (v == NULL || v->type == jbvNull)
		return;
	if (v->type != jbvString)
	{
		onboarding_note(d, "%s is %s, not a time; treated as absent", name, onboarding_json_type_name(v));
		return;
	}
	s = pnstrdup(v->val.string.val, v->val.string.len);
	switch (onboarding_parse_time(s, &d->event_at))
	{
		case OB_TIME_OK:
			d->has_event_at = true;
			break;
		case OB_TIME_SENTINEL:
			break;
		case OB_TIME_BAD:
			onboarding_note(d, "%s \"%s\" is not a time; treated as absent", name, s);
			break;
	}
}

/* Read a time-valued field into an effect field as ISO text (NULL if absent or bad). */
static void
detect_time_field(ObDelivery *d, ObEffect *e, ObField f, JsonbContainer *c, const char *name)
{
	char	   *s = onboarding_json_string(c, name);
	TimestampTz t;

	if (s == NULL || s[0] == '\0')
		return;
	switch (onboarding_parse_time(s, &t))
	{
		case OB_TIME_OK:
			e->fields[f] = onboarding_time_text(t);
			break;
		case OB_TIME_SENTINEL:
			break;
		case OB_TIME_BAD:
			onboarding_note(d, "%s \"%s\" is not a time; ignored", name, s);
			break;
	}
}

/*
 * The status field: a string or a number (as decimal text).  Anything else
 * makes the delivery invalid.
 */
static char *
detect_status(ObDelivery *d, JsonbContainer *c, const char *name)
{
	JsonbValue *v = onboarding_json_get(c, name);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString && v->type != jbvNumeric)
	{
		onboarding_note(d, "%s is %s", name, onboarding_json_type_name(v));
		return NULL;
	}
	return onboarding_json_scalar_text(v);
}

/* ------------------------------------------------------------------------
 * QI Tech: webhook_type names the event; everything is about an account.
 * ------------------------------------------------------------------------
 */
static bool
detect_qitech(ObDelivery *d, JsonbContainer *root)
{
	JsonbContainer *data = onboarding_json_object(root, "data");
	JsonbContainer *info = onboarding_json_object(data, "account_info");
	JsonbContainer *owner = onboarding_json_object(data, "account_owner");
	ObEffect   *e;

	d->event_type = onboarding_json_string(root, "webhook_type");
	detect_time(d, root, "event_datetime");
	if (d->event_type == NULL)
		return onboarding_decide(d, OB_UNRECOGNIZED, "QI Tech body without a string webhook_type");

	d->subject = detect_text(root, "key");
	if (d->subject == NULL)
		d->subject = detect_text(data, "account_request_key");
	d->status_raw = detect_status(d, root, "status");
	if (d->status_raw == NULL)
		d->status_raw = detect_status(d, data, "status");

	if (strcmp(d->event_type, "account_request.status_change") != 0 &&
		strcmp(d->event_type, "account") != 0)
		return onboarding_decide(d, OB_UNRECOGNIZED,
						 "QI Tech webhook_type \"%s\" is not an account-opening event",
						 d->event_type);
	if (d->subject == NULL)
		return onboarding_decide(d, OB_INVALID, "QI Tech %s without key or data.account_request_key",
						 d->event_type);
	if (d->status_raw == NULL)
		return onboarding_decide(d, OB_INVALID, "QI Tech %s without status or data.status",
						 d->event_type);

	e = detect_effect(d, OB_ACCOUNT, d->subject, d->event_type, d->status_raw, true);
	e->fields[OB_F_BRANCH] = detect_text(info, "account_branch");
	e->fields[OB_F_NUMBER] = detect_text(info, "account_number");
	e->fields[OB_F_DIGIT] = detect_text(info, "account_digit");
	e->fields[OB_F_BANK] = detect_text(info, "financial_institution_code");
	e->fields[OB_F_HOLDER_NAME] = detect_text(owner, "name");
	e->fields[OB_F_REASON] = detect_text(root, "rejection_reason");
	detect_taxpayer(d, e, detect_text(owner, "document_number"));
	return true;
}

/* ------------------------------------------------------------------------
 * Fitbank: Method names the event.
 * ------------------------------------------------------------------------
 */

/* PartnerId and BusinessUnitId, kept on every Fitbank row. */
static void
detect_fitbank_tenant(ObEffect *e, JsonbContainer *root)
{
	e->fields[OB_F_PARTNER_ID] = detect_text(root, "PartnerId");
	e->fields[OB_F_BUSINESS_UNIT_ID] = detect_text(root, "BusinessUnitId");
	if (e->fields[OB_F_BUSINESS_UNIT_ID] == NULL)
		e->fields[OB_F_BUSINESS_UNIT_ID] = detect_text(root, "BusinessUnitld");
}

/* The taxpayer field, in either spelling the documents use. */
static char *
detect_fitbank_taxnumber(JsonbContainer *c)
{
	char	   *s = detect_text(c, "TaxNumber");

	return s != NULL ? s : detect_text(c, "Taxnumber");
}

/* UpdateAccount → account keyed by AccountKey, else by the taxpayer number. */
static bool
detect_fitbank_account(ObDelivery *d, JsonbContainer *root)
{
	JsonbContainer *spb = onboarding_json_object(root, "SpbAccount");
	char	   *taxnumber = detect_fitbank_taxnumber(root);
	char	   *enabled;
	ObEffect   *e;
	static const char *const bankfields[][2] = {
		{"Bank", NULL}, {"BankBranch", NULL}, {"BankAccount", NULL}, {"BankAccountDigit", NULL}
	};
	static const ObField bankslots[] = {OB_F_BANK, OB_F_BRANCH, OB_F_NUMBER, OB_F_DIGIT};

	d->subject = detect_text(root, "AccountKey");
	if (d->subject == NULL && taxnumber != NULL)
		d->subject = detect_taxpayer_key(taxnumber);
	d->status_raw = detect_status(d, root, "AccountConditionType");
	if (d->subject == NULL)
		return onboarding_decide(d, OB_INVALID, "Fitbank UpdateAccount without AccountKey or TaxNumber");
	if (d->status_raw == NULL)
		return onboarding_decide(d, OB_INVALID, "Fitbank UpdateAccount without AccountConditionType");

	e = detect_effect(d, OB_ACCOUNT, d->subject, "UpdateAccount", d->status_raw, true);
	detect_fitbank_tenant(e, root);
	detect_taxpayer(d, e, taxnumber);
	for (int i = 0; i < lengthof(bankslots); i++)
	{
		e->fields[bankslots[i]] = detect_text(root, bankfields[i][0]);
		if (e->fields[bankslots[i]] == NULL)
			e->fields[bankslots[i]] = detect_text(spb, bankfields[i][0]);
	}
	enabled = detect_text(root, "AccountStatus");
	if (enabled != NULL)
	{
		if (strcmp(enabled, "1") == 0)
			e->fields[OB_F_ENABLED] = "true";
		else if (strcmp(enabled, "0") == 0)
			e->fields[OB_F_ENABLED] = "false";
		else
			onboarding_note(d, "AccountStatus \"%s\" is neither 0 nor 1; enabled left unchanged", enabled);
	}
	return true;
}

/*
 * UpdatePersonDocument, and any Method containing "Signer" with a Document
 * object → document keyed by DocumentKey, else <taxpayer>:<type>[:signer].
 */
static bool
detect_fitbank_document(ObDelivery *d, JsonbContainer *root, JsonbContainer *doc, bool signer)
{
	JsonbContainer *account = onboarding_json_object(root, "Account");
	char	   *taxnumber = detect_fitbank_taxnumber(doc);
	char	   *typecode = detect_text(doc, "DocumentType");
	const char *type = "other";
	ObEffect   *e;

	if (taxnumber == NULL)
		taxnumber = detect_fitbank_taxnumber(account);
	if (taxnumber == NULL)
		taxnumber = detect_fitbank_taxnumber(root);

	d->subject = detect_text(doc, "DocumentKey");
	if (d->subject == NULL && taxnumber != NULL && typecode != NULL)
		d->subject = psprintf("%s:%s%s", detect_taxpayer_key(taxnumber), typecode,
							  signer ? ":signer" : "");
	d->status_raw = detect_status(d, doc, "DocumentStatus");
	if (d->subject == NULL)
		return onboarding_decide(d, OB_INVALID,
						 "Fitbank %s without Document.DocumentKey, or a TaxNumber and DocumentType to key it by",
						 d->event_type);
	if (d->status_raw == NULL)
		return onboarding_decide(d, OB_INVALID, "Fitbank %s without Document.DocumentStatus", d->event_type);

	if (typecode != NULL)
	{
		char	   *end;
		long		code = strtol(typecode, &end, 10);

		if (*end == '\0' && code >= 0 && code < lengthof(fitbank_document_types) &&
			fitbank_document_types[code] != NULL)
			type = fitbank_document_types[code];
		else
			onboarding_note(d, "DocumentType \"%s\" is not a known code; typed as other", typecode);
	}

	e = detect_effect(d, OB_DOCUMENT, d->subject, "UpdatePersonDocument", d->status_raw, true);
	detect_fitbank_tenant(e, root);
	detect_taxpayer(d, e, taxnumber);
	e->fields[OB_F_DOCUMENT_TYPE] = (char *) (typecode != NULL ? type : NULL);
	e->fields[OB_F_DOCUMENT_TYPE_RAW] = typecode;
	e->fields[OB_F_SIGNER] = signer ? "true" : "false";
	e->fields[OB_F_ACCOUNT_KEY] = detect_text(account, "AccountKey");
	e->fields[OB_F_FILE_NAME] = detect_text(doc, "FileName");
	e->fields[OB_F_REASON] = detect_text(doc, "Reason");
	if (e->fields[OB_F_REASON] == NULL)
		e->fields[OB_F_REASON] = detect_text(doc, "PendingReason");
	e->fields[OB_F_MESSAGE] = detect_text(doc, "Message");
	detect_time_field(d, e, OB_F_EXPIRES_AT, doc, "ExpirationDate");
	return true;
}

/* UpdatePersonCondition → the person's proposal, keyed by the taxpayer number. */
static bool
detect_fitbank_condition(ObDelivery *d, JsonbContainer *root)
{
	char	   *taxnumber = detect_fitbank_taxnumber(root);
	JsonbValue *keys = onboarding_json_get(root, "AccountsKey");
	ObEffect   *e;

	if (taxnumber != NULL)
		d->subject = detect_taxpayer_key(taxnumber);
	d->status_raw = detect_status(d, root, "MessageClassification");
	if (d->subject == NULL)
		return onboarding_decide(d, OB_INVALID, "Fitbank UpdatePersonCondition without TaxNumber");
	if (d->status_raw == NULL)
		return onboarding_decide(d, OB_INVALID, "Fitbank UpdatePersonCondition without MessageClassification");

	e = detect_effect(d, OB_PROPOSAL, d->subject, "UpdatePersonCondition", d->status_raw, true);
	detect_fitbank_tenant(e, root);
	detect_taxpayer(d, e, taxnumber);
	e->fields[OB_F_MESSAGE] = detect_text(root, "Message");
	e->fields[OB_F_PERSON_TYPE] = (e->fields[OB_F_TAX_ID] == NULL) ? NULL :
		(strlen(e->fields[OB_F_TAX_ID]) == 11 ? "PF" : "PJ");
	if (keys != NULL && keys->type == jbvBinary && JsonContainerIsArray(keys->val.binary.data))
		e->fields[OB_F_ACCOUNTS_KEY] = JsonbToCString(NULL, keys->val.binary.data,
													  keys->val.binary.len);
	return true;
}

/* UpdateCloseAccount → closure keyed by AccountKey; approved also closes the account. */
static bool
detect_fitbank_closure(ObDelivery *d, JsonbContainer *root)
{
	ObEffect   *e;

	d->subject = detect_text(root, "AccountKey");
	d->status_raw = detect_status(d, root, "CloseAccountInformationStatus");
	if (d->subject == NULL)
		return onboarding_decide(d, OB_INVALID, "Fitbank UpdateCloseAccount without AccountKey");
	if (d->status_raw == NULL)
		return onboarding_decide(d, OB_INVALID, "Fitbank UpdateCloseAccount without CloseAccountInformationStatus");

	e = detect_effect(d, OB_CLOSURE, d->subject, "UpdateCloseAccount", d->status_raw, true);
	detect_fitbank_tenant(e, root);
	e->fields[OB_F_MESSAGE] = detect_text(root, "Message");

	/* the account side: status_map says which closure statuses touch it */
	e = detect_effect(d, OB_ACCOUNT, d->subject, "UpdateCloseAccount", d->status_raw, false);
	detect_fitbank_tenant(e, root);
	return true;
}

/* Fitbank: dispatch on Method. */
static bool
detect_fitbank(ObDelivery *d, JsonbContainer *root)
{
	JsonbContainer *doc;

	d->event_type = onboarding_json_string(root, "Method");
	detect_time(d, root, "SendDate");
	if (d->event_type == NULL)
		return onboarding_decide(d, OB_UNRECOGNIZED, "Fitbank body without a string Method");

	doc = onboarding_json_object(root, "Document");
	if (strcmp(d->event_type, "UpdateAccount") == 0)
		return detect_fitbank_account(d, root);
	if (strcmp(d->event_type, "UpdatePersonDocument") == 0 && doc != NULL)
		return detect_fitbank_document(d, root, doc, false);
	if (strstr(d->event_type, "Signer") != NULL && doc != NULL)
		return detect_fitbank_document(d, root, doc, true);
	if (strcmp(d->event_type, "UpdatePersonCondition") == 0)
		return detect_fitbank_condition(d, root);
	if (strcmp(d->event_type, "UpdateCloseAccount") == 0)
		return detect_fitbank_closure(d, root);
	if (strcmp(d->event_type, "UpdatePersonDocument") == 0)
		return onboarding_decide(d, OB_INVALID, "Fitbank UpdatePersonDocument without a Document object");
	return onboarding_decide(d, OB_UNRECOGNIZED, "Fitbank Method \"%s\" is not an onboarding event",
					 d->event_type);
}

/* ------------------------------------------------------------------------
 * Celcoin: entity names the event; body carries the fields.
 * ------------------------------------------------------------------------
 */

/* Proposal fields every Celcoin KYC event carries. */
static void
detect_celcoin_proposal_fields(ObDelivery *d, ObEffect *e, JsonbContainer *body)
{
	char	   *type = detect_text(body, "proposalType");

	e->fields[OB_F_CLIENT_CODE] = detect_text(body, "clientCode");
	e->fields[OB_F_PERSON_TYPE] = type;
	detect_taxpayer(d, e, detect_text(body, "documentNumber"));
}

/* One onboarding-file document: <proposalId>:<type>, status "sent". */
static void
detect_celcoin_file(ObDelivery *d, JsonbContainer *body, JsonbContainer *file)
{
	char	   *code = detect_text(file, "type");
	const char *type = "other";
	ObEffect   *e;

	if (code == NULL)
		code = "FILE";
	for (int i = 0; i < lengthof(celcoin_document_types); i++)
		if (pg_strcasecmp(code, celcoin_document_types[i].code) == 0)
			type = celcoin_document_types[i].type;

	e = detect_effect(d, OB_DOCUMENT, psprintf("%s:%s", d->subject, code),
					  "onboarding-file", d->status_raw, true);
	e->fields[OB_F_DOCUMENT_TYPE] = (char *) type;
	e->fields[OB_F_DOCUMENT_TYPE_RAW] = code;
	e->fields[OB_F_SIGNER] = "false";
	e->fields[OB_F_URL] = detect_text(file, "url");
	detect_time_field(d, e, OB_F_EXPIRES_AT, file, "expirationTime");
	detect_taxpayer(d, e, detect_text(body, "documentNumber"));
}

/* Celcoin: dispatch on entity; checks, files, proposal, create, account status. */
static bool
detect_celcoin(ObDelivery *d, JsonbContainer *root)
{
	JsonbContainer *body = onboarding_json_object(root, "body");
	JsonbContainer *account;
	const char *event;
	ObEffect   *e;
	bool		check;

	d->event_type = onboarding_json_string(root, "entity");
	if (onboarding_json_get(root, "createTimestamp") != NULL)
		detect_time(d, root, "createTimestamp");
	else
		detect_time(d, root, "createTimeStamp");
	d->status_raw = detect_status(d, root, "status");
	if (d->event_type == NULL)
		return onboarding_decide(d, OB_UNRECOGNIZED, "Celcoin body without a string entity");
	if (body == NULL)
		return onboarding_decide(d, OB_INVALID, "Celcoin %s whose body is %s, not an object",
						 d->event_type, onboarding_json_type_name(onboarding_json_get(root, "body")));
	event = d->event_type;
	check = strcmp(event, "onboarding-backgroundcheck") == 0 ||
		strcmp(event, "onboarding-documentscopy") == 0;

	if (check || strcmp(event, "onboarding-proposal") == 0 ||
		strcmp(event, "onboarding-file") == 0)
		d->subject = detect_text(body, "proposalId");
	else if (strcmp(event, "onboarding-create") == 0 || strcmp(event, "account-status") == 0)
		d->subject = detect_text(body, "onboardingId");
	else
		return onboarding_decide(d, OB_UNRECOGNIZED, "Celcoin entity \"%s\" is not an onboarding event",
						 event);

	if (d->subject == NULL)
		return onboarding_decide(d, OB_INVALID, "Celcoin %s without body.%s", event,
						 strcmp(event, "onboarding-create") == 0 ||
						 strcmp(event, "account-status") == 0 ? "onboardingId" : "proposalId");

	if (strcmp(event, "onboarding-file") == 0)
	{
		JsonbContainer *files = onboarding_json_array(body, "files");

		if (files != NULL)
		{
			JsonbIterator *it = JsonbIteratorInit(files);
			JsonbValue	v;
			JsonbIteratorToken tok;
			int			skipped = 0;

			while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			{
				if (tok != WJB_ELEM)
					continue;
				if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
					detect_celcoin_file(d, body, v.val.binary.data);
				else
					skipped++;
			}
			if (skipped > 0)
				onboarding_note(d, "%d element%s of body.files not an object; skipped",
						skipped, skipped == 1 ? "" : "s");
		}
		else if (detect_text(body, "url") != NULL)
			detect_celcoin_file(d, body, body);
		if (d->effects == NIL)
			return onboarding_decide(d, OB_INVALID, "Celcoin onboarding-file without body.files or body.url");
		return true;
	}

	if (d->status_raw == NULL)
		return onboarding_decide(d, OB_INVALID, "Celcoin %s without status", event);

	if (check)
	{
		bool		background = strcmp(event, "onboarding-backgroundcheck") == 0;

		e = detect_effect(d, background ? OB_BACKGROUND_CHECK : OB_DOCUMENTSCOPY,
						  d->subject, event, d->status_raw, true);
		/* the check moves the proposal too (status_map rows of entity proposal) */
		e = detect_effect(d, OB_PROPOSAL, d->subject, event, d->status_raw, false);
		detect_celcoin_proposal_fields(d, e, body);
	}
	else if (strcmp(event, "onboarding-proposal") == 0)
	{
		e = detect_effect(d, OB_PROPOSAL, d->subject, event, d->status_raw, true);
		detect_celcoin_proposal_fields(d, e, body);
	}
	else if (strcmp(event, "onboarding-create") == 0)
	{
		char	   *proposal = detect_text(body, "proposalId");

		account = onboarding_json_object(body, "account");
		e = detect_effect(d, OB_ACCOUNT, d->subject, event, d->status_raw, true);
		e->fields[OB_F_BRANCH] = detect_text(account, "branch");
		e->fields[OB_F_NUMBER] = detect_text(account, "account");
		e->fields[OB_F_HOLDER_NAME] = detect_text(account, "name");
		e->fields[OB_F_BANK] = detect_text(account, "ispb");
		detect_taxpayer(d, e, detect_text(account, "documentNumber"));

		e = detect_effect(d, OB_PROPOSAL, proposal != NULL ? proposal : d->subject,
						  event, d->status_raw, false);
		e->fields[OB_F_CLIENT_CODE] = detect_text(body, "clientCode");
		e->fields[OB_F_ACCOUNT_KEY] = d->subject;
	}
	else						/* account-status */
	{
		e = detect_effect(d, OB_ACCOUNT, d->subject, event, d->status_raw, true);
		e->fields[OB_F_REASON] = detect_text(body, "reason");
		e->fields[OB_F_NUMBER] = detect_text(body, "account");
		detect_taxpayer(d, e, detect_text(body, "documentNumber"));
	}
	return true;
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
	e = detect_effect(d, kind, d->subject, "force_status", d->status_raw, true);
	/* a label of the entity's enum, or the override is invalid */
	e->status = onboarding_status_label(onboarding_entity_graph(kind), d->status_raw);
	if (e->status == NULL)
		return onboarding_decide(d, OB_INVALID, "force_status status \"%s\" is not a status of %s",
						 d->status_raw, entity);
	e->fields[OB_F_REASON] = onboarding_json_string(root, "reason");
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
						  pnstrdup(val.val.string.val, val.val.string.len), true);
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
			first->fields[f] = (char *) onboarding_field_null;
		else if (val.type == jbvString)
			first->fields[f] = pnstrdup(val.val.string.val, val.val.string.len);
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

	if (d->provider == OB_PROVIDER_NONE)
	{
		JsonbValue *body = onboarding_json_get(root, "body");

		if (onboarding_json_string(root, "webhook_type") != NULL)
			d->provider = OB_QITECH;
		else if (onboarding_json_string(root, "Method") != NULL)
			d->provider = OB_FITBANK;
		else if (onboarding_json_string(root, "entity") != NULL && body != NULL &&
				 body->type == jbvBinary && JsonContainerIsObject(body->val.binary.data))
			d->provider = OB_CELCOIN;
		else
			return onboarding_decide(d, OB_UNRECOGNIZED,
							 "no provider: the body has no string webhook_type (QI Tech), "
							 "no string Method (Fitbank), and no string entity with an object body (Celcoin)");
	}

	switch (d->provider)
	{
		case OB_QITECH:
			return detect_qitech(d, root);
		case OB_FITBANK:
			return detect_fitbank(d, root);
		case OB_CELCOIN:
			return detect_celcoin(d, root);
		default:
			elog(ERROR, "unexpected provider %d", (int) d->provider);
	}
	return false;				/* keep compiler quiet */
}

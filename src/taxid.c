/*-------------------------------------------------------------------------
 *
 * taxid.c
 *		The taxid base type: a Brazilian taxpayer number, either a CPF (11
 *		digits) or a CNPJ (14 characters, the alphanumeric CNPJ of IN RFB
 *		2.229/2024 included).
 *
 * This one file is the library of the extension taxid (taxid.so), which
 * owns the type, and is linked into onboarding.so as well: the pipeline
 * parses tax ids with it, onboarding's taxid_* functions are its entry
 * points, and the 0.1.0 install script names them in onboarding's library.
 * onboarding.taxid is a domain over the type since 0.2.0.  The two copies
 * are built from the same object, so whichever one a backend binds a
 * symbol to behaves alike.
 *
 * A taxid is stored as an int8 (see onboarding.h): a CPF as its 9 base
 * digits, a CNPJ as TAXID_CNPJ_OFFSET plus its 12 base characters read as a
 * base-36 number.  Check digits are verified on input and recomputed on
 * output, so every stored value is a valid number.  Every CPF sorts before
 * every CNPJ, and within each kind the integer order is the order of the
 * canonical text.
 *
 * Input accepts the bare form or any placement of the mask characters
 * . / -, blanks around the number and lower-case letters.  Every rule that
 * can fail has its own sentence, returned by onboarding_taxid_parse() so
 * that ingestion can record it, and raised by the input function as the
 * detail of an invalid_text_representation error.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include "common/hashfn.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

/* The magic block of both libraries; see the banner. */
PG_MODULE_MAGIC;

#define TAXID_CPF_LEN		11
#define TAXID_CNPJ_LEN		14
#define TAXID_BASE_CPF		9		/* CPF digits before the check digits */
#define TAXID_BASE_CNPJ		12		/* CNPJ characters before the check digits */

/* A CNPJ is stored as this offset plus its base read in base 36. */
#define TAXID_CNPJ_OFFSET	INT64CONST(1000000000)
/* 10^9 + 36^12 - 1: the largest value a taxid can hold. */
#define TAXID_MAX			INT64CONST(4738381339321616895)

/* Hints, shared by the input function and the receive function. */
#define TAXID_HINT_EMPTY	"Use NULL for an unknown taxpayer number."
#define TAXID_HINT_ZEROS	"A number stored as an integer may have lost its leading zeros."
#define TAXID_HINT_CHARS	"A CPF or CNPJ may contain digits, letters, the mask characters . / - and blanks around the number."
#define TAXID_HINT_LETTERS	"Only a CNPJ may contain letters, and only in its first 12 characters."

static const int taxid_cnpj_weights1[TAXID_BASE_CNPJ] =
{5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2};
static const int taxid_cnpj_weights2[TAXID_BASE_CNPJ + 1] =
{6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2};

/*
 * Blanks accepted around a number: space, tab, newline, carriage return,
 * vertical tab and form feed.
 */
static inline bool
taxid_is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\v' || c == '\f';
}

/* Mask characters, ignored wherever they appear. */
static inline bool
taxid_is_mask(unsigned char c)
{
	return c == '.' || c == '/' || c == '-';
}

/* ASCII digit, whatever the locale says about other bytes. */
static inline bool
taxid_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* ASCII letter of either case (no locale: 'É' is not a letter here). */
static inline bool
taxid_is_letter(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The modulus-11 rule shared by CPF and CNPJ: remainder < 2 gives 0. */
static inline int
taxid_mod11(int sum)
{
	int			remainder = sum % 11;

	return remainder < 2 ? 0 : 11 - remainder;
}

/*
 * Write the two check digits of a CPF whose 9 base digits are base[0..8]
 * into dv[0..1]: weights 10..2 for the first, 11..2 for the second.
 */
static void
taxid_cpf_check_digits(const char *base, char *dv)
{
	int			sum1 = 0;
	int			sum2 = 0;
	int			d1;
	int			i;

	for (i = 0; i < TAXID_BASE_CPF; i++)
	{
		int			digit = base[i] - '0';

		sum1 += digit * (10 - i);
		sum2 += digit * (11 - i);
	}
	d1 = taxid_mod11(sum1);
	sum2 += d1 * 2;
	dv[0] = (char) ('0' + d1);
	dv[1] = (char) ('0' + taxid_mod11(sum2));
}

/*
 * Write the two check digits of a CNPJ whose 12 base characters are
 * base[0..11] (digits or upper-case letters) into dv[0..1].  Each character
 * is valued as its ASCII code minus 48, so '0'..'9' are 0..9 and 'A' is 17,
 * which keeps the classic numeric CNPJ rule unchanged.
 */
static void
taxid_cnpj_check_digits(const char *base, char *dv)
{
	int			sum1 = 0;
	int			sum2 = 0;
	int			d1;
	int			i;

	for (i = 0; i < TAXID_BASE_CNPJ; i++)
	{
		int			value = (unsigned char) base[i] - '0';

		sum1 += value * taxid_cnpj_weights1[i];
		sum2 += value * taxid_cnpj_weights2[i];
	}
	d1 = taxid_mod11(sum1);
	sum2 += d1 * taxid_cnpj_weights2[TAXID_BASE_CNPJ];
	dv[0] = (char) ('0' + d1);
	dv[1] = (char) ('0' + taxid_mod11(sum2));
}

/*
 * The sentence for a character that may not appear in a number, at the
 * given 1-based character position.  p points at the character, with
 * avail bytes left in the input.
 */
static const char *
taxid_bad_character(const char *p, size_t avail, int position)
{
	unsigned char c = (unsigned char) *p;

	if (taxid_is_blank(c))
		return psprintf("a blank at position %d is not allowed; blanks are accepted only around the number",
						position);
	if (IS_HIGHBIT_SET(c))
	{
		int			mblen = pg_mblen(p);

		if (mblen > (int) avail)
			mblen = (int) avail;
		return psprintf("character \"%.*s\" at position %d is not allowed in a CPF or CNPJ",
						mblen, p, position);
	}
	if (c == '"')
		return psprintf("a double quote at position %d is not allowed in a CPF or CNPJ",
						position);
	if (c < 0x20 || c == 0x7f)
		return psprintf("character with code 0x%02X at position %d is not allowed in a CPF or CNPJ",
						c, position);
	return psprintf("character \"%c\" at position %d is not allowed in a CPF or CNPJ",
					c, position);
}

/*
 * Parse a CPF or CNPJ.  On success store the value in *result and return
 * NULL; otherwise return the sentence saying which rule failed and set
 * *hint to a hint for the error report (or NULL).  Never raises, except
 * when out of memory.
 *
 * Character positions in the sentences are 1-based and count from the very
 * start of str, blanks included, so that they point into the text the user
 * sees in the error message.
 */
static const char *
taxid_parse_internal(const char *str, size_t len, int64 *result,
					 const char **hint)
{
	char		chars[TAXID_CNPJ_LEN];	/* significant characters, upper case */
	char		written[TAXID_CNPJ_LEN];	/* the same, as written */
	int			position[TAXID_CNPJ_LEN];	/* and their positions */
	char		dv[2];
	size_t		start = 0;
	size_t		end = len;
	size_t		i;
	int			count = 0;
	bool		letters = false;
	int64		value = 0;

	*hint = NULL;

	while (start < end && taxid_is_blank((unsigned char) str[start]))
		start++;
	while (end > start && taxid_is_blank((unsigned char) str[end - 1]))
		end--;
	if (start == end)
	{
		*hint = TAXID_HINT_EMPTY;
		return "the value is empty";
	}

	/*
	 * Keep the significant characters, up to 14 of them, and count them
	 * all.  Every byte before the first rejected one is ASCII, so the byte
	 * offset plus one is the character position.
	 */
	for (i = start; i < end; i++)
	{
		unsigned char c = (unsigned char) str[i];

		if (taxid_is_mask(c))
			continue;
		if (!taxid_is_digit(c) && !taxid_is_letter(c))
		{
			*hint = TAXID_HINT_CHARS;
			return taxid_bad_character(str + i, end - i, (int) i + 1);
		}
		if (taxid_is_letter(c))
			letters = true;
		if (count < TAXID_CNPJ_LEN)
		{
			chars[count] = (char) pg_ascii_toupper(c);
			written[count] = (char) c;
			position[count] = (int) i + 1;
		}
		count++;
	}

	if (count == TAXID_CPF_LEN)
	{
		bool		repeated = true;

		for (i = 0; i < TAXID_CPF_LEN; i++)
		{
			if (!taxid_is_digit((unsigned char) chars[i]))
			{
				*hint = TAXID_HINT_LETTERS;
				return psprintf("a CPF contains only digits, but the letter \"%c\" is at position %d",
								written[i], position[i]);
			}
			if (chars[i] != chars[0])
				repeated = false;
		}
		if (repeated)
			return "a CPF made of one repeated digit is not valid";
		taxid_cpf_check_digits(chars, dv);
		if (dv[0] != chars[9] || dv[1] != chars[10])
			return "the CPF check digits do not match";
		for (i = 0; i < TAXID_BASE_CPF; i++)
			value = value * 10 + (chars[i] - '0');
		*result = value;
		return NULL;
	}

	if (count == TAXID_CNPJ_LEN)
	{
		bool		zero = true;

		for (i = TAXID_BASE_CNPJ; i < TAXID_CNPJ_LEN; i++)
		{
			if (!taxid_is_digit((unsigned char) chars[i]))
			{
				*hint = TAXID_HINT_LETTERS;
				return psprintf("a CNPJ ends in two check digits, but the letter \"%c\" is at position %d",
								written[i], position[i]);
			}
		}
		for (i = 0; i < TAXID_CNPJ_LEN; i++)
		{
			if (chars[i] != '0')
				zero = false;
		}
		if (zero)
			return "the all-zero CNPJ is not valid";
		taxid_cnpj_check_digits(chars, dv);
		if (dv[0] != chars[12] || dv[1] != chars[13])
			return "the CNPJ check digits do not match";
		for (i = 0; i < TAXID_BASE_CNPJ; i++)
		{
			char		c = chars[i];

			value = value * 36 + (taxid_is_digit((unsigned char) c) ? c - '0' : c - 'A' + 10);
		}
		*result = TAXID_CNPJ_OFFSET + value;
		return NULL;
	}

	if (count > 0 && count < TAXID_CNPJ_LEN && !letters)
		*hint = TAXID_HINT_ZEROS;
	return psprintf("the value has %d %s once blanks and mask characters are removed, but a CPF has 11 and a CNPJ 14",
					count, count == 1 ? "character" : "characters");
}

/*
 * Parse a CPF or CNPJ in any usual mask; see onboarding.h.
 */
const char *
onboarding_taxid_parse(const char *str, size_t len, int64 *result)
{
	const char *hint;

	return taxid_parse_internal(str, len, result, &hint);
}

/*
 * Write the bare canonical form of a taxid into buf (OB_TAXID_BUFLEN
 * bytes): 11 digits for a CPF, 14 characters for a CNPJ, check digits
 * recomputed.  A value outside the range parse can produce means a
 * damaged datum, hence elog.
 */
void
onboarding_taxid_to_cstring(int64 value, char *buf)
{
	int			i;

	if (value < 0 || value > TAXID_MAX)
		elog(ERROR, "taxid value " INT64_FORMAT " is out of range", value);

	if (value < TAXID_CNPJ_OFFSET)
	{
		for (i = TAXID_BASE_CPF - 1; i >= 0; i--)
		{
			buf[i] = '0' + (char) (value % 10);
			value /= 10;
		}
		taxid_cpf_check_digits(buf, buf + TAXID_BASE_CPF);
		buf[TAXID_CPF_LEN] = '\0';
	}
	else
	{
		value -= TAXID_CNPJ_OFFSET;
		for (i = TAXID_BASE_CNPJ - 1; i >= 0; i--)
		{
			int			digit = (int) (value % 36);

			buf[i] = (char) (digit < 10 ? '0' + digit : 'A' + (digit - 10));
			value /= 36;
		}
		taxid_cnpj_check_digits(buf, buf + TAXID_BASE_CNPJ);
		buf[TAXID_CNPJ_LEN] = '\0';
	}
}

/*
 * The text with blanks and mask characters removed and ASCII letters
 * upper-cased; see onboarding.h.  Blanks are removed wherever they are,
 * so the result is what the provider meant, not necessarily valid.
 */
char *
onboarding_taxid_strip(const char *str, size_t len)
{
	char	   *out = palloc(len + 1);
	size_t		n = 0;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) str[i];

		if (taxid_is_blank(c) || taxid_is_mask(c))
			continue;
		out[n++] = (char) pg_ascii_toupper(c);
	}
	out[n] = '\0';
	return out;
}

/*
 * Raise the error for an invalid number: the parse sentence becomes the
 * detail, with a capital and a period as the message style guide wants.
 * Never returns.  (No noreturn attribute: its spelling changed in
 * PostgreSQL 18, so callers initialise what they return instead.)
 */
static void
taxid_report(const char *str, const char *problem, const char *hint)
{
	char	   *detail = psprintf("%c%s.", pg_ascii_toupper((unsigned char) problem[0]),
								  problem + 1);

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s: \"%s\"",
					"taxid", str),
			 errdetail("%s", detail),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * Input function: text to taxid, raising on any invalid number.
 */
PG_FUNCTION_INFO_V1(onboarding_taxid_in);
Datum
onboarding_taxid_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int64		value = 0;
	const char *hint;
	const char *problem;

	problem = taxid_parse_internal(str, strlen(str), &value, &hint);
	if (problem)
		taxid_report(str, problem, hint);
	PG_RETURN_INT64(value);
}

/*
 * Output function: the bare canonical form.
 */
PG_FUNCTION_INFO_V1(onboarding_taxid_out);
Datum
onboarding_taxid_out(PG_FUNCTION_ARGS)
{
	char	   *buf = palloc(OB_TAXID_BUFLEN);

	onboarding_taxid_to_cstring(PG_GETARG_INT64(0), buf);
	PG_RETURN_CSTRING(buf);
}

/*
 * Binary input: the canonical text, validated exactly like text input, so a
 * client cannot smuggle in a number that text input would refuse.
 */
PG_FUNCTION_INFO_V1(onboarding_taxid_recv);
Datum
onboarding_taxid_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	char	   *str;
	int			nbytes;
	int64		value = 0;
	const char *hint;
	const char *problem;

	str = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);
	problem = taxid_parse_internal(str, (size_t) nbytes, &value, &hint);
	if (problem)
		taxid_report(str, problem, hint);
	PG_RETURN_INT64(value);
}

/*
 * Binary output: the canonical text, which stays readable and does not
 * expose the internal encoding to clients.
 */
PG_FUNCTION_INFO_V1(onboarding_taxid_send);
Datum
onboarding_taxid_send(PG_FUNCTION_ARGS)
{
	char		canonical[OB_TAXID_BUFLEN];
	StringInfoData buf;

	onboarding_taxid_to_cstring(PG_GETARG_INT64(0), canonical);
	pq_begintypsend(&buf);
	pq_sendtext(&buf, canonical, (int) strlen(canonical));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* a = b */
PG_FUNCTION_INFO_V1(onboarding_taxid_eq);
Datum
onboarding_taxid_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_GETARG_INT64(0) == PG_GETARG_INT64(1));
}

/* a <> b */
PG_FUNCTION_INFO_V1(onboarding_taxid_ne);
Datum
onboarding_taxid_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_GETARG_INT64(0) != PG_GETARG_INT64(1));
}

/* a < b: every CPF sorts before every CNPJ, each by its canonical text */
PG_FUNCTION_INFO_V1(onboarding_taxid_lt);
Datum
onboarding_taxid_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_GETARG_INT64(0) < PG_GETARG_INT64(1));
}

/* a <= b */
PG_FUNCTION_INFO_V1(onboarding_taxid_le);
Datum
onboarding_taxid_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_GETARG_INT64(0) <= PG_GETARG_INT64(1));
}

/* a > b */
PG_FUNCTION_INFO_V1(onboarding_taxid_gt);
Datum
onboarding_taxid_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_GETARG_INT64(0) > PG_GETARG_INT64(1));
}

/* a >= b */
PG_FUNCTION_INFO_V1(onboarding_taxid_ge);
Datum
onboarding_taxid_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_GETARG_INT64(0) >= PG_GETARG_INT64(1));
}

/* btree support: -1, 0 or 1 */
PG_FUNCTION_INFO_V1(onboarding_taxid_cmp);
Datum
onboarding_taxid_cmp(PG_FUNCTION_ARGS)
{
	int64		a = PG_GETARG_INT64(0);
	int64		b = PG_GETARG_INT64(1);

	PG_RETURN_INT32(a < b ? -1 : (a > b ? 1 : 0));
}

/*
 * Fold an int64 into 32 bits the way hashint8() does, so a taxid hashes
 * like the int8 it is stored as.
 */
static inline uint32
taxid_hash_fold(int64 value)
{
	uint32		lohalf = (uint32) value;
	uint32		hihalf = (uint32) (value >> 32);

	lohalf ^= (value >= 0) ? hihalf : ~hihalf;
	return lohalf;
}

/* hash support: the hash of the stored int8 */
PG_FUNCTION_INFO_V1(onboarding_taxid_hash);
Datum
onboarding_taxid_hash(PG_FUNCTION_ARGS)
{
	return hash_uint32(taxid_hash_fold(PG_GETARG_INT64(0)));
}

/* hash support: the seeded 64-bit hash of the stored int8 */
PG_FUNCTION_INFO_V1(onboarding_taxid_hash_extended);
Datum
onboarding_taxid_hash_extended(PG_FUNCTION_ARGS)
{
	return hash_uint32_extended(taxid_hash_fold(PG_GETARG_INT64(0)),
								(uint64) PG_GETARG_INT64(1));
}

/*
 * The masked form: 000.000.000-00 for a CPF, XX.XXX.XXX/XXXX-DD for a CNPJ.
 */
PG_FUNCTION_INFO_V1(onboarding_taxid_format);
Datum
onboarding_taxid_format(PG_FUNCTION_ARGS)
{
	int64		value = PG_GETARG_INT64(0);
	char		b[OB_TAXID_BUFLEN];
	char	   *masked;

	onboarding_taxid_to_cstring(value, b);
	if (value < TAXID_CNPJ_OFFSET)
		masked = psprintf("%.3s.%.3s.%.3s-%.2s", b, b + 3, b + 6, b + 9);
	else
		masked = psprintf("%.2s.%.3s.%.3s/%.4s-%.2s", b, b + 2, b + 5, b + 8, b + 12);
	PG_RETURN_TEXT_P(cstring_to_text(masked));
}

/*
 * 'cpf' or 'cnpj'.
 */
PG_FUNCTION_INFO_V1(onboarding_taxid_kind);
Datum
onboarding_taxid_kind(PG_FUNCTION_ARGS)
{
	int64		value = PG_GETARG_INT64(0);

	PG_RETURN_TEXT_P(cstring_to_text(value < TAXID_CNPJ_OFFSET ? "cpf" : "cnpj"));
}

/*
 * Whether the text is a valid CPF or CNPJ; never raises.
 */
PG_FUNCTION_INFO_V1(onboarding_taxid_is_valid);
Datum
onboarding_taxid_is_valid(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int64		value;

	PG_RETURN_BOOL(onboarding_taxid_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
										  &value) == NULL);
}

/*
 * The taxid, or NULL when the text is not a valid CPF or CNPJ.
 */
PG_FUNCTION_INFO_V1(onboarding_taxid_normalize);
Datum
onboarding_taxid_normalize(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int64		value;

	if (onboarding_taxid_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &value))
		PG_RETURN_NULL();
	PG_RETURN_INT64(value);
}

/*
 * Why the text is not a valid CPF or CNPJ (the parse sentence), or NULL
 * when it is.
 */
PG_FUNCTION_INFO_V1(onboarding_taxid_problem);
Datum
onboarding_taxid_problem(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int64		value;
	const char *problem;

	problem = onboarding_taxid_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &value);
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

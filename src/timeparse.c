/*-------------------------------------------------------------------------
 *
 * timeparse.c
 *		Read the providers' event times.
 *
 * Providers send ISO-8601-ish text: "2022-09-02 22:39:39" (space or T),
 * optional fractions of up to seven digits (.NET ticks), an optional "Z"
 * or numeric offset, and the .NET sentinel "0001-01-01T00:00:00" for "no
 * time".  Times without an offset are read in the zone the caller gives
 * (onboarding.settings.timezone, see rules.c).  Fractions beyond microseconds are rounded
 * half up.  The parser is hand-written so that a bad time is a result, not
 * an error: ingestion never fails on one.
 *
 *-------------------------------------------------------------------------
 */
#include "onboarding.h"

#include <ctype.h>

#include "datatype/timestamp.h"
#include "pgtime.h"
#include "utils/datetime.h"

/* Read exactly n digits at *p into *out and advance; false when they are not there. */
static bool
time_digits(const char **p, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) (*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/*
 * Parse a provider time; one without an offset is read in zone.  Returns
 * OB_TIME_OK and stores *result, or OB_TIME_SENTINEL for the .NET "no
 * time" value, or OB_TIME_BAD.
 */
ObTimeResult
onboarding_parse_time(const char *s, pg_tz *zone, TimestampTz *result)
{
	const char *p = s;
	struct pg_tm tm;
	int			usec = 0;
	bool		has_offset = false;
	int			offset = 0;		/* seconds east of Greenwich */
	int			tz;
	Timestamp	ts;

	memset(&tm, 0, sizeof(tm));
	while (isspace((unsigned char) *p))
		p++;

	if (!time_digits(&p, 4, &tm.tm_year) || *p++ != '-' ||
		!time_digits(&p, 2, &tm.tm_mon) || *p++ != '-' ||
		!time_digits(&p, 2, &tm.tm_mday))
		return OB_TIME_BAD;

	if (*p == 'T' || *p == 't' || *p == ' ')
	{
		p++;
		if (!time_digits(&p, 2, &tm.tm_hour) || *p++ != ':' ||
			!time_digits(&p, 2, &tm.tm_min))
			return OB_TIME_BAD;
		if (*p == ':')
		{
			p++;
			if (!time_digits(&p, 2, &tm.tm_sec))
				return OB_TIME_BAD;
			if (*p == '.' || *p == ',')
			{
				int			ndigits = 0;

				p++;
				if (!isdigit((unsigned char) *p))
					return OB_TIME_BAD;
				for (; isdigit((unsigned char) *p); p++, ndigits++)
				{
					if (ndigits < 6)
						usec = usec * 10 + (*p - '0');
					else if (ndigits == 6 && *p >= '5')
						usec++;		/* round half up; may carry into a second */
				}
				for (; ndigits < 6; ndigits++)
					usec *= 10;
			}
		}
		if (*p == 'Z' || *p == 'z')
		{
			has_offset = true;
			p++;
		}
		else if (*p == '+' || *p == '-')
		{
			int			sign = (*p == '-') ? -1 : 1;
			int			oh,
						om = 0;

			p++;
			if (!time_digits(&p, 2, &oh))
				return OB_TIME_BAD;
			if (*p == ':')
				p++;
			if (isdigit((unsigned char) *p) && !time_digits(&p, 2, &om))
				return OB_TIME_BAD;
			if (oh > 15 || om > 59)
				return OB_TIME_BAD;
			has_offset = true;
			offset = sign * (oh * SECS_PER_HOUR + om * SECS_PER_MINUTE);
		}
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		return OB_TIME_BAD;

	if (tm.tm_year == 1 && tm.tm_mon == 1 && tm.tm_mday == 1 &&
		tm.tm_hour == 0 && tm.tm_min == 0 && tm.tm_sec == 0 && usec == 0)
		return OB_TIME_SENTINEL;

	if (tm.tm_year < 1 || tm.tm_mon < 1 || tm.tm_mon > MONTHS_PER_YEAR ||
		tm.tm_mday < 1 || tm.tm_mday > day_tab[isleap(tm.tm_year)][tm.tm_mon - 1] ||
		tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
		return OB_TIME_BAD;

	/* PostgreSQL's convention: tz is seconds WEST of Greenwich */
	if (has_offset)
		tz = -offset;
	else
		tz = DetermineTimeZoneOffset(&tm, zone);

	if (tm2timestamp(&tm, 0, &tz, &ts) != 0 || !IS_VALID_TIMESTAMP(ts + usec))
		return OB_TIME_BAD;
	/* an offset may push year 1 into 1 BC: keep times within years 1 to 9999 */
	if (ts + usec < (Timestamp) (date2j(1, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)
		return OB_TIME_BAD;
	*result = (TimestampTz) (ts + usec);
	return OB_TIME_OK;
}

/*
 * A timestamp as ISO 8601 text in UTC ("2024-05-01 13:00:00.5+00"),
 * whatever the session's DateStyle and TimeZone: derived text must not
 * depend on who ran the pipeline, or rebuild() would not reproduce it.
 */
char *
onboarding_time_text(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	char	   *s;

	if (TIMESTAMP_NOT_FINITE(t) || timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup("infinity");
	s = psprintf("%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year, tm.tm_mon, tm.tm_mday,
				 tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (fsec != 0)
	{
		char	   *frac = psprintf("%06d", (int) fsec);
		int			len = 6;

		while (len > 0 && frac[len - 1] == '0')
			frac[--len] = '\0';
		s = psprintf("%s.%s", s, frac);
	}
	return psprintf("%s+00", s);
}

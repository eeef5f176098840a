# test/reliability/lib.sh — helpers shared by the reliability tests in
# test/scripts/ (load, crash, fuzz, dump_restore, privileges).  Sourced, not
# run.  test/run.sh exports what they need: PGHOST, PGPORT, PGUSER,
# ONBOARDING_PGDATA, ONBOARDING_BINDIR, ONBOARDING_RUNAS, ONBOARDING_WORK and
# ONBOARDING_SERVER_LOG.

: "${PGHOST:?run through test/run.sh (make test)}" "${ONBOARDING_PGDATA:?}" "${ONBOARDING_BINDIR:?}"
: "${ONBOARDING_RUNAS:?}" "${ONBOARDING_WORK:?}" "${ONBOARDING_SERVER_LOG:?}"

RELIABILITY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# ONBOARDING_LONG=1 runs the long versions
LONG=${ONBOARDING_LONG:-0}
# quiet notices; no statement may hang a test forever
export PGOPTIONS="-c client_min_messages=warning -c statement_timeout=900s"
export PGDATABASE=postgres

fail() { echo "FAILED: $*" >&2; exit 1; }

# psql that stops at the first error, unaligned, tuples only
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# A command run as the OS user that owns the cluster (pg_ctl must not run as root).
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u "$ONBOARDING_RUNAS" -- "$@"; else "$@"; fi
}
pg_ctl_cluster() { as_owner "$ONBOARDING_BINDIR/pg_ctl" -D "$ONBOARDING_PGDATA" "$@"; }
server_start() {
	pg_ctl_cluster -l "$ONBOARDING_SERVER_LOG" -w -t 120 start >"$ONBOARDING_WORK/pg_ctl.out" 2>&1 \
		|| { cat "$ONBOARDING_WORK/pg_ctl.out" >&2; return 1; }
}
server_is_up() { "$ONBOARDING_BINDIR/pg_isready" -q -d postgres >/dev/null 2>&1; }

# A fresh database with the extension; dropped again by drop_db.
fresh_db() {
	q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
	q -d "$1" -c "CREATE EXTENSION onboarding CASCADE"
}
drop_db() { q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }

# The server log from a mark on: log_mark before, log_since after.
log_mark() { stat -c %s "$ONBOARDING_SERVER_LOG"; }
log_since() { tail -c "+$(($1 + 1))" "$ONBOARDING_SERVER_LOG"; }

# Crashes leave these in the server log.
crash_lines() { log_since "$1" | grep -E 'terminated by signal|was terminated|PANIC|server process .* exited with exit code|all server processes terminated' || true; }

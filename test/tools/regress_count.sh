# test/tools/regress_count.sh — how test/run.sh counts one pg_regress run.
# Sourced, not run.
#
#   regress_count OUTPUT STATUS   prints "PASSED FAILED"
#
# OUTPUT is what the make target printed, STATUS its exit status.  Each
# "ok" line is a pass and each "FAILED"/"not ok" line a failure; a run that
# exited non-zero without reporting a failed test (pg_regress could not
# connect, a suite file is missing, make itself failed) counts as one
# failure, so a run that dies early can never look green.
regress_count() {
	local out=$1 status=$2 passed failed
	passed=$(grep -cE '\.\.\. ok|^ok ' "$out" || true)
	failed=$(grep -cE '\.\.\. FAILED|^not ok |\.\.\. failed' "$out" || true)
	if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1
	fi
	echo "$passed $failed"
}

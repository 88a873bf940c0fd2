# tap.sh: sourced by the shell tests (test_cli.sh, test_plan_run.sh) for TAP output.
# ok COND_EXIT_CODE DESCRIPTION prints one result; tap_done prints the plan and
# returns non-zero when a check failed.
n=0
failed=0
ok() {  # ok COND_EXIT_CODE DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}
tap_done() {
	echo "1..$n"
	[ $failed -eq 0 ]
}

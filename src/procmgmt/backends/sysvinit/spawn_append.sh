# shellcheck shell=sh disable=SC2034,SC2154
## Start the daemonized command, its output appended to the log file.
    "$@" </dev/null >>"$procmgmt_logfile" 2>&1 &
    procmgmt_pid=$!

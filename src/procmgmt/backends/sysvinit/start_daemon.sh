# shellcheck shell=sh disable=SC2154
## The end of procmgmt_start for a process that daemonizes itself; "$@"
## is the command the script set before (user switch and nice included).
    echo "Starting $procmgmt_name"
    # The daemon forks and writes its own pid file.
    procmgmt_rc=0
    "$@" </dev/null || procmgmt_rc=$?
    if [ "$procmgmt_rc" -ne 0 ]; then
        echo "$procmgmt_name: the daemon failed to start (exit status $procmgmt_rc)" >&2
        return 1
    fi
    if ! procmgmt_poll $((procmgmt_start_timeout * 10)) procmgmt_running; then
        echo "$procmgmt_name: no live process in $procmgmt_pidfile" \
            "after $procmgmt_start_timeout s" >&2
        return 1
    fi
    echo "$procmgmt_name started (pid $procmgmt_pid)"

# shellcheck shell=sh disable=SC2154
## The beginning of procmgmt_start (the script writes the line that opens
## the function, and what follows this part): refuse a second start, the own
## pid directory, a stale pid file, initialize.
    if procmgmt_running; then
        echo "$procmgmt_name is already running (pid $procmgmt_pid)"
        return 0
    fi
    if [ -n "$procmgmt_piddir" ]; then
        procmgmt_make_piddir "$procmgmt_piddir" "$procmgmt_user" || return 1
    fi
    # A stale pid file goes (tested first: rm is a fork, and usually there is none).
    if [ -e "$procmgmt_pidfile" ] || [ -L "$procmgmt_pidfile" ]; then
        rm -f "$procmgmt_pidfile"
    fi
    if ! procmgmt_initialize; then
        echo "$procmgmt_name: initialize failed" >&2
        return 1
    fi

# shellcheck shell=sh disable=SC2154
## After the spawn of a foreground process: its pid file, then the start grace.
    # Exclusively (set -C: O_EXCL), in this shell: no fork for a subshell.
    if ! { set -C; echo "$procmgmt_pid" >"$procmgmt_pidfile"; } 2>/dev/null; then
        set +C
        echo "$procmgmt_name: $procmgmt_pidfile appeared while starting; stopping" \
            "pid $procmgmt_pid again" >&2
        kill -s KILL "$procmgmt_pid" 2>/dev/null
        return 1
    fi
    set +C
    # A process that dies at once (bad arguments, port taken) fails the start.
    if procmgmt_poll "$procmgmt_start_grace" procmgmt_exited; then
        rm -f "$procmgmt_pidfile"
        echo "$procmgmt_name: exited right after starting; end of $procmgmt_logfile:" >&2
        tail -n 5 "$procmgmt_logfile" >&2
        return 1
    fi
    echo "$procmgmt_name started (pid $procmgmt_pid)"

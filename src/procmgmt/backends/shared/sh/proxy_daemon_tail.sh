# shellcheck shell=sh disable=SC2154
## Wrap-daemon mode, right after the daemon's start command: $? is its exit
## status. Uses what proxy_daemon_head.sh and the generated script set.
procmgmt_start_rc=$?
if [ "$procmgmt_start_rc" -ne 0 ]; then
    echo "$procmgmt_name: the daemon's start command failed with exit status $procmgmt_start_rc" >&2
    exit "$procmgmt_start_rc"
fi

procmgmt_ticks=0
while :; do
    procmgmt_read_pid
    if [ -n "$procmgmt_file_pid" ]; then
        procmgmt_pid=$procmgmt_file_pid
        break
    fi
    procmgmt_ticks=$((procmgmt_ticks + 1))
    if [ "$procmgmt_ticks" -gt $((procmgmt_pf_timeout * procmgmt_tps)) ]; then
        echo "$procmgmt_name: giving up: no pid in $procmgmt_pid_file" \
            "after $procmgmt_pf_timeout seconds" >&2
        exit 1
    fi
    procmgmt_pause "$procmgmt_step"
done

if [ -n "$procmgmt_stopping" ]; then
    kill -s "$procmgmt_stopping" "$procmgmt_pid" 2>/dev/null || :
fi
procmgmt_stop_ticks=0
while procmgmt_alive "$procmgmt_pid"; do
    if [ -n "$procmgmt_stopping" ] && [ -n "$procmgmt_kill_after" ]; then
        procmgmt_stop_ticks=$((procmgmt_stop_ticks + 1))
        if [ "$procmgmt_stop_ticks" -gt $((procmgmt_kill_after * procmgmt_tps)) ]; then
            echo "$procmgmt_name: daemon $procmgmt_pid ignored SIG$procmgmt_stopping" \
                "for $procmgmt_kill_after s; killing it" >&2
            kill -s KILL "$procmgmt_pid" 2>/dev/null || :
            procmgmt_kill_after=
        fi
    fi
    procmgmt_pause "$procmgmt_poll"
done

if [ -n "$procmgmt_stopping" ]; then
    exit 0
fi
echo "$procmgmt_name: daemon $procmgmt_pid exited" >&2
exit 1

# shellcheck shell=sh
## Why: an init script starts a process and leaves; nothing restarts it when it
## exits. For a model's restart "on-failure" or "always" the generated script
## runs the process under this loop (sh -c, in its own session; the pid file
## names the loop): it restarts the program after the delay, gives up after MAX
## restarts within WINDOW seconds, and when procmgmt_stop signals the process
## group (the program gets the stop signal too) it waits for the program and
## exits without a restart. The loop runs as the process's user, so the pid
## file names a process of that user as for an unsupervised program. It keeps
## the number of restarts in COUNT_FILE (procmgmt status shows it; a file it
## cannot write just leaves the count unknown).
## The pid file names the loop, so the script's reload signals the loop: it
## passes RELOAD_SIGNAL on to the program (unless it is the stop signal).
## Arguments: POLICY DELAY MAX WINDOW STOP_SIGNAL COUNT_FILE RELOAD_SIGNAL COMMAND...
## ($0: the name).
procmgmt_policy=$1 procmgmt_delay=$2 procmgmt_max=$3 procmgmt_window=$4
procmgmt_stop_signal=$5 procmgmt_count_file=$6 procmgmt_reload_signal=$7
shift 7
procmgmt_stopping=
procmgmt_times=
procmgmt_restarts=0
procmgmt_child=
procmgmt_count() {
    # Not writable by others whatever the process's umask (a subshell keeps it).
    (umask 022 && echo "$1" 2>/dev/null >"$procmgmt_count_file")
}
procmgmt_count 0
if [ "$procmgmt_reload_signal" != "$procmgmt_stop_signal" ]; then
    trap 'kill -s "$procmgmt_reload_signal" "$procmgmt_child" 2>/dev/null' \
        "$procmgmt_reload_signal"
fi
trap 'procmgmt_stopping=1' "$procmgmt_stop_signal"
while :; do
    "$@" &
    procmgmt_child=$!
    # wait returns early when a trapped signal arrives: wait until the child is gone.
    while :; do
        wait "$procmgmt_child"
        procmgmt_status=$?
        kill -0 "$procmgmt_child" 2>/dev/null || break
    done
    if [ -n "$procmgmt_stopping" ]; then
        exit 0
    fi
    if [ "$procmgmt_policy" = on-failure ] && [ "$procmgmt_status" -eq 0 ]; then
        echo "$0: exited with status 0; not restarted (restart on-failure)" >&2
        exit 0
    fi
    if [ -n "$procmgmt_max" ]; then
        procmgmt_now=$(date +%s)
        procmgmt_kept=
        procmgmt_count=0
        for procmgmt_time in $procmgmt_times; do
            if [ $((procmgmt_now - procmgmt_time)) -lt "$procmgmt_window" ]; then
                procmgmt_kept="$procmgmt_kept $procmgmt_time"
                procmgmt_count=$((procmgmt_count + 1))
            fi
        done
        if [ "$procmgmt_count" -ge "$procmgmt_max" ]; then
            echo "$0: exited with status $procmgmt_status after $procmgmt_count restarts" \
                "within $procmgmt_window s; not restarted again" >&2
            exit "$procmgmt_status"
        fi
        procmgmt_times="$procmgmt_kept $procmgmt_now"
    fi
    echo "$0: exited with status $procmgmt_status; restarting in $procmgmt_delay s" >&2
    procmgmt_restarts=$((procmgmt_restarts + 1))
    procmgmt_count "$procmgmt_restarts"
    sleep "$procmgmt_delay" &
    procmgmt_child=$!
    wait "$procmgmt_child"
    if [ -n "$procmgmt_stopping" ]; then
        kill "$procmgmt_child" 2>/dev/null
        exit 0
    fi
done

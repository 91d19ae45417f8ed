# shellcheck shell=sh
## Why: PID 1 of a sysvinit image. The scripts are its arguments, in start
## order; a script that fails to start stops those started before it and ends
## the container with status 1. A trapped signal interrupts `wait`, which also
## reaps orphaned daemons (dash waits for any child).

procmgmt_stop_requested=
procmgmt_started=0
trap 'procmgmt_stop_requested=1' TERM INT

procmgmt_stop_all() {
    procmgmt_i=$procmgmt_started
    while [ "$procmgmt_i" -gt 0 ]; do
        eval "procmgmt_script=\${$procmgmt_i}"
        "$procmgmt_script" stop || echo "procmgmt init: $procmgmt_script stop failed" >&2
        procmgmt_i=$((procmgmt_i - 1))
    done
}

procmgmt_status=0
for procmgmt_script in "$@"; do
    [ -z "$procmgmt_stop_requested" ] || break
    if ! "$procmgmt_script" start; then
        echo "procmgmt init: $procmgmt_script start failed; stopping the others" >&2
        procmgmt_status=1
        break
    fi
    procmgmt_started=$((procmgmt_started + 1))
done

if [ "$procmgmt_status" -eq 0 ]; then
    echo "procmgmt init: $procmgmt_started processes started"
    while [ -z "$procmgmt_stop_requested" ]; do
        sleep 3600 &
        procmgmt_sleeper=$!
        wait
        kill "$procmgmt_sleeper" 2>/dev/null
    done
fi
trap '' TERM INT
procmgmt_stop_all "$@"
echo "procmgmt init: stopped"
exit "$procmgmt_status"

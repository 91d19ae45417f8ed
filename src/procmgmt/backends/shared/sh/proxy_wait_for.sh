# shellcheck shell=sh disable=SC2154
## The proxy's dependency wait (shared.proxy.wait_for_lines): the generated
## script sets procmgmt_name and procmgmt_wait_timeout before it and calls
## procmgmt_wait_for_dependency once per dependency after it.

if sleep 0.01 2>/dev/null; then
    procmgmt_wait_step=0.1
    procmgmt_wait_tps=10
else
    procmgmt_wait_step=1
    procmgmt_wait_tps=1
fi
procmgmt_wait_ticks=0
procmgmt_wait_sleeper=
# A stop while waiting ends the proxy at once, and its pending sleep with it.
# shellcheck disable=SC2329  # invoked by the traps below
procmgmt_on_wait_signal() {
    if [ -n "$procmgmt_wait_sleeper" ]; then
        kill "$procmgmt_wait_sleeper" 2>/dev/null || :
    fi
    if [ -n "${procmgmt_ready_sleeper-}" ]; then
        kill "$procmgmt_ready_sleeper" 2>/dev/null || :
    fi
    exit "$1"
}
trap 'procmgmt_on_wait_signal 143' TERM
trap 'procmgmt_on_wait_signal 130' INT
trap 'procmgmt_on_wait_signal 129' HUP

# True while process $1 exists (also as another user's) and is not a zombie.
procmgmt_dependency_alive() {
    kill -0 "$1" 2>/dev/null || ps -p "$1" >/dev/null 2>&1 || return 1
    if [ -r "/proc/$1/stat" ]; then
        procmgmt_dep_stat=
        read -r procmgmt_dep_stat 2>/dev/null < "/proc/$1/stat" || :
        case ${procmgmt_dep_stat##*) } in
            Z*) return 1 ;;
        esac
    fi
    return 0
}

# procmgmt_wait_for_dependency NAME PID_FILE
procmgmt_wait_for_dependency() {
    procmgmt_announced=
    while :; do
        procmgmt_dep_pid=
        read -r procmgmt_dep_pid 2>/dev/null < "$2" || :
        case $procmgmt_dep_pid in
            ''|*[!0-9]*) ;;
            *)
                if procmgmt_dependency_alive "$procmgmt_dep_pid"; then
                    if [ -n "$procmgmt_announced" ]; then
                        echo "$procmgmt_name: dependency $1 is up (pid $procmgmt_dep_pid)" >&2
                    fi
                    return 0
                fi
                ;;
        esac
        if [ -z "$procmgmt_announced" ]; then
            echo "$procmgmt_name: waiting for dependency $1 (pid file $2)" >&2
            procmgmt_announced=1
        fi
        procmgmt_wait_ticks=$((procmgmt_wait_ticks + 1))
        if [ "$procmgmt_wait_ticks" -gt $((procmgmt_wait_timeout * procmgmt_wait_tps)) ]; then
            echo "$procmgmt_name: giving up: dependency $1 is not up" \
                "after $procmgmt_wait_timeout seconds" >&2
            exit 1
        fi
        sleep "$procmgmt_wait_step" &
        procmgmt_wait_sleeper=$!
        wait "$procmgmt_wait_sleeper"
        procmgmt_wait_sleeper=
    done
}

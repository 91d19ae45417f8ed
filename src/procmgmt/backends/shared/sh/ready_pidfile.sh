# shellcheck shell=sh disable=SC2034
## procmgmt_ready_error is read by procmgmt_ready_wait (ready_common.sh).

# procmgmt_ready_pidfile PATH: the pid file holds the pid of a live process
# (also another user's: ps -p), not a zombie where /proc tells.
procmgmt_ready_pidfile() {
    procmgmt_ready_pid=
    { read -r procmgmt_ready_pid procmgmt_ready_rest <"$1"; } 2>/dev/null || :
    : "${procmgmt_ready_rest-}"
    case $procmgmt_ready_pid in
        '' | *[!0-9]*)
            procmgmt_ready_error="$1 does not exist or holds no pid"
            return 1
            ;;
    esac
    if kill -0 "$procmgmt_ready_pid" 2>/dev/null ||
        ps -p "$procmgmt_ready_pid" >/dev/null 2>&1; then
        procmgmt_ready_stat=
        if [ -r "/proc/$procmgmt_ready_pid/stat" ]; then
            { read -r procmgmt_ready_stat <"/proc/$procmgmt_ready_pid/stat"; } 2>/dev/null || :
        fi
        case ${procmgmt_ready_stat##*) } in
            Z*) ;;
            *) return 0 ;;
        esac
    fi
    procmgmt_ready_error="pid $procmgmt_ready_pid from $1 is not running"
    return 1
}

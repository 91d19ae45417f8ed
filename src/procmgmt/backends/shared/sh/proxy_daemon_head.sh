# shellcheck shell=sh disable=SC2034,SC2154
## Wrap-daemon mode, before the daemon's start command (shared.proxy.generate):
## the generated script sets procmgmt_name, procmgmt_pid_file,
## procmgmt_stop_signal and procmgmt_proxy_uid; proxy_daemon_tail.sh uses
## what this sets.

# Poll every 0.1 s where sleep takes fractions, else every second.
if sleep 0.01 2>/dev/null; then
    procmgmt_step=0.1
    procmgmt_tps=10
else
    procmgmt_step=1
    procmgmt_tps=1
fi
# While the daemon runs, poll once a second; after a stop signal, every step.
procmgmt_poll=1
procmgmt_pid=
procmgmt_sleeper=
procmgmt_stopping=
# A signal ends the pending poll sleep at once (and leaves no sleep behind).
# shellcheck disable=SC2329  # invoked by the traps below
# SIGTERM (what launchd and most managers send) becomes the daemon's stop signal.
procmgmt_on_signal() {
    procmgmt_signal=$1
    if [ "$1" = TERM ]; then
        procmgmt_signal=$procmgmt_stop_signal
    fi
    if [ "$1" != HUP ]; then
        procmgmt_stopping=$procmgmt_signal
        procmgmt_poll=$procmgmt_step
    fi
    if [ -n "$procmgmt_pid" ]; then
        kill -s "$procmgmt_signal" "$procmgmt_pid" 2>/dev/null || :
    fi
    if [ -n "$procmgmt_sleeper" ]; then
        kill "$procmgmt_sleeper" 2>/dev/null || :
    fi
}
trap 'procmgmt_on_signal TERM' TERM
trap 'procmgmt_on_signal INT' INT
trap 'procmgmt_on_signal HUP' HUP

# Sleep in the background so that a trapped signal interrupts the wait.
procmgmt_pause() {
    sleep "$1" &
    procmgmt_sleeper=$!
    wait "$procmgmt_sleeper"
    procmgmt_sleeper=
}

# True while process $1 exists and is not a zombie.
procmgmt_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    if [ -r "/proc/$1/stat" ]; then
        procmgmt_proc_stat=
        read -r procmgmt_proc_stat 2>/dev/null < "/proc/$1/stat" || :
        procmgmt_proc_state=${procmgmt_proc_stat##*) }
        case $procmgmt_proc_state in
            Z*) return 1 ;;
        esac
    fi
    return 0
}

# The pid in the pid file (never a symlink's), or nothing. With a user to run
# the daemon as, who can write the pid file, only a live pid of that user:
# this proxy (root) must not signal someone else's process.
procmgmt_refused=
procmgmt_read_pid() {
    procmgmt_file_pid=
    [ ! -L "$procmgmt_pid_file" ] || return 0
    read -r procmgmt_file_pid 2>/dev/null < "$procmgmt_pid_file" || :
    case $procmgmt_file_pid in
        ''|*[!0-9]*|0*|1) procmgmt_file_pid= ;;
    esac
    if [ -n "$procmgmt_file_pid" ] && [ -n "$procmgmt_proxy_uid" ] &&
            procmgmt_alive "$procmgmt_file_pid" &&
            ! procmgmt_pid_owned "$procmgmt_file_pid" "$procmgmt_proxy_uid"; then
        if [ "$procmgmt_refused" != "$procmgmt_file_pid" ]; then
            procmgmt_refused=$procmgmt_file_pid
            echo "$procmgmt_name: warning: not trusting $procmgmt_pid_file: pid" \
                "$procmgmt_file_pid belongs to uid ${procmgmt_owner:-unknown}, not to" \
                "uid $procmgmt_proxy_uid; not signalling it" >&2
        fi
        procmgmt_file_pid=
    fi
}

# A stale pid file (its process is gone) would be mistaken for the new daemon's.
procmgmt_read_pid
if [ -n "$procmgmt_file_pid" ] && ! procmgmt_alive "$procmgmt_file_pid"; then
    rm -f "$procmgmt_pid_file"
fi

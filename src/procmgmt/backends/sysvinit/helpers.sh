# shellcheck shell=sh disable=SC2154
## The helpers every init script carries, after procmgmt_pid_owned,
## procmgmt_make_piddir and the process waits (backends/sh). They are the same in every script and use
## only POSIX sh and utilities (kill, sleep, rm, cat, ps as a fallback); /proc is
## used when present to see zombies and process groups. The script sets the
## procmgmt_* variables they read before it defines them.
# procmgmt_refuse REASON: say once per pid why it is not trusted.
procmgmt_refuse() {
    [ "$procmgmt_refused" != "$procmgmt_pid" ] || return 0
    procmgmt_refused=$procmgmt_pid
    procmgmt_command=$(ps -o args= -p "$procmgmt_pid" 2>/dev/null) || :
    echo "$procmgmt_name: warning: not trusting $procmgmt_pidfile: pid $procmgmt_pid" \
        "$1 (command: $procmgmt_command); not signalling it, counting" \
        "$procmgmt_name as not running" >&2
}

# procmgmt_trusted: procmgmt_pid may be signalled. Never PID 1, this script or
# its parent; and when the process runs as a user of its own, who can write
# its pid file, only a process of that user.
procmgmt_trusted() {
    case "$procmgmt_pid" in
        1 | "$$" | "$PPID")
            procmgmt_refuse "is PID 1, this script or its caller"
            return 1
            ;;
    esac
    [ -n "$procmgmt_user" ] || return 0
    if [ -z "$procmgmt_uid" ]; then
        procmgmt_uid=$(id -u "$procmgmt_user" 2>/dev/null) || procmgmt_uid=
    fi
    if [ -n "$procmgmt_uid" ] && procmgmt_pid_owned "$procmgmt_pid" "$procmgmt_uid"; then
        return 0
    fi
    procmgmt_pid_owner=$procmgmt_owner
    # su (the fallback user switch) stays as a root parent.
    if [ "$procmgmt_pid_owner" = 0 ] && [ -n "$procmgmt_uid" ] &&
        procmgmt_child_owned "$procmgmt_pid" "$procmgmt_uid"; then
        return 0
    fi
    # Still on its way to the user: this process's own start (the pid file is
    # written at the fork, before the user switch) carries its markers.
    if [ "$procmgmt_pid_owner" = 0 ] && procmgmt_own_start "$procmgmt_pid"; then
        return 0
    fi
    procmgmt_refuse "belongs to uid ${procmgmt_pid_owner:-unknown}, not to $procmgmt_user"
    return 1
}

# procmgmt_own_start PID: PID's environment (Linux /proc) holds both markers of
# this very process, which only its own start gives a root process.
procmgmt_own_start() {
    [ -n "$PROCMGMT_DEPLOYMENT" ] && [ -n "$PROCMGMT_PROCESS" ] &&
        [ -r "/proc/$1/environ" ] || return 1
    procmgmt_env=$(tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null) || return 1
    printf '%s\n' "$procmgmt_env" | grep -Fqx "PROCMGMT_DEPLOYMENT=$PROCMGMT_DEPLOYMENT" &&
        printf '%s\n' "$procmgmt_env" | grep -Fqx "PROCMGMT_PROCESS=$PROCMGMT_PROCESS"
}

# procmgmt_child_owned PID UID: a child of PID runs as UID (Linux /proc).
procmgmt_child_owned() {
    for procmgmt_entry in /proc/[0-9]*; do
        procmgmt_stat "${procmgmt_entry#/proc/}" || continue
        [ "$procmgmt_ppid" = "$1" ] || continue
        procmgmt_pid_owned "${procmgmt_entry#/proc/}" "$2" && return 0
    done
    return 1
}

# procmgmt_running: the pid file (no symlink) names a live, trusted process;
# sets procmgmt_pid.
procmgmt_running() {
    procmgmt_pid=
    if [ -L "$procmgmt_pidfile" ]; then
        if [ "$procmgmt_refused" != symlink ]; then
            procmgmt_refused=symlink
            echo "$procmgmt_name: warning: not trusting $procmgmt_pidfile: it is a symlink" >&2
        fi
        return 1
    fi
    [ -r "$procmgmt_pidfile" ] || return 1
    read -r procmgmt_pid 2>/dev/null <"$procmgmt_pidfile"
    case "$procmgmt_pid" in
        '' | 0* | 1 | *[!0-9]*) return 1 ;;
    esac
    procmgmt_alive "$procmgmt_pid" && procmgmt_trusted
}


procmgmt_exited() {
    ! procmgmt_alive "$procmgmt_pid"
}

# procmgmt_pgid PID: set procmgmt_pgrp to the process group of PID (a
# variable, not output: a command substitution would cost a fork).
procmgmt_pgid() {
    procmgmt_stat "$1" ||
        procmgmt_pgrp=$(ps -o pgid= -p "$1" 2>/dev/null | tr -d ' ')
}

procmgmt_stop() {
    if ! procmgmt_running; then
        rm -f "$procmgmt_pidfile"
        echo "$procmgmt_name is not running"
        return 0
    fi
    # A pid that leads its own process group (started by our daemonizer
    # with setsid, or a daemon that called setsid itself) is signalled as a
    # group, so wrappers and children go too; otherwise only the pid.
    procmgmt_target=$procmgmt_pid
    procmgmt_pgid "$procmgmt_pid"
    if [ "$procmgmt_pgrp" = "$procmgmt_pid" ]; then
        procmgmt_target=-$procmgmt_pid
    fi
    echo "Stopping $procmgmt_name (pid $procmgmt_pid)"
    kill -s "$procmgmt_stop_signal" -- "$procmgmt_target" 2>/dev/null
    if ! procmgmt_poll $((procmgmt_stop_timeout * 10)) procmgmt_exited; then
        echo "$procmgmt_name did not stop within $procmgmt_stop_timeout s; sending SIGKILL" >&2
        kill -s KILL -- "$procmgmt_target" 2>/dev/null
        if ! procmgmt_poll 50 procmgmt_exited; then
            echo "$procmgmt_name: pid $procmgmt_pid survived SIGKILL" >&2
            return 1
        fi
    fi
    rm -f "$procmgmt_pidfile"
    echo "$procmgmt_name stopped"
}

procmgmt_reload() {
    if ! procmgmt_running; then
        echo "$procmgmt_name is not running" >&2
        return 7
    fi
    kill -s "$procmgmt_reload_signal" "$procmgmt_pid"
}

# LSB status: 0 running, 3 not running.
procmgmt_status() {
    if procmgmt_running; then
        echo "$procmgmt_name is running (pid $procmgmt_pid)"
        return 0
    fi
    echo "$procmgmt_name is not running"
    return 3
}

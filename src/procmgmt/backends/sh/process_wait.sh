# shellcheck shell=sh disable=SC2034
## Waiting for processes, shared by the scripts that stop what they started
## (the sysvinit scripts, the bsdrc scripts' stop with a timeout). POSIX sh and
## utilities only (sleep, kill); /proc is read when present to see zombies and
## process groups, and without it kill -0 answers (a zombie then counts as alive
## until its parent reaps it).

# procmgmt_poll TENTHS CMD...: run CMD until it succeeds, for at most TENTHS
# tenths of a second. The first tenth is polled every 10 ms (a SIGTERMed
# process or a forking daemon is usually done within milliseconds), then
# every 0.1 s. Fractional sleep is not POSIX: where sleep refuses it, whole
# seconds are used instead.
procmgmt_poll() {
    procmgmt_left=$1
    procmgmt_fast=10
    shift
    while ! "$@"; do
        [ "$procmgmt_left" -gt 0 ] || return 1
        if [ "$procmgmt_fast" -gt 0 ]; then
            procmgmt_fast=$((procmgmt_fast - 1))
            if sleep 0.01 2>/dev/null; then
                [ "$procmgmt_fast" -gt 0 ] || procmgmt_left=$((procmgmt_left - 1))
                continue
            fi
            procmgmt_fast=0
        fi
        if sleep 0.1 2>/dev/null; then
            procmgmt_left=$((procmgmt_left - 1))
        else
            sleep 1
            procmgmt_left=$((procmgmt_left - 10))
        fi
    done
}

# procmgmt_stat PID: set procmgmt_state and procmgmt_pgrp from /proc (Linux).
# The command name may contain spaces and parentheses, so the fields are
# taken after the last ")". The builtin read costs no fork; only a command
# name with a line break in it needs cat.
procmgmt_stat() {
    procmgmt_state=
    procmgmt_pgrp=
    [ -r "/proc/$1/stat" ] || return 1
    { read -r procmgmt_line <"/proc/$1/stat"; } 2>/dev/null || return 1
    case "$procmgmt_line" in
        *") "*) ;;
        *) procmgmt_line=$(cat "/proc/$1/stat" 2>/dev/null) || return 1 ;;
    esac
    [ -n "$procmgmt_line" ] || return 1
    procmgmt_line=${procmgmt_line##*") "}
    read -r procmgmt_state procmgmt_ppid procmgmt_pgrp procmgmt_rest <<EOF
$procmgmt_line
EOF
    : "$procmgmt_ppid" "$procmgmt_rest"
}

# procmgmt_alive PID: the process exists and is not a zombie (a zombie
# still answers kill -0 until its parent, often init, reaps it).
procmgmt_alive() {
    if procmgmt_stat "$1"; then
        [ "$procmgmt_state" != Z ]
    else
        kill -s 0 "$1" 2>/dev/null
    fi
}

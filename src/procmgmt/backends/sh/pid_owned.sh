# shellcheck shell=sh
## Why: generated scripts that run as root signal a pid from a pid file only
## after this check when the process runs as a user of its own: that user can
## write the pid file and must not be able to choose what root signals (the
## rule of procmgmt.pids.trusted_pid). /proc/PID/status where there is one
## (read by the shell: no fork), else ps -o ruid=.
# procmgmt_pid_owned PID UID: PID's real user is UID; sets procmgmt_owner.
procmgmt_pid_owned() {
    procmgmt_owner=
    if [ -r "/proc/$1/status" ]; then
        while read -r procmgmt_key procmgmt_value procmgmt_rest; do
            if [ "$procmgmt_key" = Uid: ]; then
                procmgmt_owner=$procmgmt_value
                break
            fi
        done <"/proc/$1/status"
        : "$procmgmt_rest"
    else
        procmgmt_owner=$(ps -o ruid= -p "$1" 2>/dev/null | tr -d ' ')
    fi
    [ -n "$procmgmt_owner" ] && [ "$procmgmt_owner" = "$2" ]
}

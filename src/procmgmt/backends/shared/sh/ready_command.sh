# shellcheck shell=sh

# procmgmt_ready_command SECONDS N [NAME VALUE]... ARGV...: ARGV exits 0, run
# with N variables exported (in a subshell), for at most SECONDS where
# timeout(1) exists.
procmgmt_ready_command() {
    procmgmt_ready_out=$(
        procmgmt_ready_secs=$1
        procmgmt_ready_n=$2
        shift 2
        while [ "$procmgmt_ready_n" -gt 0 ]; do
            export "$1=$2"
            shift 2
            procmgmt_ready_n=$((procmgmt_ready_n - 1))
        done
        procmgmt_ready_timeout "$procmgmt_ready_secs" "$@" </dev/null 2>&1
    )
    procmgmt_ready_rc=$?
    if [ "$procmgmt_ready_rc" -eq 0 ]; then
        return 0
    fi
    procmgmt_ready_last "$procmgmt_ready_out"
    procmgmt_ready_error="exit status $procmgmt_ready_rc"
    procmgmt_ready_error="$procmgmt_ready_error${procmgmt_ready_line:+ $procmgmt_ready_line}"
    return 1
}

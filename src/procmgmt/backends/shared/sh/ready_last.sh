# shellcheck shell=sh disable=SC2034
## procmgmt_ready_line is read by the probes that follow (ready_tcp.sh,
## ready_http.sh, ready_command.sh).

# procmgmt_ready_last TEXT: the last non-empty line of TEXT in procmgmt_ready_line.
procmgmt_ready_last() {
    procmgmt_ready_line=$(printf '%s\n' "$1" | sed -e '/^[[:space:]]*$/d' | tail -n 1)
}

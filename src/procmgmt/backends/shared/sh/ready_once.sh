# shellcheck shell=sh

# procmgmt_ready_once PROBE [ARG...]: run one probe of the functions above once,
# for a manager that repeats it itself (a process-compose or Kubernetes exec
# probe): exit status 0 when ready, else 1 with the reason on stderr.
procmgmt_ready_once() {
    if "$@"; then
        exit 0
    fi
    printf '%s\n' "${procmgmt_ready_error:-not ready}" >&2
    exit 1
}

# shellcheck shell=sh disable=SC2034
## procmgmt_ready_error is read by procmgmt_ready_wait (ready_common.sh).

# procmgmt_ready_tcp HOST PORT: a TCP connection to HOST:PORT succeeds. Tool
# chosen once: nc -z, else bash's /dev/tcp (starts in milliseconds), else python3.
procmgmt_ready_tcp() {
    if [ -z "${procmgmt_ready_tcp_tool-}" ]; then
        if command -v nc >/dev/null 2>&1 && nc -h </dev/null 2>&1 | grep -q -e '-z'; then
            procmgmt_ready_tcp_tool=nc
        elif command -v bash >/dev/null 2>&1; then
            procmgmt_ready_tcp_tool=bash
        elif command -v python3 >/dev/null 2>&1; then
            procmgmt_ready_tcp_tool=python3
        else
            procmgmt_ready_tcp_tool=none
        fi
    fi
    case $procmgmt_ready_tcp_tool in
        nc)
            procmgmt_ready_out=$(nc -z -w 2 "$1" "$2" </dev/null 2>&1)
            ;;
        python3)
            procmgmt_ready_out=$(python3 -c 'import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()
except OSError as exc:
    sys.exit(exc.strerror or str(exc))' "$1" "$2" </dev/null 2>&1)
            ;;
        bash)
            # The single quotes are meant: bash expands $1 and $2 itself.
            # shellcheck disable=SC2016
            procmgmt_ready_out=$(procmgmt_ready_timeout 2 bash -c \
                'exec 3<>"/dev/tcp/$1/$2"' procmgmt-ready "$1" "$2" </dev/null 2>&1)
            ;;
        *)
            procmgmt_ready_error="cannot check tcp $1:$2: none of nc, bash and python3 is installed"
            return 1
            ;;
    esac
    procmgmt_ready_rc=$?
    if [ "$procmgmt_ready_rc" -eq 0 ]; then
        return 0
    fi
    procmgmt_ready_last "$procmgmt_ready_out"
    procmgmt_ready_error="connect to $1:$2 failed${procmgmt_ready_line:+: $procmgmt_ready_line}"
    return 1
}

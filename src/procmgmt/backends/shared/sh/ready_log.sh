# shellcheck shell=sh disable=SC2034
## procmgmt_ready_error is read by procmgmt_ready_wait (ready_common.sh).

# procmgmt_ready_size PATH: the size of PATH in bytes (0 when missing) in
# procmgmt_ready_bytes.
procmgmt_ready_size() {
    procmgmt_ready_bytes=$({ wc -c <"$1"; } 2>/dev/null | tr -d ' ')
    case $procmgmt_ready_bytes in
        '' | *[!0-9]*) procmgmt_ready_bytes=0 ;;
    esac
}

# procmgmt_ready_log PATH ERE ICASE OFFSET MARKER: a line matching ERE was
# written to PATH after byte OFFSET (or the offset recorded in the file MARKER;
# no MARKER yet: the process has not started). A log now shorter than the
# offset was rotated or truncated and is read from its start.
procmgmt_ready_log() {
    procmgmt_ready_from=$4
    if [ -n "$5" ]; then
        procmgmt_ready_from=
        { read -r procmgmt_ready_from <"$5"; } 2>/dev/null || {
            procmgmt_ready_error="no start recorded in $5 yet"
            return 1
        }
    fi
    case $procmgmt_ready_from in
        '' | *[!0-9]*) procmgmt_ready_from=0 ;;
    esac
    if [ ! -r "$1" ]; then
        procmgmt_ready_error="$1: cannot read it (not written yet?)"
        return 1
    fi
    procmgmt_ready_size "$1"
    if [ "$procmgmt_ready_bytes" -lt "$procmgmt_ready_from" ]; then
        procmgmt_ready_from=0
    fi
    if [ "$3" = 1 ]; then
        if tail -c +"$((procmgmt_ready_from + 1))" "$1" | grep -E -q -i -e "$2"; then
            return 0
        fi
    elif tail -c +"$((procmgmt_ready_from + 1))" "$1" | grep -E -q -e "$2"; then
        return 0
    fi
    procmgmt_ready_error="no line matching $2 in $1 yet"
    return 1
}

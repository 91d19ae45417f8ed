# shellcheck shell=sh disable=SC2034
## The main part of a bsdrc script's log writer program (libexec/<name>-log-writer
## in the store entry, after backends/sh/log_writer.sh), started by start_precmd
## when log rotation is on: daemon(8) then writes the process's output (-o) into
## the fifo this creates, and the writer rotates the log file.
##
## It runs as the service's user (start_precmd runs it through su, as rc.subr
## runs daemon(8)): that user writes the log directory, so root must neither
## create the fifo there nor rename files in it. The fifo is created here and
## opened at once; daemon(8) opens its output file first thing, before its pid
## files. A daemon(8) that never comes (its su failed, say) would leave the
## writer waiting for ever: a watchdog that looks every 0.1 s whether the fifo
## is still there (the writer removes it once daemon(8) opened it) opens it
## itself after 30 s (PROCMGMT_LOG_FIFO_WAIT tenths: the tests shorten it), and
## the writer ends at the end of that empty output.

# procmgmt_log_serve FIFO LOGFILE MAX_BYTES BACKUPS
procmgmt_log_serve() {
    umask 077  # as daemon(8), which creates its output file with mode 0600
    procmgmt_name=${2##*/}
    procmgmt_logfile=$2
    procmgmt_log_max_bytes=$3
    procmgmt_log_backups=$4
    rm -f "$1"
    mkfifo -m 600 "$1" || exit 1
    (
        procmgmt_left=${PROCMGMT_LOG_FIFO_WAIT:-300}  # tenths of a second
        case $procmgmt_left in
            '' | *[!0-9]*) procmgmt_left=300 ;;
        esac
        while [ -p "$1" ] && [ "$procmgmt_left" -gt 0 ]; do
            if sleep 0.1 2>/dev/null; then
                procmgmt_left=$((procmgmt_left - 1))
            else
                sleep 1
                procmgmt_left=$((procmgmt_left - 10))
            fi
        done
        if [ -p "$1" ]; then
            : >"$1"
        fi
    ) </dev/null >/dev/null 2>&1 &
    procmgmt_log_from "$1"
}

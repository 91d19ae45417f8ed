# shellcheck shell=sh disable=SC2154
## The end of procmgmt_start for a foreground-only process, which the
## script daemonizes; "$@" is the command the script set before.
    # Check the pid and log files first: a process started without them
    # could not be stopped or diagnosed. Where another user can write, a
    # symlink would make root write wherever it points: it is refused, and
    # the pid file is created exclusively (set -C: O_EXCL) in the tail.
    if [ -L "$procmgmt_logfile" ]; then
        echo "$procmgmt_name: the log file $procmgmt_logfile is a symlink;" \
            "refusing to write through it (remove it)" >&2
        return 1
    fi
    # Can the pid file be made? Asked of its directory (no fork; the file is
    # created exclusively once the pid is known, which catches the rest).
    procmgmt_pidfile_dir=${procmgmt_pidfile%/*}
    if [ ! -d "${procmgmt_pidfile_dir:-/}" ] || [ ! -w "${procmgmt_pidfile_dir:-/}" ]; then
        echo "$procmgmt_name: cannot create the pid file $procmgmt_pidfile" >&2
        return 1
    fi
    if ! true 2>/dev/null >>"$procmgmt_logfile"; then
        echo "$procmgmt_name: cannot write the log file $procmgmt_logfile" >&2
        return 1
    fi
    echo "Starting $procmgmt_name"
    # Daemonize the foreground process: its own session (so stop can signal
    # the whole process group), no terminal input, output to the log file.
    if command -v setsid >/dev/null 2>&1; then
        set -- setsid "$@"
    fi

# shellcheck shell=sh disable=SC2034,SC2154
## The rotating log writer of scripts that write a process's log file themselves
## (sysvinit foreground mode; bsdrc foreground mode, where daemon(8) writes into
## the fifo) when log rotation is on. The script sets procmgmt_name,
## procmgmt_logfile, procmgmt_log_max_bytes and procmgmt_log_backups first.
##
## Why a shell loop and not a program: the generated scripts need nothing but a
## POSIX sh at run time. The loop uses builtins only (read, printf, arithmetic),
## so it forks nothing per line; the size it counts is ${#line} + 1, which is
## bytes in the C locale and characters elsewhere, so a file may grow a little
## past the limit before it rotates. A last line without a newline gets one.
## Rotation renames (FILE -> FILE.1 -> ... -> FILE.N, the oldest dropped) and
## opens a new FILE, as supervisord and logrotate do: readers that follow by
## name (procmgmt logs -f, tail -F) follow across it. The log directory is one
## only root (or the deploying user) can write, so renaming in it is safe.

# procmgmt_rotate: shift the kept files by one and start an empty FILE on fd 3.
procmgmt_rotate() {
    if [ "$procmgmt_log_backups" -gt 0 ]; then
        procmgmt_i=$procmgmt_log_backups
        rm -f "$procmgmt_logfile.$procmgmt_i"
        while [ "$procmgmt_i" -gt 1 ]; do
            procmgmt_j=$((procmgmt_i - 1))
            if [ -e "$procmgmt_logfile.$procmgmt_j" ]; then
                mv -f "$procmgmt_logfile.$procmgmt_j" "$procmgmt_logfile.$procmgmt_i"
            fi
            procmgmt_i=$procmgmt_j
        done
        mv -f "$procmgmt_logfile" "$procmgmt_logfile.1"
        exec 3>>"$procmgmt_logfile"
    else
        exec 3>"$procmgmt_logfile"  # no backups kept: start the file again
    fi
    procmgmt_size=0
}

# procmgmt_log_writer: copy standard input to the log file line by line,
# rotating it once it holds procmgmt_log_max_bytes. Ends at end of input (the
# process and everything that inherited its output have exited).
procmgmt_log_writer() {
    procmgmt_size=$(wc -c 2>/dev/null <"$procmgmt_logfile") || procmgmt_size=0
    procmgmt_size=$((procmgmt_size + 0))
    exec 3>>"$procmgmt_logfile"
    while IFS= read -r procmgmt_line || [ -n "$procmgmt_line" ]; do
        [ "$procmgmt_size" -lt "$procmgmt_log_max_bytes" ] || procmgmt_rotate
        printf '%s\n' "$procmgmt_line" >&3
        procmgmt_size=$((procmgmt_size + ${#procmgmt_line} + 1))
    done
    exec 3>&-
}

# procmgmt_log_from FIFO: the writer's side of FIFO: open it (which waits for
# the writing side), remove it once both ends are open, and copy what comes to
# the log file. It ignores the signals a terminal sends (it ends when the
# output does) and keeps nothing of its caller's output open (procmgmt waits
# for that).
procmgmt_log_from() {
    trap '' HUP INT TERM
    exec <"$1" >/dev/null 2>&1
    rm -f "$1"
    procmgmt_log_writer
}

# procmgmt_spawn_rotating CMD...: start CMD in the background (procmgmt_pid is
# its pid, as for "CMD &") with its output going through a fifo to
# procmgmt_log_writer.
procmgmt_spawn_rotating() {
    procmgmt_fifo="$procmgmt_logfile.fifo"
    rm -f "$procmgmt_fifo"
    if ! mkfifo -m 600 "$procmgmt_fifo"; then
        echo "$procmgmt_name: cannot create the fifo $procmgmt_fifo" >&2
        return 1
    fi
    (procmgmt_log_from "$procmgmt_fifo") &
    "$@" </dev/null >"$procmgmt_fifo" 2>&1 &
    procmgmt_pid=$!
}

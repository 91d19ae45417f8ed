# shellcheck shell=sh disable=SC2154
## Start the daemonized command, its output written through the rotating
## log writer (procmgmt_spawn_rotating, backends/sh/log_writer.sh).
    procmgmt_spawn_rotating "$@" || return 1

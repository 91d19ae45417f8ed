# shellcheck shell=sh disable=SC2154
## Why: the process's own pid directory is created again when a reboot
## emptied the runtime dir (procmgmt creates it before a switch starts the
## process; a boot or a supervisor restart does not go through procmgmt):
## 0755 and owned by USER (empty: the caller), in a parent nobody else can
## write. A symlink in its place or as its parent is refused
## (procmgmt.settings.Settings.pid_dir).
# procmgmt_make_piddir DIR USER: the own pid directory DIR, owned by USER.
procmgmt_make_piddir() {
    if [ -L "$1" ] || [ -L "${1%/*}" ]; then
        echo "$procmgmt_name: $1 or its parent is a symlink; refusing it" >&2
        return 1
    fi
    [ ! -d "$1" ] || return 0
    mkdir -p "$1" && chmod 0755 "${1%/*}" "$1" || return 1
    if [ -n "$2" ]; then
        chown "$2:$(id -g "$2")" "$1" || return 1
    fi
}

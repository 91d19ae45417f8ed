# shellcheck shell=sh
## Why: s6-supervise restarts a service every time it dies; a ./finish that
## exits 125 tells it not to (s6-supervise: "permanent failure", as after
## s6-svc -O). That is how the model's restart "no" and "on-failure" reach s6,
## and s6-permafailon (which exits 125 itself) carries restart_max. ./finish
## runs in the service directory with $1 the exit code (256: killed by a
## signal) and $2 the signal number.
# procmgmt_finish_policy POLICY CODE: exit 125 when POLICY restarts no process that exited with CODE.
procmgmt_finish_policy() {
    case $1 in
        no) exit 125 ;;
        on-failure) if [ "$2" = 0 ]; then exit 125; fi ;;
    esac
}

# procmgmt_finish_delay SECONDS: the restart delay, only when the service is still
# wanted up (a stop by s6-svc -d must not wait for it).
procmgmt_finish_delay() {
    if [ "$(s6-svstat -o wantedup .)" = true ]; then
        sleep "$1"
    fi
}

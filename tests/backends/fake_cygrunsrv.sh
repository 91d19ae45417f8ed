#!/bin/sh
# fake_cygrunsrv.sh: a stand-in for Cygwin's cygrunsrv, for tests on Linux.
#
# Installed as "cygrunsrv" on PATH by the tests. It appends every invocation
# to $FAKE_CYGRUNSRV_LOG (the argument count, then each argument, every field
# NUL-terminated) and keeps a tiny state in $FAKE_CYGRUNSRV_STATE: a file
# <service>.installed (the install arguments, NUL-separated) and a file
# <service>.running. It follows cygrunsrv.cc's rules where they matter for
# an activator: one action per call; --install fails when the service
# exists and needs an executable --path; --path/--args/--disp/--type/... at
# most once; --type auto|manual; --env NAME=VALUE; --start/--stop/--remove/
# --query fail for a service that is not installed; --stop of a stopped
# service succeeds; --remove stops first. Nothing is started for real.
set -u

log=${FAKE_CYGRUNSRV_LOG:?}
state=${FAKE_CYGRUNSRV_STATE:?}
mkdir -p "$state"
{
    printf '%s\0' "$#"
    for a in "$@"; do
        printf '%s\0' "$a"
    done
} >>"$log"

fail()
{
    echo "cygrunsrv: $*" >&2
    exit 1
}

[ "$#" -ge 2 ] || fail "missing action"
action=$1
name=$2
shift 2
case $name in
'' | */* | *\\*) fail "invalid service name" ;;
esac
installed="$state/$name.installed"
running="$state/$name.running"

case $action in
--install | -I)
    [ -e "$installed" ] && fail "Error installing a service: OpenService: Win32 error 1073: The specified service already exists."
    params="$state/.params.$$"
    : >"$params"
    for a in "$@"; do
        printf '%s\0' "$a" >>"$params"
    done
    path=
    seen=' '
    while [ "$#" -gt 0 ]; do
        opt=$1
        shift
        case $opt in
        --shutdown | --neverexits)
            case $seen in *" $opt "*) fail "only one $opt allowed" ;; esac
            seen="$seen$opt "
            continue
            ;;
        --path | --args | --chdir | --disp | --desc | --type | --termsig | --stdin | --stdout | --stderr | --pidfile)
            case $seen in *" $opt "*) fail "only one $opt allowed" ;; esac
            seen="$seen$opt "
            ;;
        --env | --dep) ;;
        *) fail "unrecognized option $opt" ;;
        esac
        [ "$#" -gt 0 ] || fail "$opt needs an argument"
        value=$1
        shift
        case $opt in
        --path) path=$value ;;
        --type)
            case $value in
            a | auto | m | manual) ;;
            *) fail "invalid service type $value" ;;
            esac
            ;;
        --env)
            case $value in
            ?*=*) ;;
            *) fail "Malformed environment string" ;;
            esac
            ;;
        esac
    done
    [ -n "$path" ] || { rm -f "$params"; fail "--path is required"; }
    if ! [ -f "$path" ] || ! [ -x "$path" ]; then
        rm -f "$params"
        fail "Given path $path is not a valid executable"
    fi
    mv "$params" "$installed"
    ;;
--start | -S)
    [ "$#" -eq 0 ] || fail "trailing arguments"
    [ -e "$installed" ] || fail "Error starting a service: OpenService: Win32 error 1060"
    : >"$running"
    ;;
--stop | -E)
    [ "$#" -eq 0 ] || fail "trailing arguments"
    [ -e "$installed" ] || fail "Error stopping a service: OpenService: Win32 error 1060"
    rm -f "$running"
    ;;
--remove | -R)
    [ "$#" -eq 0 ] || fail "trailing arguments"
    [ -e "$installed" ] || fail "Error removing a service: OpenService: Win32 error 1060"
    rm -f "$running" "$installed"
    ;;
--query | -Q)
    [ "$#" -eq 0 ] || fail "trailing arguments"
    [ -e "$installed" ] || fail "Error querying a service: OpenService: Win32 error 1060"
    printf 'Service             : %s\n' "$name"
    if [ -e "$running" ]; then
        printf 'Current State       : Running\n'
    else
        printf 'Current State       : Stopped\n'
    fi
    printf 'Command             : (fake)\n'
    ;;
*)
    fail "unknown action $action"
    ;;
esac
exit 0

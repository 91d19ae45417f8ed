# shellcheck shell=sh disable=SC2154
## The stop_cmd of a process with a stop timeout (SIGKILL after it), carried by
## the rc.d scripts after procmgmt_pid_owned and the process waits (backends/sh).
##
## rc.subr's own stop sends sig_stop and then waits for the pid without a limit
## (wait_for_pids). With stop_cmd set, run_rc_command runs stop_precmd, then
## stop_cmd, then stop_postcmd, and does not look first whether a pid was found:
## this does, with rc.subr's words and status (_run_rc_notrunning), and asks the
## script's <name>_trusted (stop_precmd of the scripts without a timeout) about
## every pid before it signals it.
##
## A supervising daemon(8) (-r/-R, its own pid in the -P file) passes SIGTERM on
## to its child and exits at once, removing its pid files, without waiting for
## the child (daemon.c: "bail immediately"): a child that ignores SIGTERM would
## be left behind. Its pid is therefore read from the child pid file (-p) before
## the signal, and taken only when it is a child of the supervisor, runs the
## program and belongs to the service's user. Only a pid seen alive at every
## poll since the signal, still running its program, gets SIGKILL: one that
## exited and was reused in between is not signalled.

# procmgmt_runs PID PROCNAME: PID's command is PROCNAME, matched as rc.subr's
# _find_processes does (the path, its basename, "name:" as daemon(8)'s title,
# "(name)" or "[name]").
procmgmt_runs()
{
	procmgmt_args=$(ps -o args= -p "$1" 2>/dev/null) || return 1
	procmgmt_arg0=${procmgmt_args%% *}
	case $procmgmt_arg0 in
	"$2" | "${2##*/}" | "${2##*/}:" | "(${2##*/})" | "[${2##*/}]")
		return 0
		;;
	esac
	return 1
}

# procmgmt_trusted_as PID PIDFILE: the script's <name>_trusted, asked about PID
# read from PIDFILE instead of rc_pid and pidfile.
procmgmt_trusted_as()
{
	procmgmt_saved_pid=$rc_pid
	procmgmt_saved_file=$pidfile
	rc_pid=$1
	pidfile=$2
	procmgmt_rc=0
	"${name}_trusted" || procmgmt_rc=1
	rc_pid=$procmgmt_saved_pid
	pidfile=$procmgmt_saved_file
	return $procmgmt_rc
}

# procmgmt_stopped: every pid signalled is gone (true), forgetting each one
# as soon as it is seen gone.
procmgmt_stopped()
{
	if [ -n "$procmgmt_stop_pid" ] && ! procmgmt_alive "$procmgmt_stop_pid"; then
		procmgmt_stop_pid=
	fi
	if [ -n "$procmgmt_stop_child" ] && ! procmgmt_alive "$procmgmt_stop_child"; then
		procmgmt_stop_child=
	fi
	[ -z "$procmgmt_stop_pid$procmgmt_stop_child" ]
}

# procmgmt_stop SECONDS CHILD_PIDFILE CHILD_PROCNAME: send sig_stop to rc_pid,
# wait SECONDS for it (and for the supervised child named by CHILD_PIDFILE, when
# not empty) to exit, then SIGKILL what is left.
procmgmt_stop()
{
	if [ -z "$rc_pid" ]; then
		[ -n "${rc_fast-}" ] && return 0
		echo "$name not running?${pidfile:+ (check $pidfile).}" >&2
		return 1
	fi
	"${name}_trusted" || return 1
	procmgmt_stop_pid=$rc_pid
	procmgmt_stop_child=
	if [ -n "$2" ]; then
		procmgmt_stop_child=$(check_pidfile "$2" "$3")
	fi
	if [ -n "$procmgmt_stop_child" ]; then
		procmgmt_parent=$(ps -o ppid= -p "$procmgmt_stop_child" 2>/dev/null) ||
			procmgmt_parent=
		procmgmt_parent=${procmgmt_parent##* }
		if [ "$procmgmt_parent" != "$rc_pid" ]; then
			warn "not trusting $2: pid $procmgmt_stop_child is not a child of $rc_pid;" \
				"not signalling it"
			procmgmt_stop_child=
		elif ! procmgmt_trusted_as "$procmgmt_stop_child" "$2"; then
			procmgmt_stop_child=
		fi
	fi
	echo "Stopping $name."
	kill -s "${sig_stop:-TERM}" "$rc_pid" || return 1
	procmgmt_poll $(($1 * 10)) procmgmt_stopped && return 0
	warn "$name did not stop within $1 s; sending SIGKILL"
	if [ -n "$procmgmt_stop_pid" ] && procmgmt_runs "$procmgmt_stop_pid" "${procname:-$command}"; then
		kill -s KILL "$procmgmt_stop_pid"
	fi
	if [ -n "$procmgmt_stop_child" ] && procmgmt_runs "$procmgmt_stop_child" "$3"; then
		kill -s KILL "$procmgmt_stop_child"
	fi
	procmgmt_poll 50 procmgmt_stopped && return 0
	warn "$name: pid $procmgmt_stop_pid $procmgmt_stop_child still runs"
	return 1
}

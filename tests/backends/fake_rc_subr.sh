#!/bin/sh
# (sourced, not executed; the #! line tells linters which shell it is for)
# fake_rc_subr.sh: a POSIX sh stand-in for the part of FreeBSD's /etc/rc.subr
# that procmgmt's generated rc.d scripts use, plus a stand-in for daemon(8).
#
# It exists so the generated scripts can run for real on Linux. It follows
# our reading of rc.subr(8) and of FreeBSD's rc.subr source (run_rc_command
# builds one command string and evals it; with ${name}_user it wraps it in
# su -m USER -c 'sh -c "..."', with ${name}_nice in nice -n N sh -c "...").
# Passing tests prove the scripts against this reading, NOT against FreeBSD.
#
# Supported: load_rc_config (reads $PROCMGMT_FAKE_RC_CONF instead of
# /etc/rc.conf), checkyesno, warn/err/info/debug, check_pidfile,
# wait_for_pids, run_rc_command with the fast/force/one/quiet prefixes and
# start, stop, restart, status, reload, rcvar, enabled; command,
# command_args, procname, pidfile, sig_stop, sig_reload, start_precmd,
# start_postcmd, stop_precmd, stop_postcmd, reload_precmd, reload_postcmd,
# ${name}_program, _enable, _user, _chdir, _chroot (string only), _nice,
# _umask, _env_file and _flags; a stop_cmd replaces the default stop as in
# rc.subr (stop_precmd, the command, stop_postcmd; no check for a pid first).
# fake_daemon implements daemon(8)'s -f, -r, -R secs, -p child pidfile,
# -P supervisor pidfile and -o logfile.
#
# stop and reload run ${rc_arg}_precmd as rc.subr's _run_rc_precmd does:
# only once a pid was found (rc_pid is set for it), before anything is
# signalled (stop: before "Stopping NAME."); a failing precmd ends the
# command with status 1 and no message of its own, unless the force prefix
# is used, which ignores the failure. ${rc_arg}_postcmd runs after the signal
# (stop: after the pids are gone); its status is the command's status.
#
# Test hook: PROCMGMT_FAKE_SU=1 replaces su(1) by a function that runs the
# command string with sh -c, as su's shell would, without switching users
# (lets unprivileged tests check the quoting of the su layer); nice(1) then
# becomes a function too, so that "nice -n N su ..." reaches that function.

# Read by the scripts that source this file.
# shellcheck disable=SC2034
rc_service="$0"

warn()
{
	echo "$0: WARNING: $*" >&2
}

err()
{
	_err_code=$1
	shift
	echo "$0: ERROR: $*" >&2
	exit "$_err_code"
}

info()
{
	:
}

debug()
{
	:
}

checkyesno()
{
	_value=
	eval "_value=\${$1-}"
	case $_value in
	[Yy][Ee][Ss] | [Tt][Rr][Uu][Ee] | [Oo][Nn] | 1)
		return 0
		;;
	[Nn][Oo] | [Ff][Aa][Ll][Ss][Ee] | [Oo][Ff][Ff] | 0)
		return 1
		;;
	*)
		warn "\$$1 is not set properly - see rc.conf(5)."
		return 1
		;;
	esac
}

load_rc_config()
{
	if [ -z "${_rc_conf_loaded-}" ]; then
		if [ -n "${PROCMGMT_FAKE_RC_CONF-}" ] && [ -r "$PROCMGMT_FAKE_RC_CONF" ]; then
			# shellcheck source=/dev/null
			. "$PROCMGMT_FAKE_RC_CONF"
		fi
		_rc_conf_loaded=true
	fi
}

# _fake_alive PID: PID exists and is not a zombie (a zombie still answers
# kill -0 until its parent reaps it; FreeBSD's ps would not list it as running).
_fake_alive()
{
	kill -0 "$1" 2>/dev/null || return 1
	if [ -r "/proc/$1/stat" ]; then
		_fake_stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
		_fake_stat=${_fake_stat##*") "}
		case $_fake_stat in
		Z* | X*)
			return 1
			;;
		esac
	fi
	return 0
}

# check_pidfile PIDFILE PROCNAME: print the pid from PIDFILE when that
# process runs and its first word is PROCNAME (or its basename), as rc.subr.
check_pidfile()
{
	[ -f "$1" ] || return 0
	read -r _pid _junk <"$1" || [ -n "${_pid-}" ] || return 0
	: "${_junk-}"
	case $_pid in
	'' | *[!0-9]*)
		return 0
		;;
	esac
	_fake_alive "$_pid" || return 0
	_fake_args=$(ps -o args= -p "$_pid" 2>/dev/null) || return 0
	# shellcheck disable=SC2086 # split the command line into words
	set -- $_fake_args "$2"
	_fake_arg0=$1
	_fake_want=
	eval "_fake_want=\${$#}"
	case $_fake_arg0 in
	"$_fake_want" | "${_fake_want##*/}" | "${_fake_want##*/}:")
		echo "$_pid"
		;;
	esac
}

# wait_for_pids PID...: wait until every PID is gone (FreeBSD waits forever;
# the fake gives up after 30 s so that a broken test cannot hang).
wait_for_pids()
{
	_fake_tries=300
	for _fake_p in "$@"; do
		while _fake_alive "$_fake_p"; do
			_fake_tries=$((_fake_tries - 1))
			if [ "$_fake_tries" -le 0 ]; then
				warn "pid $_fake_p did not exit"
				return 1
			fi
			sleep 0.1
		done
	done
}

# limits(1) with rc.subr's arguments (-C class [limits]): no resource limits here.
limits()
{
	shift 2
	"$@"
}

if [ "${PROCMGMT_FAKE_SU-}" = 1 ]; then
	# su -m USER -c STRING: run STRING with a shell, as su would (no user switch).
	su()
	{
		[ "$1" = -m ] && shift
		shift
		[ "$1" = -c ] && shift
		sh -c "$1"
	}
	# nice -n N CMD...: run CMD here, so that CMD may be the su function above
	# (nice changes no parsing, only the priority).
	nice()
	{
		shift 2
		"$@"
	}
fi

_run_rc_doit()
{
	_m=$(umask)
	if [ -n "${_umask-}" ]; then
		umask "$_umask"
	fi
	eval "$*"
	_return=$?
	umask "$_m"
	[ "$_return" -eq 0 ] || [ -n "${rc_force-}" ]
}

# _run_rc_precmd: run ${rc_arg}_precmd (in _precmd) with the extra arguments;
# false when it failed and force was not given (rc.subr's helper, without
# its required_* checks, which the fake does not support).
_run_rc_precmd()
{
	if [ -n "${_precmd-}" ]; then
		eval "$_precmd $rc_extra_args"
		_return=$?
		if [ "$_return" -ne 0 ] && [ -z "${rc_force-}" ]; then
			return 1
		fi
	fi
	return 0
}

# _run_rc_postcmd: run ${rc_arg}_postcmd (in _postcmd); its status becomes
# run_rc_command's, as in rc.subr.
_run_rc_postcmd()
{
	if [ -n "${_postcmd-}" ]; then
		eval "$_postcmd $rc_extra_args"
		_return=$?
	fi
	return 0
}

_run_rc_killcmd()
{
	_cmd="kill -$1 $rc_pid"
	if [ -n "${_user-}" ]; then
		_cmd="su -m $_user -c 'sh -c \"$_cmd\"'"
	fi
	echo "$_cmd"
}

run_rc_command()
{
	_return=0
	rc_arg=${1-}
	[ -n "${name-}" ] || err 3 "run_rc_command: \$name is not set."
	[ $# -gt 0 ] && shift
	rc_extra_args="$*"
	_rc_prefix=
	case $rc_arg in
	fast*)
		rc_arg=${rc_arg#fast}
		rc_fast=yes
		rc_quiet=yes
		;;
	force*)
		rc_arg=${rc_arg#force}
		rc_force=yes
		_rc_prefix=force
		[ -n "${rcvar-}" ] && eval "$rcvar=YES"
		;;
	one*)
		rc_arg=${rc_arg#one}
		_rc_prefix=one
		[ -n "${rcvar-}" ] && eval "$rcvar=YES"
		;;
	quiet*)
		rc_arg=${rc_arg#quiet}
		_rc_prefix=quiet
		rc_quiet=yes
		;;
	esac

	eval "_override_command=\${${name}_program-}"
	command=${_override_command:-${command-}}
	_procname=${procname:-$command}

	if [ -n "${flags-}" ]; then
		rc_flags=$flags
	else
		eval "rc_flags=\${${name}_flags-}"
	fi
	_login_class=
	_limits=
	eval "_chdir=\${${name}_chdir-} _chroot=\${${name}_chroot-} \
	    _nice=\${${name}_nice-} _user=\${${name}_user-} \
	    _env=\${${name}_env-} _env_file=\${${name}_env_file-} \
	    _umask=\${${name}_umask-} _limits=\${${name}_limits-} \
	    _login_class=\${${name}_login_class:-daemon}"

	if [ -n "$_env_file" ] && [ -r "$_env_file" ]; then
		set -a
		# shellcheck source=/dev/null
		. "$_env_file"
		set +a
	fi
	if [ -n "$_user" ] && [ "$_user" = "$(id -un)" ]; then
		unset _user
	fi

	rc_pid=
	if [ -n "${pidfile-}" ] && [ -n "$_procname" ]; then
		rc_pid=$(check_pidfile "$pidfile" "$_procname")
	fi

	case $rc_arg in
	start | stop | restart | status | reload | rcvar | enabled) ;;
	*)
		echo "Usage: $0 [fast|force|one|quiet](start|stop|restart|rcvar|enabled|status|reload)" >&2
		exit 1
		;;
	esac

	if [ "$rc_arg" = enabled ]; then
		checkyesno "$rcvar"
		return $?
	fi
	if { [ -n "${rcvar-}" ] && [ "$rc_arg" != rcvar ] && [ "$rc_arg" != stop ] &&
	    [ "$rc_arg" != status ]; } ||
	    { [ -n "${rcvar-}" ] && [ "$rc_arg" = stop ] && [ -z "$rc_pid" ]; }; then
		if ! checkyesno "$rcvar"; then
			if [ -z "${rc_quiet-}" ]; then
				echo "Cannot '$rc_arg' $name. Set $rcvar to YES in /etc/rc.conf" \
				    "or use 'one$rc_arg' instead of '$rc_arg'."
			fi
			return 0
		fi
	fi

	if [ "$rc_arg" = start ] && [ -z "${rc_fast-}" ] && [ -n "$rc_pid" ]; then
		[ -n "${rc_quiet-}" ] || echo "$name already running? (pid=$rc_pid)." >&2
		return 1
	fi

	# A custom ${rc_arg}_cmd runs instead of the default: precmd, the command
	# (through _run_rc_doit, so with the umask), postcmd; whether a pid was
	# found is for the command to check.
	eval "_cmd=\${${rc_arg}_cmd-} _precmd=\${${rc_arg}_precmd-} \
	    _postcmd=\${${rc_arg}_postcmd-}"
	if [ -n "$_cmd" ]; then
		_run_rc_precmd || return 1
		_run_rc_doit "$_cmd $rc_extra_args" || return 1
		_run_rc_postcmd
		return $_return
	fi

	case $rc_arg in
	start)
		if [ ! -x "$command" ]; then
			warn "run_rc_command: cannot run $command"
			return 1
		fi
		if [ -n "${start_precmd-}" ]; then
			if ! eval "$start_precmd $rc_extra_args" && [ -z "${rc_force-}" ]; then
				warn "failed precmd routine for $name"
				return 1
			fi
		fi
		[ -n "${rc_quiet-}" ] || echo "Starting $name."
		if [ -n "$_chroot" ]; then
			_cd=
			_doit="${_nice:+nice -n $_nice }${_env:+env $_env }chroot ${_user:+-u $_user }$_chroot $command $rc_flags ${command_args-}"
		else
			_cd="${_chdir:+cd $_chdir && }"
			_doit="${_env:+env $_env }$command $rc_flags ${command_args-}"
			if [ -n "${_user-}" ]; then
				_doit="su -m $_user -c 'sh -c \"$_doit\"'"
			fi
			if [ -n "$_nice" ]; then
				if [ -z "${_user-}" ]; then
					_doit="sh -c \"$_doit\""
				fi
				_doit="nice -n $_nice $_doit"
			fi
		fi
		_doit="$_cd limits -C $_login_class $_limits $_doit"
		if ! _run_rc_doit "$_doit"; then
			warn "failed to start $name"
			return 1
		fi
		if [ -n "${start_postcmd-}" ]; then
			eval "$start_postcmd $rc_extra_args"
		fi
		;;
	stop)
		if [ -z "$rc_pid" ]; then
			[ -n "${rc_fast-}" ] && return 0
			echo "$name not running?${pidfile:+ (check $pidfile).}" >&2
			return 1
		fi
		_precmd=${stop_precmd-} _postcmd=${stop_postcmd-}
		_run_rc_precmd || return 1
		echo "Stopping $name."
		_doit=$(_run_rc_killcmd "${sig_stop:-TERM}")
		_run_rc_doit "$_doit" || return 1
		wait_for_pids "$rc_pid"
		_run_rc_postcmd
		;;
	reload)
		if [ -z "$rc_pid" ]; then
			echo "$name not running?${pidfile:+ (check $pidfile).}" >&2
			return 1
		fi
		_precmd=${reload_precmd-} _postcmd=${reload_postcmd-}
		_run_rc_precmd || return 1
		_doit=$(_run_rc_killcmd "${sig_reload:-HUP}")
		_run_rc_doit "$_doit" || return 1
		_run_rc_postcmd
		;;
	restart)
		# rc_extra_args is split into words on purpose, as rc.subr does.
		# shellcheck disable=SC2086
		(run_rc_command "${_rc_prefix}stop" $rc_extra_args)
		# shellcheck disable=SC2086
		(run_rc_command "${_rc_prefix}start" $rc_extra_args)
		return $?
		;;
	status)
		if [ -n "$rc_pid" ]; then
			echo "$name is running as pid $rc_pid."
		else
			echo "$name is not running."
			return 1
		fi
		;;
	rcvar)
		echo "# $name"
		eval "echo \"$rcvar=\\\"\${$rcvar-}\\\"\""
		;;
	esac
	return $_return
}

# fake_daemon [-f] [-r] [-R SECS] [-p PIDFILE] [-P PIDFILE] [-o LOGFILE] COMMAND
# [ARG...]: daemon(8)'s subset. As daemon(8) with any of -p -P -o -r -R, a
# supervisor stays behind (_fake_supervise): it starts the command in a
# session of its own with stdin from /dev/null and output appended to LOGFILE
# (or /dev/null with -f), writes the command's pid to the -p file and its own
# to the -P file, restarts the command after SECS (-R; 1 with -r) whenever it
# exits, and on SIGTERM passes the signal on to the command and exits at once,
# removing both pid files, without waiting for the command (daemon.c: "bail
# immediately"). Differences: output is not piped through the supervisor; a
# SIGTERM during the restart delay ends the supervisor without starting the
# command again (daemon(8) starts it and passes the signal on); the
# supervisor's title ("daemon: ...", which rc.subr's procname check of a
# supervising daemon(8) matches) comes from the caller (the tests run this
# through "exec -a daemon:").
fake_daemon()
{
	_d_pidfile=
	_d_ppidfile=
	_d_out=
	_d_null=
	_d_restart=
	_d_delay=1
	OPTIND=1
	while getopts fp:P:o:rR: _d_opt; do
		case $_d_opt in
		f) _d_null=1 ;;
		p) _d_pidfile=$OPTARG ;;
		P) _d_ppidfile=$OPTARG ;;
		o) _d_out=$OPTARG ;;
		r) _d_restart=1 ;;
		R)
			_d_restart=1
			_d_delay=$OPTARG
			;;
		*)
			echo "usage: daemon [-fr] [-p child_pidfile] [-P supervisor_pidfile]" \
			    "[-o output_file] [-R restart_delay_secs] command arguments ..." >&2
			return 1
			;;
		esac
	done
	shift $((OPTIND - 1))
	if [ $# -eq 0 ]; then
		echo "daemon: no command given" >&2
		return 1
	fi
	for _d_file in "$_d_pidfile" "$_d_ppidfile"; do
		if [ -n "$_d_file" ] && ! (: >>"$_d_file") 2>/dev/null; then
			echo "daemon: cannot write pid file $_d_file" >&2
			return 1
		fi
	done
	(
		exec </dev/null
		if [ -n "$_d_out" ]; then
			exec >>"$_d_out" 2>&1
		elif [ -n "$_d_null" ]; then
			exec >/dev/null 2>&1
		fi
		_fake_supervise "$@"
	) &
	_d_pid=$!
	if [ -n "$_d_ppidfile" ]; then
		echo "$_d_pid" >"$_d_ppidfile"
	fi
	return 0
}

# _fake_supervise COMMAND [ARG...]: the supervisor of fake_daemon (its
# variables set), run in a background subshell.
_fake_supervise()
{
	_d_child=
	trap '[ -z "$_d_child" ] || kill -s TERM "$_d_child" 2>/dev/null
	_fake_daemon_exit' TERM
	while :; do
		setsid "$@" &
		_d_child=$!
		if [ -n "$_d_pidfile" ]; then
			echo "$_d_child" >"$_d_pidfile"
		fi
		wait "$_d_child"
		_d_child=
		[ -n "$_d_restart" ] || break
		sleep "$_d_delay" &
		wait $!
	done
	_fake_daemon_exit
}

# _fake_daemon_exit: remove the supervisor's pid files and exit, as daemon(8).
_fake_daemon_exit()
{
	for _d_file in "$_d_pidfile" "$_d_ppidfile"; do
		[ -z "$_d_file" ] || rm -f "$_d_file"
	done
	exit 1
}

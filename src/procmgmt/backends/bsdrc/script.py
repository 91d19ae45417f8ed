r"""The text of a FreeBSD rc.d script on top of rc.subr(8), from the checked model.

Each process becomes ``etc/rc.d/<name>`` in the classic FreeBSD style:
PROVIDE/REQUIRE/KEYWORD headers for rcorder(8), ``. /etc/rc.subr``,
``name``/``rcvar``, ``load_rc_config``, ``: "${<name>_knob:=default}"``
defaults that rc.conf(5) can override, ``command``/``pidfile``, a
``start_precmd`` and ``run_rc_command "$1"``. The environment goes into a
separate file in the same store entry, loaded by rc.subr through
``<name>_env_file`` (with ``set -a``, so it is exported).

How the pieces map (nix-processmgmt's ``createBSDRCScript``, with its
defects fixed):

- A process that can daemonize runs as ``command`` with its own pid file.
  A foreground-only one runs under FreeBSD ``daemon(8)``:
  ``daemon -f -p <pid file> -o <log file> <exe> <args>`` with the *derived*
  pid file (the original passed a possibly null ``pidFile`` to daemon(8)
  while ``pidfile=`` used the derived one), and ``procname=<exe>`` so that
  rc.subr's pid check matches the child daemon(8) wrote into the pid file.
- ``initialize`` runs in ``start_precmd``, i.e. as root, before rc.subr
  switches to ``<name>_user``.
- rc.subr keeps per-service settings in ``${name}_xxx`` variables, so
  ``name`` must be a shell identifier. Names with ``-``, ``.`` or ``@`` get a
  sanitized variable prefix (``php-fpm`` -> ``php_fpm``, as FreeBSD's own
  ports do); the file name and PROVIDE keep the real name.

**How ``command_args`` is quoted.** rc.subr does not exec an argument
vector: it builds a string and ``eval``\ s it. Without a user or nice level
that string is ``cd DIR && limits -C daemon $command $rc_flags
$command_args`` (one level of shell parsing). With ``<name>_nice`` it
becomes ``nice -n N sh -c "..."`` (two levels: double quotes, then
``sh -c``), and with ``<name>_user`` ``su -m USER -c 'sh -c "..."'`` (three
levels: single quotes, double quotes in su's shell, ``sh -c``). rc.subr
also drops ``_user`` when the caller already is that user, and rc.conf(5)
may set or change ``_user``/``_nice``/``_chroot`` after this file was
generated. A string quoted once at generation time is therefore right
for one of these cases only. The script keeps the exact argument vector
instead and ``start_precmd`` (which rc.subr runs after loading rc.conf and
before building that string) quotes it for the case rc.subr is about to
use: every argument single-quoted for ``sh -c``/eval, then ``\ $ ` "``
escaped for the double-quoted layer, then ``'`` written as ``'\''`` for
su's single-quoted layer. ``tests/backends/test_bsdrc.py`` replays rc.subr's
string building with these values for arbitrary arguments. Limit: su(1)
runs the command string with root's login shell; the double-quoted layer
assumes it is a POSIX sh (FreeBSD's default for root since 14.0). With
csh as root's shell, arguments containing ``! $ ` " \\`` or newlines may
not survive the user switch; translation warns about such arguments.
"""

from __future__ import annotations

from procmgmt import readiness as rd
from procmgmt.backends._shell import PID_OWNED_SH, PROCESS_WAIT_SH, quote, shell_file
from procmgmt.backends.bsdrc.model import (
    DEFAULT_RELOAD_SIGNAL,
    DEFAULT_STOP_SIGNAL,
    RcScriptModel,
)
from procmgmt.backends.shared import ready

#: ``procmgmt_replace`` and ``procmgmt_command_args`` (helpers.sh).
HELPERS_SH = shell_file("procmgmt.backends.bsdrc", "helpers.sh")
#: ``procmgmt_stop``, the stop_cmd of a process with a stop timeout (stop.sh).
STOP_SH = shell_file("procmgmt.backends.bsdrc", "stop.sh")
#: ``procmgmt_start_log_writer``, start_precmd's part of log rotation (log_start.sh).
LOG_START_SH = shell_file("procmgmt.backends.bsdrc", "log_start.sh")
#: The log writer program: the shared rotating writer and its main part.
LOG_WRITER_SH = shell_file("procmgmt.backends", "sh/log_writer.sh")
LOG_SERVE_SH = shell_file("procmgmt.backends.bsdrc", "log_serve.sh")


def _snippet(text: str) -> list[str]:
    """Lines of a shell snippet: a one-liner is indented, longer text kept verbatim
    (indenting could change here-documents and multi-line strings)."""
    text = text.strip("\n")
    if not text.strip():
        return ["\t:"]
    if "\n" not in text:
        return ["\t" + text.strip()]
    return text.split("\n")


def render_env_file(script: RcScriptModel) -> str:
    """``NAME=value`` lines sourced by rc.subr (``set -a``: every one is exported)."""
    lines = [f"# Environment of {script.file}, loaded by rc.subr(8) through "
             f"{script.name}_env_file."]
    lines += [f"{k}={quote(v)}" for k, v in sorted(script.environment.items())]
    return "\n".join(lines) + "\n"


def render_script(script: RcScriptModel) -> str:
    """The rc.d script text (see the module docstring for the design)."""
    p = script.name
    knobs = ["user", "chdir", "nice", "umask"] + (["env_file"] if script.environment else [])
    lines = [
        "#!/bin/sh",
        "#",
        f"# PROVIDE: {' '.join(script.provides)}",
    ]
    if script.require_line:
        lines.append(f"# REQUIRE: {' '.join(script.require_line)}")
    if script.before:
        lines.append(f"# BEFORE: {' '.join(script.before)}")
    if script.keywords:
        lines.append(f"# KEYWORD: {' '.join(script.keywords)}")
    lines += [
        "#",
        f"# {script.description}",
        "#",
        "# Generated by procmgmt (bsdrc backend) for FreeBSD rc.subr(8). Run it with",
        f"# 'onestart'/'onestop', or set {script.rcvar}=\"YES\" in rc.conf(5) to start it",
        "# at boot. The values below are defaults: rc.conf(5) may set",
        "# " + ", ".join(f"{p}_{k}" for k in knobs) + ".",
        "",
        "# rc.subr reads name, rcvar, desc, command, procname, pidfile, the signals,",
        "# start_precmd and extra_commands: shellcheck cannot see that use (SC2034).",
        "# shellcheck disable=SC2034",
        "",
        "# The system's rc.subr, not part of this store entry (SC1091).",
        "# shellcheck source=/dev/null",
        f". {quote(script.rc_subr)}",
        "",
        f"name={quote(p)}",
        f"rcvar={quote(script.rcvar)}",
        f"desc={quote(script.description)}",
    ]
    if script.extra_commands:
        lines.append(f"extra_commands={quote(' '.join(script.extra_commands))}")
    lines += [
        "",
        '# rc.conf(5) and rc.conf.d/ settings; they take precedence over the defaults below.',
        'load_rc_config "$name"',
        "",
        f': "${{{script.rcvar}:={script.enable_default}}}"',
    ]
    if script.user:
        lines.append(f': "${{{p}_user:={script.user}}}"')
    if script.chdir:
        lines.append(f': "${{{p}_chdir:={script.chdir}}}"')
    if script.nice is not None:
        lines.append(f': "${{{p}_nice:={script.nice}}}"')
    if script.umask is not None:
        lines.append(f': "${{{p}_umask:={script.umask}}}"')
    for knob, value in sorted(script.rcvar_defaults.items()):
        lines.append(f': "${{{p}_{knob}:={value}}}"')
    if script.environment or script.log_rotation:
        what = "environment file" if script.environment else "log writer"
        lines += [
            "",
            f"# The {what} is in this script's store entry. rc.subr sets",
            "# rc_service to the script being run, also when /etc/rc sources it at boot",
            "# through a link in the local rc.d directory; realpath resolves the link.",
            'procmgmt_root=$(realpath "${rc_service:-$0}")',
            f"procmgmt_root=${{procmgmt_root%/{script.script_path}}}",
        ]
    if script.environment:
        lines.append(f': "${{{p}_env_file:=$procmgmt_root/{script.env_path}}}"')
    lines.append("")
    if script.path:
        lines.append(f'PATH={quote(script.path)}:"$PATH"; export PATH')
    lines += [
        f"command={quote(script.command)}",
    ]
    if script.procname != script.command:
        lines += [
            "# The pid file names another process than command's (daemon(8) writes",
            "# its child's pid with -p; a starter such as pg_ctl leaves the server's):",
            "# rc.subr's pid check must look for that process.",
            f"procname={quote(script.procname)}",
        ]
    lines.append(f"pidfile={quote(script.pid_file)}")
    if script.stop_signal != DEFAULT_STOP_SIGNAL:
        lines.append(f"sig_stop={script.stop_signal}")
    if script.reload_signal != DEFAULT_RELOAD_SIGNAL:
        lines.append(f"sig_reload={script.reload_signal}")
    check = script.readiness
    waits = ready.checkable(check)
    lines.append(f"start_precmd={p}_prestart")
    if waits:
        lines.append(f"start_postcmd={p}_poststart")
    if script.stop_timeout is None:
        lines.append(f"stop_precmd={p}_trusted")
    else:
        lines.append(f"stop_cmd={p}_stop")
    lines.append(f"reload_precmd={p}_trusted")
    lines += [
        "",
        "# rc.subr found pid $rc_pid in $pidfile. The user the process runs as can",
        "# write that file: root signals the pid only when that user owns it.",
        "# rc.subr sets rc_pid (SC2154).",
        "# shellcheck disable=SC2154",
        f"{p}_trusted()",
        "{",
        f'	[ -n "${{{p}_user-}}" ] || return 0',
        f'	procmgmt_uid=$(id -u "${{{p}_user}}") || return 1',
        '	if procmgmt_pid_owned "$rc_pid" "$procmgmt_uid"; then',
        "		return 0",
        "	fi",
        '	warn "not trusting $pidfile: pid $rc_pid belongs to uid ${procmgmt_owner:-unknown},"'
        f' "not to ${{{p}_user}}; not signalling it"',
        "	return 1",
        "}",
        "",
        PID_OWNED_SH.rstrip("\n"),
        "",
        *_wait_lines(script),
        "# Runs before the process starts, as root (before the switch to the user).",
        f"{p}_initialize()",
        "{",
        *_snippet(script.initialize),
        "}",
        "",
        f"{p}_prestart()",
        "{",
    ]
    if script.environment:
        lines += [
            f'\tif [ ! -r "${p}_env_file" ]; then',
            f'\t\twarn "cannot read the environment file ${p}_env_file"',
            "\t\treturn 1",
            "\tfi",
        ]
    if isinstance(check, rd.LogLine):
        lines.append("\t# Only log lines written after this size count as ready.")
        lines += ["\t" + line for line in ready.offset_lines(check)]
    lines += [
        f"\tif ! {p}_initialize; then",
        '\t\twarn "initialize failed"',
        "\t\treturn 1",
        "\tfi",
    ]
    if script.log_rotation:
        assert script.log_file is not None
        lines += [
            "\t# daemon(8) writes into the fifo of the rotating log writer.",
            f'\tprocmgmt_start_log_writer "$procmgmt_root/{script.log_writer_path}" \\',
            f"\t    {quote(script.log_file + '.fifo')} {quote(script.log_file)} \\",
            f"\t    {script.log_rotation[0]} {script.log_rotation[1]} "
            f'"${{{p}_chroot-}}" "${{{p}_user-}}" || return 1',
        ]
    lines += [
        f'\tprocmgmt_command_args "${{{p}_chroot-}}" "${{{p}_user-}}" "${{{p}_nice-}}"'
        + (" \\" if script.argv else ""),
    ]
    for i, arg in enumerate(script.argv):
        more = " \\" if i < len(script.argv) - 1 else ""
        lines.append(f"\t    {quote(arg)}{more}")
    lines += ["}", ""]
    if check is not None and waits:
        lines += _poststart_lines(script, check)
    elif check is not None:
        lines += [f"# Readiness ({' '.join(check.describe().split())}) cannot be checked "
                  "from sh: procmgmt's", "# engine waits for it during a switch; this script "
                  "does not.", ""]
    lines += [
        HELPERS_SH.rstrip("\n"),
        "",
        *([ready.library([check]).rstrip("\n"), ""] if check is not None and waits
          else []),
        'run_rc_command "$1"',
        "",
    ]
    return "\n".join(lines)


def _wait_lines(script: RcScriptModel) -> list[str]:
    """The helpers of a stop timeout (``stop_cmd``: sig_stop, then SIGKILL after
    the timeout; stop.sh says how, and why a supervised child's pid is read first)
    and of log rotation (log_start.sh), with the process waits both use."""
    if script.stop_timeout is None and script.log_rotation is None:
        return []
    lines = [PROCESS_WAIT_SH.strip("\n"), ""]
    if script.log_rotation is not None:
        lines += [LOG_START_SH.strip("\n"), ""]
    if script.stop_timeout is not None:
        child = ([quote(script.child_pid_file), quote(script.program)]
                 if script.child_pid_file else ["''", "''"])
        lines += [
            STOP_SH.strip("\n"),
            "",
            f"# Stop: {script.stop_signal}, SIGKILL after {script.stop_timeout} s.",
            f"{script.name}_stop()",
            "{",
            f"\tprocmgmt_stop {script.stop_timeout} {' '.join(child)}",
            "}",
            "",
        ]
    return lines


def render_log_writer(script: RcScriptModel) -> str:
    """The log writer program (log rotation): run by start_precmd as
    ``WRITER FIFO LOGFILE MAX_BYTES BACKUPS``, as the process's user."""
    return "\n".join([
        "#!/bin/sh",
        f"# The rotating log writer of {script.file}, started by its rc.d script",
        "# (generated by procmgmt, bsdrc backend): daemon(8) writes the process's",
        "# output into FIFO, this writes it to LOGFILE, rotated at MAX_BYTES with",
        "# BACKUPS older files kept.",
        "",
        "# The shared writer also sets what only the sysvinit scripts read (SC2034).",
        "# shellcheck disable=SC2034",
        "",
        LOG_WRITER_SH.strip("\n"),
        "",
        LOG_SERVE_SH.strip("\n"),
        "",
        'procmgmt_log_serve "$@"',
        "",
    ])


def _poststart_lines(script: RcScriptModel, check: rd.Readiness) -> list[str]:
    """``start_postcmd``: wait until the declared check passes. On timeout the
    process is stopped again (only a pid the service's user owns: the same check
    as ``stop_precmd``) and the script exits 1 through rc.subr's ``err``, as
    systemd fails a unit whose ExecStartPost= fails."""
    p = script.name
    wait = ready.wait_lines(script.file, check, pid_file=script.pid_file,
                                offset='"$procmgmt_ready_offset"', indent="\t")
    return [
        f"# Ready means: {' '.join(check.describe().split())}. procmgmt's engine probes",
        f"# that itself and sets {ready.READY_WAIT_ENV}=0.",
        f"{p}_poststart()",
        "{",
        f'\tif [ "${{{ready.READY_WAIT_ENV}:-1}}" = 0 ]; then',
        "\t\treturn 0",
        "\tfi",
        "\tprocmgmt_ready_rc=0",
        *wait[:-1],
        wait[-1] + " || procmgmt_ready_rc=$?",
        '\tif [ "$procmgmt_ready_rc" -ne 0 ]; then',
        '\t\tprocmgmt_ready_pid=$(check_pidfile "$pidfile" "${procname:-$command}")',
        '\t\tif [ -n "$procmgmt_ready_pid" ]; then',
        "\t\t\t# The same owner check as stop's: the user can write the pid file.",
        '\t\t\trc_pid=$procmgmt_ready_pid',
        f"\t\t\tif {p}_trusted; then",
        '\t\t\t\tkill -s "${sig_stop:-TERM}" "$procmgmt_ready_pid"',
        '\t\t\t\twait_for_pids "$procmgmt_ready_pid"',
        "\t\t\tfi",
        "\t\tfi",
        '\t\terr 1 "$name did not become ready; stopped it again"',
        "\tfi",
        "}",
        "",
    ]

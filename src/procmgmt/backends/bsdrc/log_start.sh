# shellcheck shell=sh
## start_precmd's part of log rotation, carried by the rc.d scripts whose
## foreground process's log rotates (after the process waits, backends/sh):
## daemon(8) -o writes into the fifo of the log writer program (log_serve.sh).

# procmgmt_start_log_writer WRITER FIFO LOGFILE MAX_BYTES BACKUPS CHROOT USER:
# start the log writer program (log_serve.sh) as the user rc.subr is about to
# start daemon(8) as (su, as rc.subr's start does; dropped when we already
# are USER or a chroot switches users), and wait until its fifo is there.
# A fifo left by an earlier run is removed first: daemon(8) must open the new
# one.
procmgmt_start_log_writer()
{
	case "$1$2$3" in
	*\'*)
		warn "cannot start the log writer: a path contains a quote"
		return 1
		;;
	esac
	rm -f "$2"
	(
		# Nothing of the script's output stays open (procmgmt waits for that).
		exec </dev/null >/dev/null 2>&1
		if [ -z "$6" ] && [ -n "$7" ] && [ "$7" != "$(id -un)" ]; then
			su -m "$7" -c "exec '$1' '$2' '$3' $4 $5"
		else
			exec "$1" "$2" "$3" "$4" "$5"
		fi
	) &
	if ! procmgmt_poll 50 test -p "$2"; then
		warn "the log writer did not create its fifo $2"
		return 1
	fi
}

# shellcheck shell=sh disable=SC2154
## The helpers every rc.d script carries, after its start_precmd: rc.subr
## builds the command string from command_args, which procmgmt_command_args
## quotes for the layers rc.subr is about to use (see procmgmt.backends.bsdrc.script).
# procmgmt_replace FROM TO STRING: STRING with every FROM replaced by TO, in
# procmgmt_out (plain parameter expansion: no sed, no subshell).
procmgmt_replace()
{
	procmgmt_in=$3
	procmgmt_out=
	while :; do
		case $procmgmt_in in
		*"$1"*)
			procmgmt_out=$procmgmt_out${procmgmt_in%%"$1"*}$2
			procmgmt_in=${procmgmt_in#*"$1"}
			;;
		*)
			break
			;;
		esac
	done
	procmgmt_out=$procmgmt_out$procmgmt_in
}

# procmgmt_command_args CHROOT USER NICE ARG...: set command_args so that
# rc.subr's start passes every ARG exactly. rc.subr evals
# "$command $rc_flags $command_args" directly (chroot, or neither user nor
# nice), inside nice -n N sh -c "..." (nice), or inside
# su -m USER -c 'sh -c "..."' (user; dropped when we already are USER).
procmgmt_command_args()
{
	procmgmt_layers='eval'
	if [ -z "$1" ]; then
		if [ -n "$2" ] && [ "$2" != "$(id -un)" ]; then
			procmgmt_layers='su'
		elif [ -n "$3" ]; then
			procmgmt_layers='sh'
		fi
	fi
	shift 3
	command_args=
	for procmgmt_arg in "$@"; do
		procmgmt_replace "'" "'\\''" "$procmgmt_arg"
		procmgmt_word="'$procmgmt_out'"
		if [ "$procmgmt_layers" != eval ]; then
			procmgmt_replace "\\" "\\\\" "$procmgmt_word"
			procmgmt_replace '$' '\$' "$procmgmt_out"
			procmgmt_replace '`' '\`' "$procmgmt_out"
			procmgmt_replace '"' '\"' "$procmgmt_out"
			procmgmt_word=$procmgmt_out
		fi
		if [ "$procmgmt_layers" = su ]; then
			procmgmt_replace "'" "'\\''" "$procmgmt_word"
			procmgmt_word=$procmgmt_out
		fi
		command_args="$command_args${command_args:+ }$procmgmt_word"
	done
}

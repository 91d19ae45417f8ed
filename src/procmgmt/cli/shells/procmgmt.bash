# shellcheck shell=bash
## Bash completion for procmgmt. 'procmgmt completion bash' prints this file with
## the data block below filled from the command-line parser (commands, options,
## option values); process names come from 'procmgmt completion --names' at the
## time of completion, with the settings options typed on the line (state dir,
## profile) passed along, so they are those of the deployment meant.

# @DATA@

_procmgmt_complete_words() {
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
}

_procmgmt_complete_files() {
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$1")
}

_procmgmt() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local prev=${COMP_WORDS[COMP_CWORD-1]}
    # bash splits '--opt=value' at '=' (COMP_WORDBREAKS): the option is the word before
    if [[ $cur == = ]]; then
        cur=""
    elif [[ $prev == = ]] && ((COMP_CWORD > 2)); then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
    local cmd="" i word
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ -z $cmd ]]; then
        _procmgmt_complete_words "$_procmgmt_commands --help --version" "$cur"
        return
    fi
    local values=${_procmgmt_values["$cmd $prev"]-}
    if [[ -n $values ]]; then
        case $values in
            @file) _procmgmt_complete_files "$cur" ;;
            @any) ;;
            *) _procmgmt_complete_words "$values" "$cur" ;;
        esac
        return
    fi
    if [[ $cur == -* ]]; then
        _procmgmt_complete_words "${_procmgmt_options[$cmd]-}" "$cur"
        return
    fi
    case ${_procmgmt_positionals[$cmd]-} in
        @file) _procmgmt_complete_files "$cur" ;;
        @names)
            local -a settings=()
            for ((i = 2; i < COMP_CWORD; i++)); do
                word=${COMP_WORDS[i]}
                if [[ " $_procmgmt_settings " == *" ${word%%=*} "* ]]; then
                    if [[ $word == *=* ]]; then
                        settings+=("$word")
                    elif [[ ${COMP_WORDS[i+1]} == = ]] && ((i + 2 < COMP_CWORD)); then
                        settings+=("$word=${COMP_WORDS[i+2]}")
                        i=$((i + 2))
                    elif ((i + 1 < COMP_CWORD)); then
                        settings+=("$word" "${COMP_WORDS[i+1]}")
                        i=$((i + 1))
                    fi
                fi
            done
            _procmgmt_complete_words \
                "$(procmgmt completion --names "${settings[@]}" 2>/dev/null)" "$cur"
            ;;
        @any | "") ;;
        *) _procmgmt_complete_words "${_procmgmt_positionals[$cmd]}" "$cur" ;;
    esac
}

complete -F _procmgmt procmgmt

#compdef procmgmt
## Zsh completion for procmgmt. 'procmgmt completion zsh' prints this file with
## the data block below filled from the command-line parser; process names come
## from 'procmgmt completion --names' with the settings options typed on the line.
## Sourced after compinit, the compdef at the end registers it; saved as _procmgmt
## in a directory of $fpath, the first line does.

# @DATA@

_procmgmt() {
    local cmd="" i word values
    local -a settings
    for ((i = 2; i < CURRENT; i++)); do
        case ${words[i]} in
            -*) ;;
            *) cmd=${words[i]}; break ;;
        esac
    done
    if [[ -z $cmd ]]; then
        compadd -- ${=_procmgmt_commands} --help --version
        return
    fi
    values=${_procmgmt_values[$cmd ${words[CURRENT-1]}]-}
    if [[ -n $values ]]; then
        case $values in
            @file) _files ;;
            @any) _message 'value' ;;
            *) compadd -- ${=values} ;;
        esac
        return
    fi
    if [[ $PREFIX == -* ]]; then
        compadd -- ${=_procmgmt_options[$cmd]}
        return
    fi
    case ${_procmgmt_positionals[$cmd]-} in
        @file) _files ;;
        @names)
            settings=()
            for ((i = 3; i < CURRENT; i++)); do
                word=${words[i]}
                if [[ " $_procmgmt_settings " == *" ${word%%=*} "* ]]; then
                    if [[ $word == *=* ]]; then
                        settings+=("$word")
                    elif ((i + 1 < CURRENT)); then
                        settings+=("$word" "${words[i+1]}")
                        ((i++))
                    fi
                fi
            done
            compadd -- ${(f)"$(procmgmt completion --names "${settings[@]}" 2>/dev/null)"}
            ;;
        @any | "") ;;
        *) compadd -- ${=_procmgmt_positionals[$cmd]} ;;
    esac
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _procmgmt "$@"
else
    compdef _procmgmt procmgmt
fi

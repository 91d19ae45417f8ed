## Fish completion for procmgmt. 'procmgmt completion fish' prints this file with
## the 'complete' lines below generated from the command-line parser; process
## names come from 'procmgmt completion --names' with the settings options typed
## on the line (state dir, profile).

function __procmgmt_names
    set -l words (commandline -opc)
    set -l settings
    set -l i 3
    while test $i -le (count $words)
        set -l word $words[$i]
        set -l option (string split -m 1 = -- $word)[1]
        if contains -- $option $__procmgmt_settings
            if string match -q -- '*=*' $word
                set -a settings $word
            else if test $i -lt (count $words)
                set -a settings $word $words[(math $i + 1)]
                set i (math $i + 1)
            end
        end
        set i (math $i + 1)
    end
    procmgmt completion --names $settings 2>/dev/null
end

complete -c procmgmt -f

# @DATA@

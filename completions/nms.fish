# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nms_global_optspecs
    string join \n color= h/help V/version
end

function __fish_nms_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nms_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nms_using_subcommand
    set -l cmd (__fish_nms_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nms -n "__fish_nms_needs_command" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_needs_command" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_needs_command" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_needs_command" -f -a "decode" -d 'Read one raw NetTask packet or AlertFlow frame, verify its tag and print every field'
complete -c nms -n "__fish_nms_needs_command" -f -a "completions" -d 'Print a shell completion script for nms to standard output'
complete -c nms -n "__fish_nms_needs_command" -f -a "send-task" -d 'Validate a task file and its rule files, then hand it to a running server to dispatch'
complete -c nms -n "__fish_nms_needs_command" -f -a "inspect" -d 'Show a running server\'s agents, latest metrics and recent alerts, or explain a task file'
complete -c nms -n "__fish_nms_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand decode" -l file -d 'Read the packet from this file instead of standard input' -r -F
complete -c nms -n "__fish_nms_using_subcommand decode" -l key-file -d 'Verify keyed (HMAC) tags with the pre-shared key in this file (hex text, 32+ digits)' -r -F
complete -c nms -n "__fish_nms_using_subcommand decode" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand decode" -l hex -d 'The input is hex text (whitespace and 0x prefixes are ignored), not raw bytes'
complete -c nms -n "__fish_nms_using_subcommand decode" -l json -d 'Print one JSON object instead of text'
complete -c nms -n "__fish_nms_using_subcommand decode" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand decode" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand completions" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand completions" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand completions" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand send-task" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand send-task" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand send-task" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand send-task" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand send-task" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand inspect" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand inspect" -l task -d 'Explain this task file instead (no server needed): its validation, measurements, thresholds, and the rhai each rule compiles to' -r -F
complete -c nms -n "__fish_nms_using_subcommand inspect" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand inspect" -l json -d 'Print one JSON object instead of tables (one line per refresh with --watch)'
complete -c nms -n "__fish_nms_using_subcommand inspect" -l watch -d 'Redraw every 2 seconds until interrupted (Ctrl-C)'
complete -c nms -n "__fish_nms_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand inspect" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from decode completions send-task inspect help" -f -a "decode" -d 'Read one raw NetTask packet or AlertFlow frame, verify its tag and print every field'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from decode completions send-task inspect help" -f -a "completions" -d 'Print a shell completion script for nms to standard output'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from decode completions send-task inspect help" -f -a "send-task" -d 'Validate a task file and its rule files, then hand it to a running server to dispatch'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from decode completions send-task inspect help" -f -a "inspect" -d 'Show a running server\'s agents, latest metrics and recent alerts, or explain a task file'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from decode completions send-task inspect help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

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
complete -c nms -n "__fish_nms_needs_command" -f -a "server" -d 'Run the central server: NetTask (UDP), AlertFlow (TCP) and the HTTP API'
complete -c nms -n "__fish_nms_needs_command" -f -a "agent" -d 'Run an agent on a monitored host: `nms agent --server HOST[:PORT]` is all it needs'
complete -c nms -n "__fish_nms_needs_command" -f -a "decode" -d 'Read one raw NetTask packet or AlertFlow frame, verify its tag and print every field'
complete -c nms -n "__fish_nms_needs_command" -f -a "completions" -d 'Print a shell completion script for nms to standard output'
complete -c nms -n "__fish_nms_needs_command" -f -a "send-task" -d 'Validate a task file and its rule files, then hand it to a running server to dispatch'
complete -c nms -n "__fish_nms_needs_command" -f -a "inspect" -d 'Show a running server\'s agents, latest metrics and recent alerts, or explain a task file'
complete -c nms -n "__fish_nms_needs_command" -f -a "bench" -d 'Load-test a server with simulated agents and measure it against the loopback ceiling'
complete -c nms -n "__fish_nms_needs_command" -f -a "agents" -d 'A running server\'s agents: `nms agents list`, `nms agents forget NAME`'
complete -c nms -n "__fish_nms_needs_command" -f -a "tasks" -d 'A running server\'s tasks: `nms tasks list`, `nms tasks remove TASK_ID`'
complete -c nms -n "__fish_nms_needs_command" -f -a "alerts" -d 'A running server\'s alerts: list, acknowledge, silence'
complete -c nms -n "__fish_nms_needs_command" -f -a "query" -d 'A time range of an agent\'s reports, or their statistics per step, from a running server'
complete -c nms -n "__fish_nms_needs_command" -f -a "store" -d 'The server\'s store on disk: check its files, export a range'
complete -c nms -n "__fish_nms_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand server" -l settings -d 'Settings file (TOML) [default: ~/.config/nms/server.toml, then /etc/nms/server.toml, if present]. Flags given on the command line win over it' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l config -d 'A task file to load and dispatch (either dialect); repeat for several' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l listen -d 'Address the NetTask and AlertFlow ports listen on' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l nettask-port -d 'UDP port of NetTask' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l alertflow-port -d 'TCP port of AlertFlow' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l advertise-alertflow-port -d 'The AlertFlow port announced to agents, when a port forward or a proxy sits in front of the real one (tests put a fault-injecting proxy there)' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l http -d 'Address of the HTTP API (loopback by default)' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l data-dir -d 'Where metrics, alerts and the agent registry are stored [default: the user\'s data directory, e.g. ~/.local/share/nms/server]' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l key-file -d 'Pre-shared key (hex text, 32+ digits): every packet and frame carries an HMAC tag' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l keys-file -d 'Per-agent keys: one `NAME HEXKEY` per line (# comments allowed)' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l heartbeat-ms -d 'How often agents must be heard from, in milliseconds' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l missed-heartbeats -d 'Heartbeat intervals without a word before an agent is marked down' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l timeout-ms -d 'Initial NetTask retransmission timeout in milliseconds (then adaptive)' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l max-retransmissions -d 'NetTask retransmissions without an answer before a peer is reported lost' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l local-agent -d 'Also run an agent of this name in the server process (monitors the server\'s own host)' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l log-format -d 'How log lines are written: text (time, level, kind, message) or json (one object per line). Under systemd, lines carry the journal\'s priority prefix (<3> to <7>) either way' -r -f -a "text\t''
json\t''"
complete -c nms -n "__fish_nms_using_subcommand server" -l alertmanager -d 'Forward every alert, and its resolution, to Prometheus Alertmanager at this base URL (its v2 API), e.g. http://127.0.0.1:9093 or https://am.example.net; repeat for each member of a cluster (each gets every alert)' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l alertmanager-auth-file -d 'Credentials for Alertmanager, in a file: `bearer TOKEN`, or `basic USER:PASSWORD` (never logged)' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l alertmanager-ca-file -d 'CA certificates (PEM) that Alertmanager\'s https certificate is checked against, in addition to the system\'s' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l peer -d 'The HTTP API of another server that serves the same agents (their --server lists name both), e.g. http://monitor-b.example.net:9470; repeat for each. An agent silent here that a peer serves (it moved there) is not reported down. Peers are asked with this server\'s API token when their reads need one' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l remote-write -d 'Send every stored metrics report to a Prometheus remote-write receiver at this URL (e.g. http://127.0.0.1:9090/api/v1/write; Mimir, Thanos, Cortex and VictoriaMetrics take it too); repeat for several. Each has a durable cursor: after an outage or a restart it sends what it missed, in order' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l remote-write-auth-file -d 'Credentials for the --remote-write receivers, in a file: `bearer TOKEN`, or `basic USER:PASSWORD` (never logged)' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l remote-write-ca-file -d 'CA certificates (PEM) that https remote-write receivers are checked against, in addition to the system\'s' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l external-url -d 'The URL the HTTP API is reached at by others (a reverse proxy in front, say), for the links in forwarded alerts (generatorURL) [default: http://ADDR:PORT of --http]' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l retention-raw -d 'How long raw metrics reports are kept (e.g. 15d, 6w)' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l retention-minute -d 'How long per-minute rollups are kept' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l retention-hour -d 'How long per-hour rollups are kept' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l retention-alerts -d 'How long alerts are kept' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l max-store-size -d 'Cap on the store\'s size on disk (e.g. 50GB, 512MiB); past it the oldest partitions are deleted, raw reports first [default: no cap]' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l api-token-file -d 'The HTTP API\'s bearer token (a file holding 16+ characters): writes need it, and reads when they are not public [default on loopback: generated in DIR/api-token]' -r -F
complete -c nms -n "__fish_nms_using_subcommand server" -l public-read -d 'Whether reads of the HTTP API need no token [default: true on a loopback address only]' -r -f -a "true\t''
false\t''"
complete -c nms -n "__fish_nms_using_subcommand server" -l max-agents -d 'Most agents registered at once; registrations of new names past it are refused' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l new-agents-per-second -d 'Without keys: new agent names accepted per second (after a burst of 2000)' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l forget-unreported-after-s -d 'Forget agents that never sent anything after registering once they are silent this long' -r
complete -c nms -n "__fish_nms_using_subcommand server" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand server" -s v -l verbose -d 'Log more: debug lines too (the server: every stored metrics report)'
complete -c nms -n "__fish_nms_using_subcommand server" -s q -l quiet -d 'Log less: only warnings and errors (-qq: only errors)'
complete -c nms -n "__fish_nms_using_subcommand server" -l insecure-api -d 'Serve the HTTP API without a token for writes, even on a non-loopback address (anyone who reaches it can then install tasks and forget agents)'
complete -c nms -n "__fish_nms_using_subcommand server" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand server" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand agent" -l settings -d 'Settings file (TOML) [default: ~/.config/nms/agent.toml, then /etc/nms/agent.toml, if present]. Flags given on the command line win over it' -r -F
complete -c nms -n "__fish_nms_using_subcommand agent" -l server -d 'The server\'s NetTask address: HOST or HOST:PORT (default port 8081), or several, comma-separated (A,B): the agent registers with the first that answers and moves to the next when its server is lost, carrying its unacknowledged reports. Required here or in the settings file' -r
complete -c nms -n "__fish_nms_using_subcommand agent" -l id -d 'This agent\'s name, matched against `device_id` in task files [default: the host name]' -r
complete -c nms -n "__fish_nms_using_subcommand agent" -l data-dir -d 'Where unacknowledged alerts are kept [default: a per-id folder in the user\'s data directory, e.g. ~/.local/share/nms/agents/NAME]' -r -F
complete -c nms -n "__fish_nms_using_subcommand agent" -l key-file -d 'Pre-shared key (hex text, 32+ digits), the same as the server\'s' -r -F
complete -c nms -n "__fish_nms_using_subcommand agent" -l log-format -d 'How log lines are written: text (time, level, kind, message) or json (one object per line). Under systemd, lines carry the journal\'s priority prefix (<3> to <7>) either way' -r -f -a "text\t''
json\t''"
complete -c nms -n "__fish_nms_using_subcommand agent" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand agent" -l prefer-first -d 'With several servers: go back to the first one when it answers again (tried every 30 s) [default: stay with the server that serves the agent]'
complete -c nms -n "__fish_nms_using_subcommand agent" -l spread -d 'With several servers: try them in an order of this agent\'s own, from a hash of its name and each server\'s (rendezvous hashing), instead of as listed. Agents given the same list spread evenly over it, and each has its own second choice, so the agents of a lost server are shared among the others (docs/SCALING.md)'
complete -c nms -n "__fish_nms_using_subcommand agent" -s v -l verbose -d 'Log more: debug lines too (the server: every stored metrics report)'
complete -c nms -n "__fish_nms_using_subcommand agent" -s q -l quiet -d 'Log less: only warnings and errors (-qq: only errors)'
complete -c nms -n "__fish_nms_using_subcommand agent" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand agent" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand decode" -l file -d 'Read the packet from this file instead of standard input' -r -F
complete -c nms -n "__fish_nms_using_subcommand decode" -l key-file -d 'Verify keyed (HMAC) tags with the pre-shared key in this file (hex text, 32+ digits)' -r -F
complete -c nms -n "__fish_nms_using_subcommand decode" -l instance -d 'The instance (hex, as `nms decode` prints it) of the REGISTRATION whose session a keyed packet or frame belongs to: keyed tags are bound to it' -r
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
complete -c nms -n "__fish_nms_using_subcommand send-task" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand send-task" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand send-task" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand send-task" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand send-task" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand send-task" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand inspect" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand inspect" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand inspect" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand inspect" -l task -d 'Explain this task file instead (no server needed): its validation, measurements, thresholds and rules' -r -F
complete -c nms -n "__fish_nms_using_subcommand inspect" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand inspect" -l json -d 'Print one JSON object instead of tables (one line per refresh with --watch)'
complete -c nms -n "__fish_nms_using_subcommand inspect" -l watch -d 'Redraw every 2 seconds until interrupted (Ctrl-C)'
complete -c nms -n "__fish_nms_using_subcommand inspect" -l rhai -d 'With --task: also print the rhai each threshold compiles to'
complete -c nms -n "__fish_nms_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand inspect" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand bench" -l agents -d 'Simulated agents (distinct ids), each registering and receiving a task' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l rate -d 'Metrics reports per second per agent [default: as fast as acknowledgements allow]' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l seconds -d 'Seconds to measure, after every agent registered' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l server -d 'A running server\'s NetTask address instead of a server the bench starts itself' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l http -d 'That server\'s HTTP API [default: the --server host, port 9470]' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l remote-write -d 'The started server also sends every report to this remote-write receiver (e.g. a Prometheus on loopback started with --web.enable-remote-write-receiver); the run then reports the destination\'s lag and backlog while measuring, and how long it took to send the rest afterwards' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l alert-rate -d 'Alerts per second, all agents together, with --alerts' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l threads -d 'Threads (one UDP socket each) the simulated agents run on' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l window -d 'Reports each agent keeps unacknowledged when no --rate is given' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l ceiling-seconds -d 'Seconds the loopback ceiling is measured' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l key-file -d 'Pre-shared key (hex text, 32+ digits) for the agents and the started server' -r -F
complete -c nms -n "__fish_nms_using_subcommand bench" -l work-dir -d 'Folder for the started server\'s temporary data directory [default: the system\'s temporary folder]; a tmpfs such as /dev/shm leaves the disk\'s fsync out of the figures' -r -F
complete -c nms -n "__fish_nms_using_subcommand bench" -l kill-every -d 'Kill the server the bench starts with SIGKILL every SECONDS while measuring, and start it again: nothing acknowledged may be lost or stored twice' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand bench" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand bench" -l days -d 'Days of history the store bench generates' -r
complete -c nms -n "__fish_nms_using_subcommand bench" -l log-format -d 'How log lines are written: text (time, level, kind, message) or json (one object per line). Under systemd, lines carry the journal\'s priority prefix (<3> to <7>) either way' -r -f -a "text\t''
json\t''"
complete -c nms -n "__fish_nms_using_subcommand bench" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand bench" -l alerts -d 'Also raise alerts over AlertFlow and measure their latency'
complete -c nms -n "__fish_nms_using_subcommand bench" -l keep -d 'Keep the started server\'s data directory'
complete -c nms -n "__fish_nms_using_subcommand bench" -l store -d 'Measure the store instead: generate --days of history of --agents at --rate reports a second (plus one agent with 30 days), then time a server\'s start and range queries'
complete -c nms -n "__fish_nms_using_subcommand bench" -l json -d 'Print one JSON object instead of text'
complete -c nms -n "__fish_nms_using_subcommand bench" -s v -l verbose -d 'Log more: debug lines too (the server: every stored metrics report)'
complete -c nms -n "__fish_nms_using_subcommand bench" -s q -l quiet -d 'Log less: only warnings and errors (-qq: only errors)'
complete -c nms -n "__fish_nms_using_subcommand bench" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand bench" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand agents; and not __fish_seen_subcommand_from list forget help" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand agents; and not __fish_seen_subcommand_from list forget help" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand agents; and not __fish_seen_subcommand_from list forget help" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand agents; and not __fish_seen_subcommand_from list forget help" -f -a "list" -d 'List the agents: name, id, state, address, last seen, tasks'
complete -c nms -n "__fish_nms_using_subcommand agents; and not __fish_seen_subcommand_from list forget help" -f -a "forget" -d 'Forget an agent: its registration and session go (its stored data stays, and the tasks that name it keep naming it), its firing alerts are resolved; a running agent of that name registers again, under a new id'
complete -c nms -n "__fish_nms_using_subcommand agents; and not __fish_seen_subcommand_from list forget help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from list" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from list" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from list" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from list" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from list" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from forget" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from forget" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from forget" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from forget" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from forget" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from forget" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from forget" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the agents: name, id, state, address, last seen, tasks'
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from help" -f -a "forget" -d 'Forget an agent: its registration and session go (its stored data stays, and the tasks that name it keep naming it), its firing alerts are resolved; a running agent of that name registers again, under a new id'
complete -c nms -n "__fish_nms_using_subcommand agents; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand tasks; and not __fish_seen_subcommand_from list remove help" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand tasks; and not __fish_seen_subcommand_from list remove help" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand tasks; and not __fish_seen_subcommand_from list remove help" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand tasks; and not __fish_seen_subcommand_from list remove help" -f -a "list" -d 'List the loaded tasks: id, number, where each came from, devices'
complete -c nms -n "__fish_nms_using_subcommand tasks; and not __fish_seen_subcommand_from list remove help" -f -a "remove" -d 'Remove a task posted with send-task: its agents are sent CANCEL, its saved copy is deleted, its firing alerts are resolved (a task from a --config file stays: edit the file and reload the server)'
complete -c nms -n "__fish_nms_using_subcommand tasks; and not __fish_seen_subcommand_from list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from list" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from list" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from list" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from list" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from list" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from remove" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from remove" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from remove" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from remove" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from remove" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the loaded tasks: id, number, where each came from, devices'
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a task posted with send-task: its agents are sent CANCEL, its saved copy is deleted, its firing alerts are resolved (a task from a --config file stays: edit the file and reload the server)'
complete -c nms -n "__fish_nms_using_subcommand tasks; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand alerts; and not __fish_seen_subcommand_from list ack silence silences expire help" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand alerts; and not __fish_seen_subcommand_from list ack silence silences expire help" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand alerts; and not __fish_seen_subcommand_from list ack silence silences expire help" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand alerts; and not __fish_seen_subcommand_from list ack silence silences expire help" -f -a "list" -d 'List stored alerts (newest last), or only those firing now with --firing'
complete -c nms -n "__fish_nms_using_subcommand alerts; and not __fish_seen_subcommand_from list ack silence silences expire help" -f -a "ack" -d 'Acknowledge an alert: who (default: $USER), when, a comment; shown on the status page and in /api/alerts. It still fires and is still forwarded'
complete -c nms -n "__fish_nms_using_subcommand alerts; and not __fish_seen_subcommand_from list ack silence silences expire help" -f -a "silence" -d 'Set a silence (a maintenance window): alerts it matches leave the page\'s firing list, /metrics\' firing gauges and Alertmanager until it ends'
complete -c nms -n "__fish_nms_using_subcommand alerts; and not __fish_seen_subcommand_from list ack silence silences expire help" -f -a "silences" -d 'List the silences (in force, to come, and those ended in the last week)'
complete -c nms -n "__fish_nms_using_subcommand alerts; and not __fish_seen_subcommand_from list ack silence silences expire help" -f -a "expire" -d 'End a silence now'
complete -c nms -n "__fish_nms_using_subcommand alerts; and not __fish_seen_subcommand_from list ack silence silences expire help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -l agent -d 'Only this agent\'s alerts' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -l limit -d 'Most alerts listed' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -l firing -d 'Only the alerts firing now (silenced ones included, and marked)'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l by -d 'Who acknowledges it [default: $USER]' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l comment -d 'Why, or what is being done' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from ack" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from ack" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from ack" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l agent -d 'Silence this agent\'s alerts (`*` matches any text: `edge-*`)' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l task -d 'Silence this task\'s alerts (`*` allowed)' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l kind -d 'Silence alerts of this kind (cpu, ram, packet_loss, agent_down, ...)' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l from -d 'When it starts (RFC 3339 or Unix ms) [default: now]' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l until -d 'When it ends (RFC 3339 or Unix ms)' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l duration -d 'How long it lasts from its start (30m, 2h, 1d)' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l comment -d 'Why (shown on the status page)' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l by -d 'Who sets it [default: $USER]' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silence" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silences" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silences" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silences" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silences" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silences" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silences" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from silences" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from expire" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from expire" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from expire" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from expire" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from expire" -l json -d 'Print the server\'s JSON answer instead of text'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from expire" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from expire" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "list" -d 'List stored alerts (newest last), or only those firing now with --firing'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "ack" -d 'Acknowledge an alert: who (default: $USER), when, a comment; shown on the status page and in /api/alerts. It still fires and is still forwarded'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "silence" -d 'Set a silence (a maintenance window): alerts it matches leave the page\'s firing list, /metrics\' firing gauges and Alertmanager until it ends'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "silences" -d 'List the silences (in force, to come, and those ended in the last week)'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "expire" -d 'End a silence now'
complete -c nms -n "__fish_nms_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand query" -l server -d 'The server\'s HTTP API' -r
complete -c nms -n "__fish_nms_using_subcommand query" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand query" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand query" -l agent -d 'Only this agent\'s reports' -r
complete -c nms -n "__fish_nms_using_subcommand query" -l task -d 'Only this task\'s reports' -r
complete -c nms -n "__fish_nms_using_subcommand query" -l from -d 'Start of the range (Unix milliseconds or RFC 3339) [default: the newest reports; with --step, an hour before --to]' -r
complete -c nms -n "__fish_nms_using_subcommand query" -l to -d 'End of the range (exclusive) [default: now]' -r
complete -c nms -n "__fish_nms_using_subcommand query" -l step -d 'Statistics (count, min, max, mean; p10/p50/p90 of RTT) per step of this length (60s, 5m, 1h), from the coarsest stored tier that has the resolution' -r
complete -c nms -n "__fish_nms_using_subcommand query" -l fields -d 'Only these fields (comma-separated: cpu_percent,rtt_avg_ms,...)' -r
complete -c nms -n "__fish_nms_using_subcommand query" -l limit -d 'At most this many reports (without --step) [default: 1000]' -r
complete -c nms -n "__fish_nms_using_subcommand query" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand query" -l json -d 'Print the server\'s JSON answer'
complete -c nms -n "__fish_nms_using_subcommand query" -l csv -d 'Print CSV'
complete -c nms -n "__fish_nms_using_subcommand query" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand query" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand store; and not __fish_seen_subcommand_from check export help" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand store; and not __fish_seen_subcommand_from check export help" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand store; and not __fish_seen_subcommand_from check export help" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand store; and not __fish_seen_subcommand_from check export help" -f -a "check" -d 'Verify every file of the store without changing any; report damage with its file, series and time (exit status 1 when there is any)'
complete -c nms -n "__fish_nms_using_subcommand store; and not __fish_seen_subcommand_from check export help" -f -a "export" -d 'Every report of a time range, oldest first, as JSON lines or CSV'
complete -c nms -n "__fish_nms_using_subcommand store; and not __fish_seen_subcommand_from check export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from check" -l data-dir -d 'The server\'s data directory [default: the user\'s data directory, e.g. ~/.local/share/nms/server]' -r -F
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from check" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from check" -l json -d 'Print one JSON object'
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l server -d 'The server\'s HTTP API (the default, unless --data-dir is given)' -r
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l api-token-file -d 'The API token file [default: $NMS_API_TOKEN (the token itself), else `api-token-file` of the server settings file, else the token a local server generated in its data folder]' -r -F
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l settings -d 'The server settings file to take `api-token-file` (or `data-dir`) from [default: ~/.config/nms/server.toml, then /etc/nms/server.toml]' -r -F
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l data-dir -d 'Read the store in this data directory instead (no server may be using it)' -r -F
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l agent -d 'Only this agent\'s reports' -r
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l task -d 'Only this task\'s reports' -r
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l from -d 'Start of the range (Unix milliseconds or RFC 3339)' -r
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l to -d 'End of the range (exclusive) [default: now]' -r
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l color -d 'When to colour the output: auto (a terminal, and NO_COLOR unset), always or never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -l csv -d 'CSV (a column per field, interfaces as field[interface]) instead of JSON lines'
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "check" -d 'Verify every file of the store without changing any; report damage with its file, series and time (exit status 1 when there is any)'
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "export" -d 'Every report of a time range, oldest first, as JSON lines or CSV'
complete -c nms -n "__fish_nms_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "server" -d 'Run the central server: NetTask (UDP), AlertFlow (TCP) and the HTTP API'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "agent" -d 'Run an agent on a monitored host: `nms agent --server HOST[:PORT]` is all it needs'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "decode" -d 'Read one raw NetTask packet or AlertFlow frame, verify its tag and print every field'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "completions" -d 'Print a shell completion script for nms to standard output'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "send-task" -d 'Validate a task file and its rule files, then hand it to a running server to dispatch'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "inspect" -d 'Show a running server\'s agents, latest metrics and recent alerts, or explain a task file'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "bench" -d 'Load-test a server with simulated agents and measure it against the loopback ceiling'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "agents" -d 'A running server\'s agents: `nms agents list`, `nms agents forget NAME`'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "tasks" -d 'A running server\'s tasks: `nms tasks list`, `nms tasks remove TASK_ID`'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "alerts" -d 'A running server\'s alerts: list, acknowledge, silence'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "query" -d 'A time range of an agent\'s reports, or their statistics per step, from a running server'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "store" -d 'The server\'s store on disk: check its files, export a range'
complete -c nms -n "__fish_nms_using_subcommand help; and not __fish_seen_subcommand_from server agent decode completions send-task inspect bench agents tasks alerts query store help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from agents" -f -a "list" -d 'List the agents: name, id, state, address, last seen, tasks'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from agents" -f -a "forget" -d 'Forget an agent: its registration and session go (its stored data stays, and the tasks that name it keep naming it), its firing alerts are resolved; a running agent of that name registers again, under a new id'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from tasks" -f -a "list" -d 'List the loaded tasks: id, number, where each came from, devices'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from tasks" -f -a "remove" -d 'Remove a task posted with send-task: its agents are sent CANCEL, its saved copy is deleted, its firing alerts are resolved (a task from a --config file stays: edit the file and reload the server)'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "list" -d 'List stored alerts (newest last), or only those firing now with --firing'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "ack" -d 'Acknowledge an alert: who (default: $USER), when, a comment; shown on the status page and in /api/alerts. It still fires and is still forwarded'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "silence" -d 'Set a silence (a maintenance window): alerts it matches leave the page\'s firing list, /metrics\' firing gauges and Alertmanager until it ends'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "silences" -d 'List the silences (in force, to come, and those ended in the last week)'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "expire" -d 'End a silence now'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "check" -d 'Verify every file of the store without changing any; report damage with its file, series and time (exit status 1 when there is any)'
complete -c nms -n "__fish_nms_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "export" -d 'Every report of a time range, oldest first, as JSON lines or CSV'

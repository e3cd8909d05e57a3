#!/bin/sh
# Measures a real `nms agent` running a 1-second device-metrics task (CPU, RAM, two
# interfaces): its RSS and its CPU use over a minute, read from /proc. Usage:
#   scripts/agent-footprint.sh [path/to/nms] [seconds]
set -eu
NMS=${1:-target/release/nms}
SECONDS_MEASURED=${2:-60}
DIR=$(mktemp -d)
trap 'kill $AGENT $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
IFACE=$(ls /sys/class/net | grep -v '^lo$' | head -1)
cat > "$DIR/task.json" <<JSON
{"task_id": "footprint", "frequency": 1, "devices": [{"device_id": "footprint-agent",
  "device_metrics": {"cpu_usage": true, "ram_usage": true, "interface_stats": ["lo", "${IFACE:-lo}"]}}]}
JSON
"$NMS" server --listen 127.0.0.1 --nettask-port 18081 --alertflow-port 18080 \
    --http 127.0.0.1:19470 --data-dir "$DIR/server" --config "$DIR/task.json" \
    >"$DIR/server.log" 2>&1 &
SERVER=$!
sleep 1
"$NMS" agent --server 127.0.0.1:18081 --id footprint-agent --data-dir "$DIR/agent" \
    >"$DIR/agent.log" 2>&1 &
AGENT=$!
sleep 5
ticks() { awk '{ split($0, a, ") "); split(a[2], f, " "); print f[12] + f[13] }' /proc/$AGENT/stat; }
T0=$(ticks)
sleep "$SECONDS_MEASURED"
T1=$(ticks)
RSS=$(awk '/^VmRSS:/ {print $2}' /proc/$AGENT/status)
HWM=$(awk '/^VmHWM:/ {print $2}' /proc/$AGENT/status)
THREADS=$(awk '/^Threads:/ {print $2}' /proc/$AGENT/status)
STORED=$(curl -s http://127.0.0.1:19470/api/status | tr -d ' \n' | sed 's/.*"metrics_stored":\([0-9]*\).*/\1/')
ROLLUP=$(awk '/^(Anonymous|Private_Clean|Shared_Clean):/ {sub(":", "", $1); printf "\"%s_kib\": %s, ", tolower($1), $2}' /proc/$AGENT/smaps_rollup)
echo "{\"seconds\": $SECONDS_MEASURED, \"cpu_percent\": $(awk -v a="$T0" -v b="$T1" -v s="$SECONDS_MEASURED" "BEGIN { printf \"%.3f\", (b - a) / s }"), \"rss_kib\": $RSS, \"peak_rss_kib\": $HWM, \"threads\": $THREADS, $ROLLUP\"reports_stored\": $STORED}"

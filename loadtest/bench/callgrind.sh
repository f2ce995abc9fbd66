#!/usr/bin/env bash
# Gateway cost in CPU instructions per request, repeatable on a busy machine
# (wall-clock benchmarks are not): the release gateway runs under
# valgrind --tool=callgrind in front of the fake replica; the loadtest
# binary sends a fixed number of requests; the gateway's counters are
# zeroed after a warm-up and dumped after each phase, so start-up, config
# parsing and the warm-up are not counted. Only the gateway process is
# measured. Prints one line per phase:
#
#   plain  requests=2000 ir_per_req=…
#   stream requests=200  ir_per_req=…
#
# and keeps the callgrind dumps (for callgrind_annotate) in $OUT.
#
#   loadtest/bench/callgrind.sh
#   PLAIN=500 STREAM=50 loadtest/bench/callgrind.sh
#   SWITCHYARD_BIN=/path/to/other/switchyard loadtest/bench/callgrind.sh
#   TARGET=nginx loadtest/bench/callgrind.sh     # nginx, same replica and load
#   CALLGRIND_FLAGS=--dump-instr=yes loadtest/bench/callgrind.sh
#       # per-instruction counts, for loadtest/bench/atomics.py
set -euo pipefail
cd "$(dirname "$0")/../.."
PLAIN=${PLAIN:-2000}
STREAM=${STREAM:-200}
WARMUP=${WARMUP:-100}
CONCURRENCY=${CONCURRENCY:-8}
TOKENS=${TOKENS:-16}
GATEWAY_EXTRA=${GATEWAY_EXTRA:-}
CALLGRIND_FLAGS=${CALLGRIND_FLAGS:-}
TARGET=${TARGET:-switchyard}
OUT=${OUT:-loadtest/results/callgrind-$(date -u +%Y%m%dT%H%M%SZ)}
REPLICA_PORT=${REPLICA_PORT:-19201} GW_PORT=${GW_PORT:-18280} GW_ADMIN=${GW_ADMIN:-18290}
BIN=${BIN:-target/release}
SWITCHYARD=${SWITCHYARD_BIN:-$BIN/switchyard}
mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
say() { printf '==> %s\n' "$*" >&2; }
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
for b in "$SWITCHYARD" "$BIN/switchyard-loadtest"; do
  [ -x "$b" ] || { echo "$b missing: cargo build --release -p switchyard-gateway && cargo build --release -p switchyard-loadtest" >&2; exit 1; }
done
wait_port() { for _ in $(seq 1 1200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

"$BIN/switchyard-loadtest" replica --port "$REPLICA_PORT" --model bench --tokens "$TOKENS" --threads 1 >"$work/replica.log" 2>&1 &
pids+=($!); wait_port "$REPLICA_PORT"

cat >"$work/switchyard.yaml" <<YAML
server: { listen: 127.0.0.1:$GW_PORT, admin_listen: 127.0.0.1:$GW_ADMIN $GATEWAY_EXTRA }
clouds: { local: { provider: private } }
models: [{ name: bench, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r1, model: bench, cloud: local, url: "http://127.0.0.1:$REPLICA_PORT", max_concurrency: 100000 }]
YAML
if [ "$TARGET" = nginx ]; then
  # The same replica and load through nginx (one worker, no master: the
  # measured process is the one serving), for its instructions per request.
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is needed (apt-get install nginx-light)" >&2; exit 1; }
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<NGINX
master_process off; worker_processes 1; daemon off;
pid $work/nginx/nginx.pid; error_log $work/nginx/error.log warn;
events { worker_connections 10000; }
http {
  access_log off; client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  upstream replicas { server 127.0.0.1:$REPLICA_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$GW_PORT;
    location / { proxy_pass http://replicas; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
NGINX
  say "starting nginx under callgrind"
  valgrind --tool=callgrind $CALLGRIND_FLAGS --callgrind-out-file="$OUT/callgrind.out.%p" \
    "$(command -v nginx || echo /usr/sbin/nginx)" -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>"$OUT/valgrind.log" &
else
  say "starting switchyard under callgrind"
  # The log is not written beside the config: the config's directory is
  # watched, and a file changing there used to make it re-read the config.
  RUST_LOG=warn valgrind --tool=callgrind $CALLGRIND_FLAGS --callgrind-out-file="$OUT/callgrind.out.%p" \
    "$SWITCHYARD" run --config "$work/switchyard.yaml" >"$OUT/switchyard.log" 2>"$OUT/valgrind.log" &
fi
VG=$!; pids+=($VG); wait_port "$GW_PORT"

load() { # requests json extra-flags...
  local n=$1 json=$2; shift 2
  "$BIN/switchyard-loadtest" run --url "http://127.0.0.1:$GW_PORT" --model bench \
    --concurrency "$CONCURRENCY" --requests "$n" --duration-secs 3600 --warmup-secs 0 \
    --no-progress --timeout-secs 120 --json "$json" "$@" >"$work/load.txt" 2>&1 || { cat "$work/load.txt" >&2; exit 1; }
  # Every request must have succeeded, or the count means nothing.
  python3 -c "import json,sys; r=json.load(open('$json')); sys.exit(0 if r['ok']==r['requests']==$n else f'{r[\"requests\"]-r[\"ok\"]} of {r[\"requests\"]} failed')"
}
# Instructions in the last dump (`summary:` line of callgrind's output).
last_ir() { ls -t "$OUT"/callgrind.out.* | head -1 | xargs awk '/^(summary|totals):/{print $2; exit}'; }

say "warm-up: $WARMUP requests"
load "$WARMUP" "$work/w1.json"; load "$((WARMUP / 10 + 1))" "$work/w2.json" --stream
callgrind_control -z "$VG" >/dev/null 2>&1
for phase in plain stream; do
  n=$PLAIN flag=""; [ $phase = stream ] && n=$STREAM flag=--stream
  say "$phase: $n requests"
  load "$n" "$OUT/$phase.json" $flag
  callgrind_control -d "$phase" "$VG" >/dev/null 2>&1
  sleep 1
  ir=$(last_ir)
  printf '%-6s requests=%-5s ir_per_req=%s\n' "$phase" "$n" "$((ir / n))"
  callgrind_control -z "$VG" >/dev/null 2>&1
done
say "dumps in $OUT (callgrind_annotate $OUT/callgrind.out.<pid>.<n>)"

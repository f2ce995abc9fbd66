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
set -euo pipefail
cd "$(dirname "$0")/../.."
PLAIN=${PLAIN:-2000}
STREAM=${STREAM:-200}
WARMUP=${WARMUP:-100}
CONCURRENCY=${CONCURRENCY:-8}
TOKENS=${TOKENS:-16}
GATEWAY_EXTRA=${GATEWAY_EXTRA:-}
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
  [ -x "$b" ] || { echo "$b missing: cargo build --release -p switchyard-gateway -p switchyard-loadtest" >&2; exit 1; }
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
say "starting switchyard under callgrind"
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$SWITCHYARD" run --config "$work/switchyard.yaml" >"$work/switchyard.log" 2>"$OUT/valgrind.log" &
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

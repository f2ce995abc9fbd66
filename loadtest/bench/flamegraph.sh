#!/usr/bin/env bash
# Where the gateway's CPU goes, as flamegraphs: the release gateway runs in
# front of the fake replica (`switchyard-loadtest replica`); the loadtest
# binary drives non-streaming load, then burst SSE (every token at once);
# `perf record -e cpu-clock` (a software event: works where hardware
# counters do not, e.g. in VMs) samples the gateway process only, with call
# graphs, during each phase; inferno turns each recording into an SVG:
#
#   $OUT/plain.svg   non-streaming chat completions
#   $OUT/stream.svg  burst SSE streams
#
#   loadtest/bench/flamegraph.sh
#   SWITCHYARD_BIN=/work/baseline/switchyard OUT=/tmp/fg-before loadtest/bench/flamegraph.sh
#   CALL_GRAPH=fp DURATION=5 CONCURRENCY=32 loadtest/bench/flamegraph.sh
#
# CALL_GRAPH: `dwarf` (default; the release profile keeps line tables, so
# frames and inlined functions are named) or `fp` (cheaper, but Rust code is
# built without frame pointers, so stacks are cut short).
# Installs what it lacks: perf (Debian: linux-perf) and inferno (cargo install).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-8}
CONCURRENCY=${CONCURRENCY:-64}
TOKENS=${TOKENS:-16}
FREQ=${FREQ:-499}
CALL_GRAPH=${CALL_GRAPH:-dwarf}
OUT=${OUT:-loadtest/results/flamegraph-$(date -u +%Y%m%dT%H%M%SZ)}
REPLICA_PORT=${REPLICA_PORT:-19301} GW_PORT=${GW_PORT:-18380} GW_ADMIN=${GW_ADMIN:-18390}
say() { printf '==> %s\n' "$*" >&2; }

install_pkg() { # package
  say "installing $1 (Debian package)"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$1" >/dev/null
}
command -v perf >/dev/null || install_pkg linux-perf
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v inferno-flamegraph >/dev/null || ! command -v inferno-collapse-perf >/dev/null; then
  say "installing inferno (cargo install inferno; a few minutes the first time)"
  cargo install --quiet inferno
fi
if [ -z "${BIN:-}" ]; then
  say "building release binaries (cached after the first time)"
  cargo build --release -q -p switchyard-gateway && cargo build --release -q -p switchyard-loadtest
  BIN=target/release
fi
SWITCHYARD=${SWITCHYARD_BIN:-$BIN/switchyard}
mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

say "starting fake replica on :$REPLICA_PORT"
"$BIN/switchyard-loadtest" replica --port "$REPLICA_PORT" --model bench --tokens "$TOKENS" --threads 1 >"$work/replica.log" 2>&1 &
pids+=($!); wait_port "$REPLICA_PORT"
cat >"$work/switchyard.yaml" <<YAML
server: { listen: 127.0.0.1:$GW_PORT, admin_listen: 127.0.0.1:$GW_ADMIN }
clouds: { local: { provider: private } }
models: [{ name: bench, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r1, model: bench, cloud: local, url: "http://127.0.0.1:$REPLICA_PORT", max_concurrency: 100000 }]
YAML
say "starting $SWITCHYARD on :$GW_PORT"
RUST_LOG=warn "$SWITCHYARD" run --config "$work/switchyard.yaml" >"$work/switchyard.log" 2>&1 &
GW=$!; pids+=($GW); wait_port "$GW_PORT"

load() { # seconds extra-flags...
  local secs=$1; shift
  "$BIN/switchyard-loadtest" run --url "http://127.0.0.1:$GW_PORT" --model bench \
    --concurrency "$CONCURRENCY" --duration-secs "$secs" --warmup-secs 0 --no-progress "$@"
}
say "warm-up: 2 s"
load 2 >/dev/null; load 1 --stream >/dev/null
for phase in plain stream; do
  flag=""; [ $phase = stream ] && flag=--stream
  say "$phase: ${DURATION}s of load at concurrency $CONCURRENCY, perf sampling at ${FREQ} Hz ($CALL_GRAPH call graphs)"
  perf record -q -e cpu-clock -F "$FREQ" --call-graph "$CALL_GRAPH" -p "$GW" -o "$work/$phase.data" \
    -- sleep "$((DURATION + 1))" 2>"$work/perf-$phase.log" &
  perf_pid=$!
  sleep 0.5
  load "$DURATION" $flag | grep -E 'requests|req/s|ok' | head -3 >&2 || true
  wait "$perf_pid" || { cat "$work/perf-$phase.log" >&2; exit 1; }
  say "$phase: folding stacks (perf script | inferno-collapse-perf)"
  perf script -i "$work/$phase.data" 2>/dev/null | inferno-collapse-perf >"$OUT/$phase.folded"
  inferno-flamegraph --title "switchyard: $phase ($(basename "$SWITCHYARD"), c$CONCURRENCY, cpu-clock)" \
    <"$OUT/$phase.folded" >"$OUT/$phase.svg"
  say "$phase: $OUT/$phase.svg ($(awk '{s+=$NF} END {printf "%.0f", s / 1e6}' "$OUT/$phase.folded") ms of CPU sampled)"
done
say "done: $OUT/plain.svg $OUT/stream.svg"

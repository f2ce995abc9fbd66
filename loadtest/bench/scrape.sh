#!/usr/bin/env bash
# What engine-signal scraping costs the gateway: N replicas with
# `engine: vllm` (all served by one fake replica, so the fake is not the
# limit), scraped every INTERVAL_MS, no traffic; the gateway's CPU over
# DURATION seconds from /proc and its peak RSS, against the same gateway
# with no engines (the baseline, same run).
#
#   loadtest/bench/scrape.sh                    # 1000 replicas, 250 ms, 10 s
#   REPLICAS=200 INTERVAL_MS=100 loadtest/bench/scrape.sh
#
# Everything on 127.0.0.1; stops the PIDs it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPLICAS=${REPLICAS:-1000} INTERVAL_MS=${INTERVAL_MS:-250} DURATION=${DURATION:-10}
REPLICA_PORT=19301 GW_PORT=18380 GW_ADMIN=18390
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
say() { printf '==> %s\n' "$*" >&2; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

say "building release binaries (cached after the first time)"
cargo build --release -q -p switchyard-gateway && cargo build --release -q -p switchyard-loadtest
BIN=target/release
$BIN/switchyard-loadtest replica --port $REPLICA_PORT --model bench --threads 1 >"$work/replica.log" 2>&1 &
pids+=($!); wait_port $REPLICA_PORT

run() { # label engine-field
  local label=$1 engine=$2
  {
    # Real replicas are distinct hosts with a pooled connection each; here
    # they share one address, so the pool must hold one per replica.
    echo "server: { listen: 127.0.0.1:$GW_PORT, admin_listen: 127.0.0.1:$GW_ADMIN, limits: { pool_max_idle_per_host: $((REPLICAS + 64)) } }"
    echo "clouds: { local: { provider: private } }"
    echo "models: [{ name: bench, versions: [{ name: v1, weight: 100 }], routing: { policy: least_loaded, engine_interval_ms: $INTERVAL_MS, engine_stale_ms: $((INTERVAL_MS * 8)) } }]"
    echo "replicas:"
    for i in $(seq 1 "$REPLICAS"); do
      echo "  - { id: r$i, model: bench, cloud: local, url: \"http://127.0.0.1:$REPLICA_PORT\"$engine }"
    done
  } >"$work/$label.yaml"
  RUST_LOG=warn $BIN/switchyard run --config "$work/$label.yaml" >"$work/$label.log" 2>&1 &
  local pid=$!; pids+=($pid); wait_port $GW_PORT
  sleep 2 # warm up: the first round, pools filled
  local before; before=$(ticks $pid)
  for s in $(seq 1 "$DURATION"); do printf '\r    %s: %ss/%ss' "$label" "$s" "$DURATION" >&2; sleep 1; done; printf '\n' >&2
  local after; after=$(ticks $pid)
  local rss; rss=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
  kill $pid; wait $pid 2>/dev/null || true
  python3 -c "print(f'$label replicas=$REPLICAS interval_ms=$INTERVAL_MS cpu_pct_of_a_core={($after-$before)/$HZ/$DURATION*100:.2f} peak_rss_mib={$rss/1024:.1f}')"
}
say "baseline: $REPLICAS replicas, no engine"
run baseline ""
say "scraping: $REPLICAS replicas with engine: vllm every ${INTERVAL_MS} ms"
run scraping ", engine: vllm"

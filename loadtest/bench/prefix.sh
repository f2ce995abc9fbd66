#!/usr/bin/env bash
# Prefix-cache-aware routing, measured: the same shared-prefix multi-turn
# chat load through Switchyard in front of 6 GPU-like fake replicas, once
# per routing policy, each policy on a fresh (cold) replica set.
#
# Each fake replica keeps an LRU of prompt blocks and charges prefill time
# for the uncached bytes before the first token (`replica --gpu`), so a
# policy that sends a conversation back to where its prefix is cached wins
# on time to first token. TTFT = intended send time to the first SSE data
# event. Prints exactly one line per policy:
#
#   POLICY ttft_p50_ms=… ttft_p99_ms=… rps=…
#
# then writes a markdown table and an SVG bar chart under loadtest/results/.
# A policy `switchyard check` refuses (prefix_cache before the gateway has
# it) is skipped with a note. Replicas get `engine: vllm` only if the
# gateway accepts that field.
#
#   loadtest/bench/prefix.sh                      # 15 s per policy at 200 req/s
#   DURATION=30 RATE=250 loadtest/bench/prefix.sh
#   POLICIES="round_robin prefix_cache" BIN=target/debug DURATION=3 loadtest/bench/prefix.sh
#   ROUTING_EXTRA="prefix_index_blocks: 512" ...   # extra routing fields for every policy
set -euo pipefail
cd "$(dirname "$0")/../.."
POLICIES=${POLICIES:-"round_robin least_loaded affinity prefix_cache"}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-2}
RATE=${RATE:-200}
REPLICAS=6
REPLICA_FLAGS=${REPLICA_FLAGS:-"--gpu --slots 4 --queue 32 --prefill-us-per-byte 20 --cache-blocks 1024 --cache-block-bytes 64 --tokens 16 --inter-token-ms 2"}
WORKLOAD=${WORKLOAD:-"--workload shared-prefix --system-prompts 4 --conversations 64 --turns 6 --system-bytes 2048 --turn-bytes 160"}
OUT=${OUT:-loadtest/results/prefix-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
stop() { # stop exactly the given PIDs, then reap them
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
cleanup() { stop "${pids[@]}"; rm -rf "$work"; }
trap cleanup EXIT
if [ -n "${BIN:-}" ]; then
  B=$BIN # prebuilt binaries (e.g. BIN=target/debug for a quick try)
else
  echo "==> building release binaries" >&2
  cargo build --release -q -p switchyard-gateway && cargo build --release -q -p switchyard-loadtest
  B=target/release
fi
wait_port() {
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 never opened" >&2; return 1
}
wait_ready() {
  for _ in $(seq 1 200); do $B/switchyard probe "127.0.0.1:$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "gateway admin 127.0.0.1:$1 never ready" >&2; return 1
}
# A gateway config: one group `chat` over the 6 replicas on ports $2.., policy $1, $3 extra replica fields.
config() {
  local policy=$1 base=$2 extra=$3 listen=$4 admin=$5
  echo "server: { listen: 127.0.0.1:$listen, admin_listen: 127.0.0.1:$admin }"
  echo "clouds: { local: { provider: private } }"
  echo "models: [{ name: chat, versions: [{ name: v1, weight: 100 }], routing: { policy: $policy${ROUTING_EXTRA:+, $ROUTING_EXTRA} } }]"
  echo "replicas:"
  for i in $(seq 0 $((REPLICAS - 1))); do
    echo "  - { id: gpu-$i, model: chat, cloud: local, url: \"http://127.0.0.1:$((base + i))\", max_concurrency: 36$extra }"
  done
}
# Does this build accept `engine: vllm` on a replica?
engine=", engine: vllm"
config round_robin 19400 "$engine" 18480 18490 >"$work/probe.yaml"
if ! $B/switchyard check "$work/probe.yaml" >"$work/probe.log" 2>&1; then
  config round_robin 19400 "" 18480 18490 >"$work/probe.yaml"
  if $B/switchyard check "$work/probe.yaml" >/dev/null 2>&1; then
    echo "note: this build refuses \`engine: vllm\` on replicas; configs go without it" >&2
    engine=""
  else
    echo "switchyard check refuses the base config:" >&2; cat "$work/probe.log" >&2; exit 1
  fi
fi
endpoints() { # the replicas' base URLs, comma-separated
  local base=$1 urls=()
  for i in $(seq 0 $((REPLICAS - 1))); do urls+=("http://127.0.0.1:$((base + i))"); done
  (IFS=,; echo "${urls[*]}")
}
ran=()
k=0
for policy in $POLICIES; do
  listen=$((18481 + k)); admin=$((18491 + k)); base=$((19410 + 10 * k)); k=$((k + 1))
  cfg="$work/$policy.yaml"
  config "$policy" "$base" "$engine" "$listen" "$admin" >"$cfg"
  if ! $B/switchyard check "$cfg" >"$work/$policy.check" 2>&1; then
    if [ "$policy" = prefix_cache ]; then
      echo "prefix_cache skipped: not supported by this build"
    else
      echo "$policy skipped: switchyard check refused the config"; cat "$work/$policy.check" >&2
    fi
    continue
  fi
  echo "==> $policy" >&2
  mine=()
  for i in $(seq 0 $((REPLICAS - 1))); do
    # shellcheck disable=SC2086 # REPLICA_FLAGS is a list of flags
    $B/switchyard-loadtest replica --port $((base + i)) --name "gpu-$i" --model chat $REPLICA_FLAGS \
      >"$work/$policy-replica-$i.log" 2>&1 &
    pids+=($!); mine+=($!)
  done
  for i in $(seq 0 $((REPLICAS - 1))); do wait_port $((base + i)); done
  RUST_LOG=warn $B/switchyard run --config "$cfg" >"$work/$policy-gateway.log" 2>&1 &
  pids+=($!); mine+=($!)
  wait_port "$listen"; wait_ready "$admin"
  # shellcheck disable=SC2086 # WORKLOAD is a list of flags
  timeout $((DURATION + WARMUP + 60)) $B/switchyard-loadtest run --url "http://127.0.0.1:$listen" --model chat \
    $WORKLOAD --rate "$RATE" --duration-secs "$DURATION" --warmup-secs "$WARMUP" --timeout-secs 30 \
    --engine-metrics "$(endpoints "$base")" --no-progress --json "$OUT/$policy.json" >"$OUT/$policy.txt"
  $B/switchyard-loadtest compare "$policy=$OUT/$policy.json"
  ran+=("$policy=$OUT/$policy.json")
  stop "${mine[@]}"
  pids=() # every PID started so far is in mine, and stopped
done
if [ ${#ran[@]} -gt 0 ]; then
  $B/switchyard-loadtest compare --title "TTFT, shared-prefix chats at $RATE req/s, 6 GPU fake replicas" \
    --markdown "$OUT/prefix.md" --svg "$OUT/prefix.svg" "${ran[@]}" >/dev/null
  echo "==> $OUT/prefix.md, $OUT/prefix.svg" >&2
fi

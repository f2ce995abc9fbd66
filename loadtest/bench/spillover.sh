#!/usr/bin/env bash
# Spill-over curve of `cost_aware` routing: three price tiers (private <
# aws < azure), each one replica with 8 slots and 50 ms answers (~160 req/s
# each). Offered load rises step by step; the share each cloud serves is
# read from the `x-switchyard-replica` header of every answer.
#
#   loadtest/bench/spillover.sh            # rates 50 100 200 300 400, 6 s each
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES=${RATES:-"50 100 200 300 400"}
DURATION=${DURATION:-6}
OUT=${OUT:-loadtest/results/spillover-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
echo "==> building release binaries" >&2
cargo build --release -q -p switchyard-gateway && cargo build --release -q -p switchyard-loadtest
B=target/release
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
port=19301
for name in private aws azure; do
  $B/switchyard-loadtest replica --port $port --name $name --latency-ms 50 >"$work/$name.log" 2>&1 &
  pids+=($!); wait_port $port; port=$((port + 1))
done
cat >"$work/gw.yaml" <<YAML
server: { listen: 127.0.0.1:18380, admin_listen: 127.0.0.1:18390 }
clouds: { onprem: { provider: private }, aws: { provider: aws }, azure: { provider: azure } }
models: [{ name: chat, versions: [{ name: v1, weight: 100 }], routing: { policy: cost_aware, spill_at: 0.8, queue_size: 0 } }]
replicas:
  - { id: private, model: chat, cloud: onprem, url: "http://127.0.0.1:19301", max_concurrency: 8, cost: { input_per_1k: 0.1, output_per_1k: 0.1 } }
  - { id: aws, model: chat, cloud: aws, url: "http://127.0.0.1:19302", max_concurrency: 8, cost: { input_per_1k: 0.3, output_per_1k: 0.6 } }
  - { id: azure, model: chat, cloud: azure, url: "http://127.0.0.1:19303", max_concurrency: 8, cost: { input_per_1k: 0.5, output_per_1k: 1.5 } }
YAML
RUST_LOG=warn $B/switchyard run --config "$work/gw.yaml" >"$work/gw.log" 2>&1 &
pids+=($!); wait_port 18380
for rate in $RATES; do
  echo "==> offered $rate req/s" >&2
  $B/switchyard-loadtest run --url http://127.0.0.1:18380 --model chat --rate "$rate" \
    --duration-secs "$DURATION" --warmup-secs 1 --no-progress --json "$OUT/rate-$rate.json" >/dev/null
done
python3 - "$OUT" $RATES <<'PY' | tee "$OUT/summary.md"
import json, sys, os
out, rates = sys.argv[1], sys.argv[2:]
print("| offered req/s | served ok/s | private % | aws % | azure % | shed (429) | p99 ms |")
print("|---|---|---|---|---|---|---|")
for r in rates:
    j = json.load(open(os.path.join(out, f"rate-{r}.json")))
    rep = j.get("replicas", {}); total = sum(rep.values()) or 1
    share = lambda k: 100.0 * rep.get(k, 0) / total
    shed = j.get("statuses", {}).get("429", 0)
    print(f"| {r} | {j['ok_rps']:.0f} | {share('private'):.1f} | {share('aws'):.1f} | {share('azure'):.1f} | {shed} | {j['latency_ms']['p99']:.1f} |")
PY

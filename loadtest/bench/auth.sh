#!/usr/bin/env bash
# Client authentication's cost on throughput: the same non-streaming load
# through two gateways in one run, one without tenants (auth off) and one
# whose config has 1,000 tenant keys and whose clients send one (auth on),
# measured alternately (off, on, on, off, ...) so drift on a shared
# machine hits both. Prints req/s and latency per run and the on/off ratio.
#
#   loadtest/bench/auth.sh                  # 10 s per measurement, concurrency 64
#   DURATION=20 ROUNDS=3 loadtest/bench/auth.sh
#
# Everything listens on 127.0.0.1 and is stopped by PID when it exits.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-64}
ROUNDS=${ROUNDS:-4}
OUT=${OUT:-loadtest/results/auth-$(date -u +%Y%m%dT%H%M%SZ)}
REPLICA_PORT=19201 OFF_PORT=18180 OFF_ADMIN=18190 ON_PORT=18181 ON_ADMIN=18191

mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
say() { printf '==> %s\n' "$*" >&2; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

say "building release binaries (cached after the first time)"
cargo build --release -q -p switchyard-gateway && cargo build --release -q -p switchyard-loadtest
BIN=target/release

$BIN/switchyard-loadtest replica --port $REPLICA_PORT --model bench --tokens 16 --threads 1 >"$work/replica.log" 2>&1 &
pids+=($!); wait_port $REPLICA_PORT

common() { # listen admin
  cat <<YAML
server: { listen: 127.0.0.1:$1, admin_listen: 127.0.0.1:$2 }
clouds: { local: { provider: private } }
models: [{ name: bench, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r1, model: bench, cloud: local, url: "http://127.0.0.1:$REPLICA_PORT", max_concurrency: 100000 }]
YAML
}
common $OFF_PORT $OFF_ADMIN >"$work/off.yaml"
{
  common $ON_PORT $ON_ADMIN
  echo "tenants:"
  for t in $(seq 0 9); do
    echo "  - name: t$t"
    echo "    keys:"
    for k in $(seq 0 99); do printf '      - { id: k%d, key: sk-sy-bench-%02d-%03d-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa }\n' "$k" "$t" "$k"; done
  done
} >"$work/on.yaml"
KEY=sk-sy-bench-07-042-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa

declare -A gw_pid
for side in off on; do
  port=$([ $side = on ] && echo $ON_PORT || echo $OFF_PORT)
  RUST_LOG=warn $BIN/switchyard run --no-watch --config "$work/$side.yaml" >"$work/$side.log" 2>&1 &
  gw_pid[$side]=$!; pids+=($!); wait_port "$port"
done
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

measure() { # name port pid [key]
  local args=() before after
  [ -n "${4:-}" ] && args=(--api-key "$4")
  before=$(ticks "$3")
  $BIN/switchyard-loadtest run --url "http://127.0.0.1:$2" --model bench --concurrency "$CONCURRENCY" \
    --duration-secs "$DURATION" --warmup-secs 1 --no-progress "${args[@]}" --json "$OUT/$1.json" >"$OUT/$1.txt"
  after=$(ticks "$3")
  echo "$((after - before)) $HZ" >"$OUT/$1.cpu"
}
# Odd rounds off first, even rounds on first: a trend in the machine's
# load favours neither side.
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    say "round $r: auth off"; measure "off-$r" $OFF_PORT ${gw_pid[off]}
    say "round $r: auth on (1,000 keys)"; measure "on-$r" $ON_PORT ${gw_pid[on]} "$KEY"
  else
    say "round $r: auth on (1,000 keys)"; measure "on-$r" $ON_PORT ${gw_pid[on]} "$KEY"
    say "round $r: auth off"; measure "off-$r" $OFF_PORT ${gw_pid[off]}
  fi
done

python3 - "$OUT" "$ROUNDS" "$CONCURRENCY" "$DURATION" <<'PY' | tee "$OUT/summary.md"
import json, os, sys
out, rounds, conc, dur = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"non-streaming chat, concurrency {conc}, {dur} s per run, alternating; fake replica with 1 thread; one shared 2-core machine\n")
print("| run | req/s | p50 ms | p99 ms | gateway CPU µs/req | failed |")
print("|---|---|---|---|---|---|")
tot = {"off": [], "on": []}
cpu = {"off": [], "on": []}
for r in range(1, rounds + 1):
    for side in ("off", "on"):
        d = json.load(open(os.path.join(out, f"{side}-{r}.json")))
        tot[side].append(d["rps"])
        ticks, hz = map(int, open(os.path.join(out, f"{side}-{r}.cpu")).read().split())
        # CPU covers the warm-up second too: divide by every request sent.
        sent = d["requests"] * (1 + 1.0 / max(d["seconds"], 1e-9))
        us = ticks / hz * 1e6 / sent
        cpu[side].append(us)
        print(f"| auth {side} #{r} | {d['rps']:.0f} | {d['latency_ms']['p50']:.3f} | {d['latency_ms']['p99']:.3f} | {us:.1f} | {d['requests'] - d['ok']} |")
off, on = sum(tot["off"]) / rounds, sum(tot["on"]) / rounds
c_off, c_on = sum(cpu["off"]) / rounds, sum(cpu["on"]) / rounds
print(f"\nmean: auth off {off:.0f} req/s, auth on {on:.0f} req/s: on/off {on / off:.3f}; "
      f"gateway CPU {c_off:.1f} vs {c_on:.1f} µs/req: on/off {c_on / c_off:.3f}")
PY

#!/usr/bin/env bash
# Two gateway builds and nginx against one fake replica, alternated in
# short rounds (A, B, nginx, A, B, nginx, ...): on a shared, noisy machine
# a whole `run.sh` per build drifts more between runs than a change moves
# the figures. Per round it prints each target's req/s and its CPU per
# request (user and kernel apart, from /proc); at the end, the median over
# the rounds of each build's ratio to nginx in the same round.
#
#   A=/work/old/switchyard B=target/release/switchyard loadtest/bench/ab.sh
#   ROUNDS=8 DURATION=4 CONCURRENCY=64 loadtest/bench/ab.sh
#   STREAM=1 loadtest/bench/ab.sh          # burst SSE instead (CPU per stream)
#
# BIN: where switchyard-loadtest is (default target/release). Ports 29070-29101
# on 127.0.0.1; everything started here is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release}
A=${A:?A=path/to/baseline/switchyard}
B=${B:-$BIN/switchyard}
DURATION=${DURATION:-4}
ROUNDS=${ROUNDS:-6}
CONCURRENCY=${CONCURRENCY:-64}
STREAM=${STREAM:-}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "nginx is needed (apt-get install nginx-light)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
say() { printf '==> %s\n' "$*" >&2; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

"$BIN/switchyard-loadtest" replica --port 29101 --model bench --tokens 16 --threads 1 >"$work/replica.log" 2>&1 &
pids+=($!); wait_port 29101
start_gateway() { # binary port admin-port -> pid
  mkdir -p "$work/$2"
  cat >"$work/$2/switchyard.yaml" <<YAML
server: { listen: 127.0.0.1:$2, admin_listen: 127.0.0.1:$3, limits: { max_connections: 200000 } }
clouds: { local: { provider: private } }
models: [{ name: bench, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r1, model: bench, cloud: local, url: "http://127.0.0.1:29101", max_concurrency: 100000 }]
YAML
  RUST_LOG=warn "$1" run --config "$work/$2/switchyard.yaml" >"$work/$2.log" 2>&1 &
  pids+=($!); wait_port "$2"
}
start_gateway "$A" 29080 29090; PA=${pids[-1]}
start_gateway "$B" 29070 29091; PB=${pids[-1]}
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 2; daemon off; pid $work/nginx/nginx.pid; error_log $work/nginx/error.log warn;
events { worker_connections 10000; }
http {
  access_log off; client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  upstream replicas { least_conn; server 127.0.0.1:29101; keepalive 256; }
  server { listen 127.0.0.1:29081; location / { proxy_pass http://replicas; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; } }
}
NGINX
"$NGINX" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
PN=$!; pids+=($PN); wait_port 29081

# "user kernel" CPU ticks of processes and all their threads.
ticks() { local u=0 k=0; for p in "$@"; do for t in /proc/"$p"/task/*; do read -r a b < <(awk '{print $14, $15}' "$t/stat"); u=$((u + a)); k=$((k + b)); done; done; echo "$u $k"; }
flag=""; [ -n "$STREAM" ] && flag=--stream
say "A = $A, B = $B, nginx; $ROUNDS rounds of ${DURATION} s each, concurrency $CONCURRENCY${STREAM:+, burst SSE}"
for round in $(seq 1 "$ROUNDS"); do
  for name in A B nginx; do
    case $name in
      A) port=29080 procs="$PA" ;;
      B) port=29070 procs="$PB" ;;
      nginx) port=29081 procs="$PN $(pgrep -P "$PN" | tr '\n' ' ')" ;;
    esac
    before=$(ticks $procs)
    "$BIN/switchyard-loadtest" run --url "http://127.0.0.1:$port" --model bench --concurrency "$CONCURRENCY" \
      --duration-secs "$DURATION" --warmup-secs 1 $flag --no-progress --json "$work/$name.json" >/dev/null
    after=$(ticks $procs)
    python3 - "$round" "$name" "$before" "$after" "$(getconf CLK_TCK)" "$work/$name.json" <<'PY' | tee -a "$work/rows"
import json, sys
rd, name, before, after, hz, path = sys.argv[1:7]
user, kernel = (int(a) - int(b) for a, b in zip(after.split(), before.split()))
r = json.load(open(path))
sent = r["requests"] * (1 + 1.0 / max(r["seconds"], 1e-9))  # CPU covers the warm-up too
us = lambda t: t / int(hz) * 1e6 / sent
print(f"{rd} {name} rps {r['rps']:.0f} user {us(user):.2f} kernel {us(kernel):.2f} cpu {us(user + kernel):.2f}")
PY
  done
done
python3 - "$work/rows" "${STREAM:+stream}" <<'PY'
import collections, statistics, sys
rounds = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    f = line.split()
    rounds[f[0]][f[1]] = {"req/s": float(f[3]), "user": float(f[5]), "kernel": float(f[7]), "cpu": float(f[9])}
per = "stream" if sys.argv[2] else "request"
print(f"\nmedian over {len(rounds)} rounds of each build's ratio to nginx in the same round (CPU per {per}):")
for key in ("req/s", "cpu", "user", "kernel"):
    cells = []
    for build in ("A", "B"):
        r = [v[build][key] / v["nginx"][key] for v in rounds.values() if v["nginx"][key]]
        cells.append(f"{build} {statistics.median(r):.3f} ({min(r):.2f}-{max(r):.2f})")
    print(f"  {key:7s} x nginx: " + "   ".join(cells))
PY

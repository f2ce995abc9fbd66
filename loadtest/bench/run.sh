#!/usr/bin/env bash
# Same workload, one run, three ways: direct to the fake replica, through
# Switchyard, through nginx (an equivalent reverse proxy). Prints throughput,
# latency, time to first byte, proxy CPU per request and peak RSS, with
# ratios against direct and nginx measured in the same run.
#
#   loadtest/bench/run.sh                 # 10 s per measurement
#   DURATION=30 CONCURRENCY=128 loadtest/bench/run.sh
#   SWITCHYARD_BIN=/path/to/old/switchyard loadtest/bench/run.sh   # another build, same harness
#
# Installs nginx (Debian package) if it is missing. Everything listens on
# 127.0.0.1 and is stopped by PID when the script exits.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-64}
RATE=${RATE:-1000}
TOKENS=${TOKENS:-16}
INTER_TOKEN_MS=${INTER_TOKEN_MS:-0}
OUT=${OUT:-loadtest/results/bench-$(date -u +%Y%m%dT%H%M%SZ)}
REPLICA_PORT=19101 GW_PORT=18080 GW_ADMIN=18090 NGINX_PORT=18081

mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

say() { printf '==> %s\n' "$*" >&2; }

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  say "installing nginx (Debian package nginx-light)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq nginx-light >/dev/null; fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

say "building release binaries (cached after the first time)"
cargo build --release -q -p switchyard-gateway -p switchyard-loadtest
BIN=target/release

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

say "starting fake replica on :$REPLICA_PORT (1 thread)"
$BIN/switchyard-loadtest replica --port $REPLICA_PORT --model bench --tokens "$TOKENS" --inter-token-ms "$INTER_TOKEN_MS" --threads 1 >"$work/replica.log" 2>&1 &
pids+=($!); wait_port $REPLICA_PORT

cat >"$work/switchyard.yaml" <<YAML
server: { listen: 127.0.0.1:$GW_PORT, admin_listen: 127.0.0.1:$GW_ADMIN }
clouds: { local: { provider: private } }
models: [{ name: bench, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r1, model: bench, cloud: local, url: "http://127.0.0.1:$REPLICA_PORT", max_concurrency: 100000 }]
YAML
say "starting switchyard on :$GW_PORT"
SWITCHYARD=${SWITCHYARD_BIN:-$BIN/switchyard}
RUST_LOG=warn $SWITCHYARD run --config "$work/switchyard.yaml" >"$work/switchyard.log" 2>&1 &
GW_PID=$!; pids+=($GW_PID); wait_port $GW_PORT

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream replicas { least_conn; server 127.0.0.1:$REPLICA_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    client_max_body_size 8m;
    location / {
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
say "starting nginx on :$NGINX_PORT"
$NGINX -c "$work/nginx/nginx.conf" -p "$work/nginx" &
NGINX_PID=$!; pids+=($NGINX_PID); wait_port $NGINX_PORT

# CPU ticks (utime+stime) of a process and its children threads/workers.
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }
rss_kb() { local m=0; for p in "$@"; do r=$(awk '/VmHWM/{print $2}' "/proc/$p/status"); m=$((m + r)); done; echo $m; }
HZ=$(getconf CLK_TCK)

measure() { # name url-base stream pids...
  local name=$1 url=$2 stream=$3; shift 3
  local before after flag=""
  [ "$stream" = 1 ] && flag="--stream"
  before=$( [ $# -gt 0 ] && ticks "$@" || echo 0)
  $BIN/switchyard-loadtest run --url "$url" --model bench $LOAD_ARGS \
    --duration-secs "$DURATION" --warmup-secs 1 $flag --no-progress --json "$OUT/$name.json" --plot "$OUT/$name.svg" >"$OUT/$name.txt"
  after=$( [ $# -gt 0 ] && ticks "$@" || echo 0)
  local rss=0; [ $# -gt 0 ] && rss=$(rss_kb "$@")
  python3 - "$OUT/$name.json" "$((after - before))" "$HZ" "$rss" <<'PY'
import json, sys
path, ticks, hz, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
# CPU covers warm-up too; divide by every request sent in the window.
sent = r["requests"] * (1 + 1.0 / max(r["seconds"], 1e-9))
r["proxy_cpu_us_per_req"] = ticks / hz * 1e6 / sent if ticks else None
r["proxy_peak_rss_kb"] = rss or None
json.dump(r, open(path, "w"), indent=2)
PY
  cat "$OUT/$name.txt" >&2
}

LOAD_ARGS="--concurrency $CONCURRENCY"
for stream in 0 1; do
  kind=$([ $stream = 1 ] && echo stream || echo plain)
  say "[$kind] direct"
  measure "direct-$kind" "http://127.0.0.1:$REPLICA_PORT" $stream
  say "[$kind] switchyard"
  measure "switchyard-$kind" "http://127.0.0.1:$GW_PORT" $stream $GW_PID
  say "[$kind] nginx"
  measure "nginx-$kind" "http://127.0.0.1:$NGINX_PORT" $stream $(nginx_pids)
done

# Fixed arrival rate (open loop, latency from the intended send time): what a
# proxy adds to p99 when it is not saturated.
LOAD_ARGS="--rate $RATE"
for target in direct switchyard nginx; do
  say "[rate $RATE/s] $target"
  case $target in
    direct) measure "direct-rate" "http://127.0.0.1:$REPLICA_PORT" 0 ;;
    switchyard) measure "switchyard-rate" "http://127.0.0.1:$GW_PORT" 0 $GW_PID ;;
    nginx) measure "nginx-rate" "http://127.0.0.1:$NGINX_PORT" 0 $(nginx_pids) ;;
  esac
done

python3 - "$OUT" "$CONCURRENCY" "$DURATION" "$TOKENS" "$INTER_TOKEN_MS" <<'PY' | tee "$OUT/summary.md"
import json, sys, os
out, conc, dur, tokens, gap = sys.argv[1:6]
def load(n): return json.load(open(os.path.join(out, n + ".json")))
print(f"concurrency {conc}, {dur} s per run, {tokens} tokens per answer {gap} ms apart, fake replica with 1 thread, all on one 2-core machine\n")
for kind in ("plain", "stream"):
    d, s, n = load("direct-" + kind), load("switchyard-" + kind), load("nginx-" + kind)
    print(f"### {'non-streaming chat' if kind == 'plain' else 'streaming chat (SSE)'}\n")
    print("| target | req/s | p50 ms | p99 ms | first byte p50 ms | first byte p99 ms | proxy CPU µs/req | proxy peak RSS MiB | failed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in (("direct", d), ("switchyard", s), ("nginx", n)):
        f = r.get("ttfb_ms") or {}
        cpu = r.get("proxy_cpu_us_per_req"); rss = r.get("proxy_peak_rss_kb")
        failed = r["requests"] - r["ok"]
        print(f"| {name} | {r['rps']:.0f} | {r['latency_ms']['p50']:.3f} | {r['latency_ms']['p99']:.3f} | "
              f"{f.get('p50', float('nan')):.3f} | {f.get('p99', float('nan')):.3f} | "
              f"{'' if cpu is None else f'{cpu:.1f}'} | {'' if rss is None else f'{rss/1024:.1f}'} | {failed} |")
    ratio = lambda a, b: a / b if b else float('nan')
    print()
    print(f"- switchyard / direct: throughput {ratio(s['rps'], d['rps']):.2f}x, p99 {ratio(s['latency_ms']['p99'], d['latency_ms']['p99']):.2f}x")
    print(f"- switchyard / nginx: throughput {ratio(s['rps'], n['rps']):.2f}x, p99 {ratio(s['latency_ms']['p99'], n['latency_ms']['p99']):.2f}x, "
          f"CPU per request {ratio(s.get('proxy_cpu_us_per_req') or 0, n.get('proxy_cpu_us_per_req') or 0):.2f}x")
    if kind == "stream":
        print(f"- first byte p99 added over direct: switchyard {s['ttfb_ms']['p99'] - d['ttfb_ms']['p99']:+.3f} ms, nginx {n['ttfb_ms']['p99'] - d['ttfb_ms']['p99']:+.3f} ms")
    print()
d, s, n = load("direct-rate"), load("switchyard-rate"), load("nginx-rate")
print(f"### fixed rate, non-streaming (open loop)\n")
print("| target | req/s | p50 ms | p99 ms | added p99 over direct ms | proxy CPU µs/req | failed |")
print("|---|---|---|---|---|---|---|")
for name, r in (("direct", d), ("switchyard", s), ("nginx", n)):
    cpu = r.get("proxy_cpu_us_per_req")
    print(f"| {name} | {r['rps']:.0f} | {r['latency_ms']['p50']:.3f} | {r['latency_ms']['p99']:.3f} | "
          f"{r['latency_ms']['p99'] - d['latency_ms']['p99']:+.3f} | {'' if cpu is None else f'{cpu:.1f}'} | {r['requests'] - r['ok']} |")
print()
PY
say "results in $OUT"

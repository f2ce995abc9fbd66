#!/usr/bin/env bash
# Same workload, one run, four ways: direct to the fake replica, through
# Switchyard, through nginx and through HAProxy (equivalent reverse
# proxies, 2 workers/threads each). Prints throughput, latency, time to
# first byte, proxy CPU per request (for SSE: per stream, tokens sent in a
# burst) and peak RSS, with ratios against direct and nginx measured in the
# same run; then a memory scenario: STREAMS concurrent paced streams
# (PACED_TOKENS tokens PACED_GAP_MS apart) through each proxy, with its
# peak RSS and the bytes it holds per stream.
#
#   loadtest/bench/run.sh                 # 10 s per measurement, 2,000 paced streams
#   DURATION=30 CONCURRENCY=128 STREAMS=10000 loadtest/bench/run.sh
#   DURATION=2 STREAMS=100 loadtest/bench/run.sh        # a quick check that it all runs
#   SWITCHYARD_BIN=/path/to/old/switchyard loadtest/bench/run.sh   # another build, same harness
#   SCENARIOS="memory" STREAMS=5000 loadtest/bench/run.sh  # some of: plain stream rate memory
#   BIN=/path/to/release/dir loadtest/bench/run.sh      # prebuilt switchyard + switchyard-loadtest, no cargo
#   WORKERS=1 loadtest/bench/run.sh                     # server.workers for Switchyard (unset: its default, one per core; or shared)
#   PORT_OFFSET=1000 loadtest/bench/run.sh              # ports + 1000, beside another run
#
# Installs nginx and HAProxy (Debian packages) if they are missing. Everything
# listens on 127.0.0.1 and is stopped by PID when the script exits.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-64}
RATE=${RATE:-1000}
TOKENS=${TOKENS:-16}
INTER_TOKEN_MS=${INTER_TOKEN_MS:-0}
SCENARIOS=${SCENARIOS:-"plain stream rate memory"}
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
STREAMS=${STREAMS:-2000}
PACED_TOKENS=${PACED_TOKENS:-40}
PACED_GAP_MS=${PACED_GAP_MS:-100}
OUT=${OUT:-loadtest/results/bench-$(date -u +%Y%m%dT%H%M%SZ)}
# PORT_OFFSET=1000: every port below + 1000 (two runs side by side).
P=${PORT_OFFSET:-0}
REPLICA_PORT=$((19101 + P)) GW_PORT=$((18080 + P)) GW_ADMIN=$((18090 + P)) NGINX_PORT=$((18081 + P)) HAPROXY_PORT=$((18082 + P))
PACED_PORT=$((19102 + P)) NGINX_PACED_PORT=$((18083 + P)) HAPROXY_PACED_PORT=$((18084 + P))
# Every paced stream is a client and an upstream connection per proxy.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FDS=$(ulimit -n)
if [ $((2 * STREAMS + 200)) -gt "$FDS" ]; then
  echo "STREAMS=$STREAMS needs about $((2 * STREAMS + 200)) open files per proxy; the limit is $FDS (raise ulimit -Hn)" >&2
  exit 1
fi

mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

say() { printf '==> %s\n' "$*" >&2; }

install_pkg() { # package
  say "installing $1 (Debian package)"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$1" >/dev/null
}
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then install_pkg nginx-light; fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then install_pkg haproxy; fi
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

if [ -z "${BIN:-}" ]; then
  say "building release binaries (cached after the first time)"
  # Apart: built together, the gateway would get the load tester's tokio
  # `process` feature (orphan reaping, a lock per event-loop turn), which
  # the shipped binary (Dockerfile, scripts/pgo-build) does not have.
  cargo build --release -q -p switchyard-gateway && cargo build --release -q -p switchyard-loadtest
  BIN=target/release
fi

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

say "starting fake replica on :$REPLICA_PORT (1 thread)"
$BIN/switchyard-loadtest replica --port $REPLICA_PORT --model bench --tokens "$TOKENS" --inter-token-ms "$INTER_TOKEN_MS" --threads 1 >"$work/replica.log" 2>&1 &
pids+=($!); wait_port $REPLICA_PORT
say "starting paced fake replica on :$PACED_PORT ($PACED_TOKENS tokens, $PACED_GAP_MS ms apart)"
$BIN/switchyard-loadtest replica --port $PACED_PORT --model paced --tokens "$PACED_TOKENS" --inter-token-ms "$PACED_GAP_MS" --threads 1 >"$work/paced.log" 2>&1 &
pids+=($!); wait_port $PACED_PORT

cat >"$work/switchyard.yaml" <<YAML
server: { listen: 127.0.0.1:$GW_PORT, admin_listen: 127.0.0.1:$GW_ADMIN,${WORKERS:+ workers: $WORKERS,} limits: { max_connections: 200000 } }
clouds: { local: { provider: private } }
models: [{ name: bench, versions: [{ name: v1, weight: 100 }] }, { name: paced, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: r1, model: bench, cloud: local, url: "http://127.0.0.1:$REPLICA_PORT", max_concurrency: 100000 }
  - { id: p1, model: paced, cloud: local, url: "http://127.0.0.1:$PACED_PORT", max_concurrency: 100000 }
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
worker_rlimit_nofile $FDS;
events { worker_connections $((FDS - 100)); }
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
  upstream paced { server 127.0.0.1:$PACED_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PACED_PORT;
    location / {
      proxy_pass http://paced;
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

mkdir -p "$work/haproxy"
cat >"$work/haproxy/haproxy.cfg" <<HAPROXY
global
  nbthread 2
  maxconn $((FDS / 2 - 100))
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend replicas
frontend fe_paced
  bind 127.0.0.1:$HAPROXY_PACED_PORT
  default_backend paced
backend replicas
  balance leastconn
  server r1 127.0.0.1:$REPLICA_PORT
backend paced
  server p1 127.0.0.1:$PACED_PORT
HAPROXY
say "starting haproxy on :$HAPROXY_PORT"
$HAPROXY -db -f "$work/haproxy/haproxy.cfg" >"$work/haproxy/haproxy.log" 2>&1 &
HAPROXY_PID=$!; pids+=($HAPROXY_PID); wait_port $HAPROXY_PORT

# CPU ticks of processes (their threads included): "user kernel".
ticks() { local u=0 k=0; for p in "$@"; do read -r a b < <(awk '{print $14, $15}' "/proc/$p/stat"); u=$((u + a)); k=$((k + b)); done; echo "$u $k"; }
nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }
rss_kb() { local m=0; for p in "$@"; do r=$(awk '/VmHWM/{print $2}' "/proc/$p/status"); m=$((m + r)); done; echo $m; }
HZ=$(getconf CLK_TCK)

measure() { # name url-base stream pids...
  local name=$1 url=$2 stream=$3; shift 3
  local before after flag=""
  [ "$stream" = 1 ] && flag="--stream"
  before=$( [ $# -gt 0 ] && ticks "$@" || echo "0 0")
  $BIN/switchyard-loadtest run --url "$url" --model bench $LOAD_ARGS \
    --duration-secs "$DURATION" --warmup-secs 1 $flag --no-progress --json "$OUT/$name.json" --plot "$OUT/$name.svg" >"$OUT/$name.txt"
  after=$( [ $# -gt 0 ] && ticks "$@" || echo "0 0")
  local rss=0; [ $# -gt 0 ] && rss=$(rss_kb "$@")
  python3 - "$OUT/$name.json" "$before" "$after" "$HZ" "$rss" <<'PY'
import json, sys
path, before, after, hz, rss = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
user, kernel = (int(a) - int(b) for a, b in zip(after.split(), before.split()))
r = json.load(open(path))
# CPU covers warm-up too; divide by every request sent in the window.
sent = r["requests"] * (1 + 1.0 / max(r["seconds"], 1e-9))
per = lambda t: t / hz * 1e6 / sent if user + kernel else None
# Kernel time (syscalls, loopback TCP) and our own code's apart: what a
# change to the request path can move is mostly the user part.
r["proxy_cpu_us_per_req"], r["proxy_user_us_per_req"], r["proxy_kernel_us_per_req"] = per(user + kernel), per(user), per(kernel)
r["proxy_peak_rss_kb"] = rss or None
json.dump(r, open(path, "w"), indent=2)
PY
  cat "$OUT/$name.txt" >&2
}

LOAD_ARGS="--concurrency $CONCURRENCY"
for stream in 0 1; do
  kind=$([ $stream = 1 ] && echo stream || echo plain)
  want $kind || continue
  say "[$kind] direct"
  measure "direct-$kind" "http://127.0.0.1:$REPLICA_PORT" $stream
  say "[$kind] switchyard"
  measure "switchyard-$kind" "http://127.0.0.1:$GW_PORT" $stream $GW_PID
  say "[$kind] nginx"
  measure "nginx-$kind" "http://127.0.0.1:$NGINX_PORT" $stream $(nginx_pids)
  say "[$kind] haproxy"
  measure "haproxy-$kind" "http://127.0.0.1:$HAPROXY_PORT" $stream $HAPROXY_PID
done

# Fixed arrival rate (open loop, latency from the intended send time): what a
# proxy adds to p99 when it is not saturated.
LOAD_ARGS="--rate $RATE"
for target in direct switchyard nginx haproxy; do
  want rate || break
  say "[rate $RATE/s] $target"
  case $target in
    direct) measure "direct-rate" "http://127.0.0.1:$REPLICA_PORT" 0 ;;
    switchyard) measure "switchyard-rate" "http://127.0.0.1:$GW_PORT" 0 $GW_PID ;;
    nginx) measure "nginx-rate" "http://127.0.0.1:$NGINX_PORT" 0 $(nginx_pids) ;;
    haproxy) measure "haproxy-rate" "http://127.0.0.1:$HAPROXY_PORT" 0 $HAPROXY_PID ;;
  esac
done

# Memory: STREAMS concurrent paced streams (each lasts PACED_TOKENS x
# PACED_GAP_MS), one batch per proxy. A proxy's peak RSS is reset first
# (clear_refs 5), so the peak is this scenario's; bytes per stream = (peak
# - RSS just before) / STREAMS.
rss_now_kb() { local m=0; for p in "$@"; do m=$((m + $(awk '/VmRSS/{print $2}' "/proc/$p/status"))); done; echo $m; }
paced() { # name url pids...
  local name=$1 url=$2; shift 2
  local before
  for p in "$@"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done
  before=$(rss_now_kb "$@")
  local secs; secs=$(python3 -c "print(max(3, $PACED_TOKENS * $PACED_GAP_MS / 1000 * 2))")
  $BIN/switchyard-loadtest run --url "$url" --model paced --concurrency "$STREAMS" --stream \
    --duration-secs "$secs" --warmup-secs 0 --max-in-flight "$STREAMS" --timeout-secs 120 --no-progress \
    --json "$OUT/$name-paced.json" >"$OUT/$name-paced.txt"
  python3 - "$OUT/$name-paced.json" "$before" "$(rss_kb "$@")" "$STREAMS" <<'PY'
import json, sys
path, before, peak, streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
r["rss_before_kb"], r["proxy_peak_rss_kb"] = before, peak
r["bytes_per_stream"] = (peak - before) * 1024 / streams
json.dump(r, open(path, "w"), indent=2)
PY
  cat "$OUT/$name-paced.txt" >&2
}
if want memory; then
  say "[memory] $STREAMS paced streams through switchyard"
  paced switchyard "http://127.0.0.1:$GW_PORT" $GW_PID
  say "[memory] $STREAMS paced streams through nginx"
  paced nginx "http://127.0.0.1:$NGINX_PACED_PORT" $(nginx_pids)
  say "[memory] $STREAMS paced streams through haproxy"
  paced haproxy "http://127.0.0.1:$HAPROXY_PACED_PORT" $HAPROXY_PID
fi

python3 - "$OUT" "$CONCURRENCY" "$DURATION" "$TOKENS" "$INTER_TOKEN_MS" "$STREAMS" <<'PY' | tee "$OUT/summary.md"
import json, sys, os
out, conc, dur, tokens, gap, streams = sys.argv[1:7]
PROXIES = ("switchyard", "nginx", "haproxy")
def load(n): return json.load(open(os.path.join(out, n + ".json")))
print(f"concurrency {conc}, {dur} s per run, {tokens} tokens per answer {gap} ms apart, fake replica with 1 thread, all on one 2-core machine\n")
have = lambda n: os.path.exists(os.path.join(out, n + ".json"))
for kind in [k for k in ("plain", "stream") if have("direct-" + k)]:
    d, s, n, h = (load(t + "-" + kind) for t in ("direct",) + PROXIES)
    print(f"### {'non-streaming chat' if kind == 'plain' else 'streaming chat (SSE)'}\n")
    print("| target | req/s | p50 ms | p99 ms | first byte p50 ms | first byte p99 ms | proxy CPU µs/req | proxy peak RSS MiB | failed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in (("direct", d), ("switchyard", s), ("nginx", n), ("haproxy", h)):
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
          f"CPU per {'stream' if kind == 'stream' else 'request'} {ratio(s.get('proxy_cpu_us_per_req') or 0, n.get('proxy_cpu_us_per_req') or 0):.2f}x "
          f"(user {ratio(s.get('proxy_user_us_per_req') or 0, n.get('proxy_user_us_per_req') or 0):.2f}x: "
          f"{s.get('proxy_user_us_per_req') or 0:.1f} vs {n.get('proxy_user_us_per_req') or 0:.1f} µs, "
          f"kernel {ratio(s.get('proxy_kernel_us_per_req') or 0, n.get('proxy_kernel_us_per_req') or 0):.2f}x: "
          f"{s.get('proxy_kernel_us_per_req') or 0:.1f} vs {n.get('proxy_kernel_us_per_req') or 0:.1f} µs)")
    print(f"- switchyard / haproxy: throughput {ratio(s['rps'], h['rps']):.2f}x, p99 {ratio(s['latency_ms']['p99'], h['latency_ms']['p99']):.2f}x, "
          f"CPU per {'stream' if kind == 'stream' else 'request'} {ratio(s.get('proxy_cpu_us_per_req') or 0, h.get('proxy_cpu_us_per_req') or 0):.2f}x")
    if kind == "stream":
        print(f"- burst SSE ({tokens} tokens, no gap): proxy CPU µs per stream is the CPU column")
        print(f"- first byte p99 added over direct: " + ", ".join(f"{t} {r['ttfb_ms']['p99'] - d['ttfb_ms']['p99']:+.3f} ms" for t, r in zip(PROXIES, (s, n, h))))
    print()
if have("direct-rate"):
    d = load("direct-rate")
    print(f"### fixed rate, non-streaming (open loop)\n")
    print("| target | req/s | p50 ms | p99 ms | added p99 over direct ms | proxy CPU µs/req | failed |")
    print("|---|---|---|---|---|---|---|")
    for name, r in [("direct", d)] + [(t, load(t + "-rate")) for t in PROXIES]:
        cpu = r.get("proxy_cpu_us_per_req")
        print(f"| {name} | {r['rps']:.0f} | {r['latency_ms']['p50']:.3f} | {r['latency_ms']['p99']:.3f} | "
              f"{r['latency_ms']['p99'] - d['latency_ms']['p99']:+.3f} | {'' if cpu is None else f'{cpu:.1f}'} | {r['requests'] - r['ok']} |")
    print()
if have("switchyard-paced"):
    print(f"### memory: {streams} concurrent paced streams\n")
    print("| proxy | streams done | failed | RSS before MiB | peak RSS MiB | KiB per stream | first byte p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for t in PROXIES:
        r = load(t + "-paced")
        f = r.get("ttfb_ms") or {}
        print(f"| {t} | {r['ok']} | {r['requests'] - r['ok']} | {r['rss_before_kb']/1024:.1f} | {r['proxy_peak_rss_kb']/1024:.1f} | "
              f"{r['bytes_per_stream']/1024:.1f} | {f.get('p99', float('nan')):.3f} |")
    print()
PY
say "results in $OUT"

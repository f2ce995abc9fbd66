#!/usr/bin/env bash
# The fleet under load (issue 14's targets): 3 instances from
# scripts/fleet-up (etcd, Redis, the demo's replicas) behind HAProxy in TCP
# mode (the L4 balancer teams put in front; health checks, redispatch), an
# open-loop RATE req/s through it for DURATION s, and meanwhile:
#   - APPLIES `switchyard fleet apply` of the document with chat's weights
#     alternating, each timed from the write to every live instance serving
#     it (the CLI waits for confirmations);
#   - gw-2 stopped with SIGTERM (drain) in the middle and started again;
#   - etcd compacted at the current revision after the 10th apply, and
#     stopped and started again (same data dir) after the 40th.
# Prints failed requests and the apply latency p50/p99.
#
#   loadtest/bench/fleet.sh                       # 1,000 req/s, 60 s, 50 applies (release build)
#   RATE=300 DURATION=20 APPLIES=10 loadtest/bench/fleet.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

RATE=${RATE:-1000}
DURATION=${DURATION:-60}
APPLIES=${APPLIES:-50}
export FLEET_PROFILE=${FLEET_PROFILE:-release}
export FLEET_PORT_BASE=${FLEET_PORT_BASE:-25000}
export FLEET_RUN_DIR=${FLEET_RUN_DIR:-${TMPDIR:-/tmp}/switchyard-fleet-bench-$$}
bin=target/$FLEET_PROFILE
base=$FLEET_PORT_BASE
etcd=http://127.0.0.1:$((base + 379))
lb=127.0.0.1:$((base + 80))
out=$(mktemp -d)
haproxy_pid=

command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
cleanup() {
    [ -n "$haproxy_pid" ] && kill "$haproxy_pid" 2>/dev/null || true
    scripts/fleet-down >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "==> fleet-up ($FLEET_PROFILE)"
scripts/fleet-up >"$out/fleet-up.log"
cat >"$out/haproxy.cfg" <<CFG
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend fe
    bind $lb
    default_backend gws
backend gws
    balance roundrobin
    default-server check inter 200 fall 1 rise 2
    server gw1 127.0.0.1:$((base + 81))
    server gw2 127.0.0.1:$((base + 82))
    server gw3 127.0.0.1:$((base + 83))
CFG
haproxy -f "$out/haproxy.cfg" -db >"$out/haproxy.log" 2>&1 &
haproxy_pid=$!
sleep 1
kill -0 "$haproxy_pid" 2>/dev/null || { cat "$out/haproxy.log" >&2; exit 1; }

echo "==> load: $RATE req/s for $DURATION s through HAProxy at $lb"
"$bin/switchyard-loadtest" run --url "http://$lb" --rate "$RATE" --duration-secs "$DURATION" \
    --model chat --json "$out/load.json" >"$out/load.txt" 2>&1 &
load_pid=$!

echo "==> $APPLIES applies; gw-2 stopped and restarted half-way"
sleep 2
doc=examples/three-clouds.yaml
: >"$out/applies"
# gw-2's command line and environment (its document's ${VAR}s), to start it again.
gw2=$(awk '$2=="gw-2"{print $1}' "$FLEET_RUN_DIR/pids")
mapfile -d '' gw2_cmd <"/proc/$gw2/cmdline"
mapfile -d '' gw2_env <"/proc/$gw2/environ"
etcd_pid=$(awk '$2=="etcd"{print $1}' "$FLEET_RUN_DIR/pids")
mapfile -d '' etcd_cmd <"/proc/$etcd_pid/cmdline"
for i in $(seq "$APPLIES"); do
    w=$((50 + i % 40))
    sed "s/{ name: v1, weight: 90 }/{ name: v1, weight: $w }/; s/{ name: v2, weight: 10 }/{ name: v2, weight: $((100 - w)) }/" "$doc" >"$out/doc.yaml"
    t0=$(date +%s%N)
    "$bin/switchyard" fleet --etcd "$etcd" --prefix /switchyard apply "$out/doc.yaml" >"$out/apply-$i.log" 2>&1 || echo "apply $i: not confirmed by all (see $out/apply-$i.log)"
    echo $(( ($(date +%s%N) - t0) / 1000 )) >>"$out/applies"
    if [ "$i" -eq $((APPLIES / 2)) ]; then
        pid=$(awk '$2=="gw-2"{print $1}' "$FLEET_RUN_DIR/pids")
        echo "    apply $i: SIGTERM gw-2 ($pid)"
        kill -TERM "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        env -i "${gw2_env[@]}" "${gw2_cmd[@]}" >"$FLEET_RUN_DIR/gw-2.restarted.log" 2>&1 &
        echo "$! gw-2" >>"$FLEET_RUN_DIR/pids"
        echo "    gw-2 restarted ($!)"
    fi
    if [ "$i" -eq 10 ]; then
        rev=$(/usr/bin/etcdctl --endpoints="$etcd" endpoint status -w json | sed 's/.*"revision":\([0-9]*\).*/\1/')
        /usr/bin/etcdctl --endpoints="$etcd" compact "$rev" >/dev/null
        echo "    apply $i: etcd compacted at revision $rev"
    fi
    if [ "$i" -eq 40 ]; then
        kill -TERM "$etcd_pid"
        while kill -0 "$etcd_pid" 2>/dev/null; do sleep 0.1; done
        echo "    apply $i: etcd stopped"
        sleep 2
        "${etcd_cmd[@]}" >>"$FLEET_RUN_DIR/etcd.log" 2>&1 &
        etcd_pid=$!
        echo "$etcd_pid etcd" >>"$FLEET_RUN_DIR/pids"
        until /usr/bin/etcdctl --endpoints="$etcd" endpoint health >/dev/null 2>&1; do sleep 0.1; done
        echo "    etcd restarted ($etcd_pid)"
    fi
    sleep 0.5
    printf '    %d/%d applies\r' "$i" "$APPLIES"
done
echo
wait "$load_pid" || true
echo "==> results"
grep -E "requests|failed|errors|p50|p99|status" "$out/load.txt" | head -20
sort -n "$out/applies" | awk '{a[NR]=$1} END {
    p50 = a[int((NR + 1) / 2)]; i99 = int(NR * 0.99); if (i99 < 1) i99 = 1; p99 = a[i99]
    printf "fleet apply confirmed by all live instances: n=%d p50=%.1f ms p99=%.1f ms max=%.1f ms (CLI wall time: validation, connect, CAS write, wait)\n", NR, p50 / 1000, p99 / 1000, a[NR] / 1000 }'
echo "logs: $out"

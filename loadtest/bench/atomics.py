#!/usr/bin/env python3
"""Atomic read-modify-writes per request, from a callgrind dump with
per-instruction counts. Callgrind counts an x86 `lock`-prefixed
instruction (or an `xchg` with memory) as one instruction, but even
uncontended it costs ~20 cycles (about 6 ns here, `fetch_add` against a
plain add): a reference count, a mutex, a waker. This finds every such
instruction of each object in the dump (objdump), adds up how often it ran,
and says in which function.

  CALLGRIND_FLAGS=--dump-instr=yes OUT=/tmp/cg loadtest/bench/callgrind.sh
  loadtest/bench/atomics.py /tmp/cg/callgrind.out.PID.1 REQUESTS [TOP] [--lines] [--svg=FILE]

--lines: the hottest instructions with where they are inlined from
(addr2line), the way to tell which `Arc` or mutex it is.
--svg=FILE: the per-request count by kind (below) as a bar chart, titled
--title=TEXT. Kinds go by the function an instruction ran in, after
inlining: read them on the `release` build; the fat-LTO `dist` build
inlines nearly everything into the connection's future.
"""
import collections
import os
import re
import subprocess
import sys


def atomic_addresses(path):
    """Addresses of the atomic read-modify-write instructions of an object."""
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True
    ).stdout
    found = set()
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(\S.*)", line)
        if m and (m.group(2).startswith("lock ") or (m.group(2).startswith("xchg") and "(" in m.group(2))):
            found.add(int(m.group(1), 16))
    return found


def counts(path):
    """(object, address) -> self count, and the function of each."""
    names = {"ob": {}, "fn": {}}
    ob = fn = None
    addr, after_call = 0, False
    ran, where = collections.Counter(), {}

    def name(kind, text):
        m = re.match(r"\((\d+)\)(?: (.*))?", text)
        if not m:
            return text
        if m.group(2):
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), text)

    for line in open(path, errors="replace"):
        key = line.split("=", 1)[0]
        if key in ("ob", "fn"):
            value = name(key, line[len(key) + 1:].strip())
            ob, fn = (value, fn) if key == "ob" else (ob, value)
            continue
        if key in ("cob", "cfn"):
            name(key[1:], line[len(key) + 1:].strip())
            continue
        if key == "calls":
            # The next cost line is the call's inclusive cost, not this
            # function's own.
            after_call = True
            continue
        if not line or line[0] not in "+-*0123456789":
            continue
        parts = line.split()
        at = parts[0]
        if at[0] in "+-":
            addr += int(at, 16) if at[1:].startswith("0x") else int(at)
        elif at != "*":
            addr = int(at, 16)
        if after_call:
            after_call = False
            continue
        if len(parts) >= 3:
            ran[(ob, addr)] += int(parts[2])
            where[(ob, addr)] = fn
    return ran, where


# Kinds of atomic, by the function the instruction ran in (first match).
KINDS = [
    ("bytes reference counts (buffers, header values, URI)", ("bytes::",)),
    ("glibc: syscall cancellation points", ("asynccancel",)),
    ("tokio: I/O readiness", ("tokio::runtime::io", "poll_evented", "Registration")),
    ("tokio: timers", ("tokio::runtime::time", "sleep::Sleep", "timeout::", "Timer")),
    ("tokio: tasks and wakers", ("waker", "task::harness", "task::state", "task::raw", "scheduler", "task_tracker")),
    ("tokio: Notify, cancellation, AtomicWaker", ("notify", "Notify", "cancellation_token", "atomic_waker")),
    ("metrics, costs, observer", ("prometheus", "switchyard_ops", "observe")),
    ("router stats, slots, queues", ("switchyard_router", "GuardedBody", "admission")),
    ("upstream pool", ("upstream::pool",)),
    ("HTTP/1 connection (its mutex)", ("switchyard_gateway::http1", "PollFn", "http_body::Body>::poll_frame")),
    ("malloc", ("malloc", "_int_free")),
]


def kind(fn):
    for name, marks in KINDS:
        if any(m in fn for m in marks):
            return name
    return "other"


def svg(path, kinds, total, title):
    """A horizontal bar per kind, per request."""
    rows = kinds.most_common()
    width, bar_x, row_h = 760, 330, 22
    height = 50 + row_h * len(rows)
    top = max(v for _, v in rows) or 1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="20" font-size="14">{title}: {total:.1f} atomic read-modify-writes per request</text>',
    ]
    for i, (name, v) in enumerate(rows):
        y = 40 + i * row_h
        w = (width - bar_x - 60) * v / top
        out.append(f'<text x="{bar_x - 8}" y="{y + 14}" text-anchor="end">{name}</text>')
        out.append(f'<rect x="{bar_x}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="#4a7ab5"/>')
        out.append(f'<text x="{bar_x + w + 6:.1f}" y="{y + 14}">{v:.1f}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path, requests = args[0], int(args[1])
    top = int(args[2]) if len(args) > 2 else 30
    ran, where = counts(path)
    atomic = {}
    total, per_fn, hot = 0, collections.Counter(), []
    for (ob, addr), n in ran.items():
        if ob not in atomic:
            # The addresses are read from the object as it is now: one
            # rebuilt after the dump would give a wrong count, silently.
            if os.path.exists(ob) and os.path.getmtime(ob) > os.path.getmtime(path):
                sys.exit(f"{ob} changed after {path} was written: dump it again")
            try:
                atomic[ob] = atomic_addresses(ob)
            except OSError:
                atomic[ob] = set()
        if addr in atomic[ob]:
            total += n
            per_fn[where[(ob, addr)]] += n
            hot.append((n, ob, addr))
    kinds = collections.Counter()
    for fn, n in per_fn.items():
        kinds[kind(fn)] += n / requests
    flags = dict(a[2:].split("=", 1) for a in sys.argv if a.startswith("--") and "=" in a)
    if "svg" in flags:
        svg(flags["svg"], kinds, total / requests, flags.get("title", path.rsplit("/", 1)[-1]))
    print(f"atomic read-modify-writes per request: {total / requests:.1f}")
    print("by kind:")
    for name, n in kinds.most_common():
        print(f"{n:7.1f}  {name}")
    print("by function:")
    for fn, n in per_fn.most_common(top):
        print(f"{n / requests:7.2f}  {fn[:160]}")

    if "--lines" in sys.argv:
        print("\nhottest instructions, innermost frame first:")
        for n, ob, addr in sorted(hot, reverse=True)[:top]:
            lines = subprocess.run(
                ["addr2line", "-f", "-i", "-C", "-e", ob, hex(addr)], capture_output=True, text=True
            ).stdout.splitlines()
            frames = [f"{lines[i][:70]} ({lines[i + 1].rsplit('/', 1)[-1]})" for i in range(0, len(lines) - 1, 2)]
            print(f"{n / requests:7.2f}  " + " <- ".join(frames[:4]))


try:
    main()
except BrokenPipeError:
    pass

#!/usr/bin/env python3
"""Atomic read-modify-writes per request, from a callgrind dump with
per-instruction counts. Callgrind counts an x86 `lock`-prefixed
instruction (or an `xchg` with memory) as one instruction, but even
uncontended it costs ~20 cycles (about 6 ns here, `fetch_add` against a
plain add): a reference count, a mutex, a waker. This finds every such
instruction of each object in the dump (objdump), adds up how often it ran,
and says in which function.

  CALLGRIND_FLAGS=--dump-instr=yes OUT=/tmp/cg loadtest/bench/callgrind.sh
  loadtest/bench/atomics.py /tmp/cg/callgrind.out.PID.1 REQUESTS [TOP] [--lines]

--lines: the hottest instructions with where they are inlined from
(addr2line), the way to tell which `Arc` or mutex it is.
"""
import collections
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


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path, requests = args[0], int(args[1])
    top = int(args[2]) if len(args) > 2 else 30
    ran, where = counts(path)
    atomic = {}
    total, per_fn, hot = 0, collections.Counter(), []
    for (ob, addr), n in ran.items():
        if ob not in atomic:
            try:
                atomic[ob] = atomic_addresses(ob)
            except OSError:
                atomic[ob] = set()
        if addr in atomic[ob]:
            total += n
            per_fn[where[(ob, addr)]] += n
            hot.append((n, ob, addr))
    print(f"atomic read-modify-writes per request: {total / requests:.1f}")
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


main()

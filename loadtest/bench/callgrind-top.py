#!/usr/bin/env python3
"""Self cost per function of a callgrind dump, per request, and who calls a
function. For these dumps (a Rust binary with inlined frames, `fi=`
lines) callgrind_annotate 3.19 lists only the thread's root, `clone`;
this reads the format itself.

  loadtest/bench/callgrind-top.py DUMP REQUESTS [N]          # top N self costs
  loadtest/bench/callgrind-top.py DUMP REQUESTS N 'REGEX'    # callers of REGEX
"""
import collections
import re
import sys


def main():
    path, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    callee = re.compile(sys.argv[4]) if len(sys.argv) > 4 else None
    names, fn, cfn, calls = {}, None, None, None
    own, via, count = collections.Counter(), collections.Counter(), collections.Counter()

    def name(text):
        m = re.match(r"\((\d+)\)(?: (.*))?", text)
        if not m:
            return text
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), text)

    # Position columns before the cost: `line`, or `instr line` in a dump
    # made with --dump-instr=yes.
    positions = 1
    for line in open(path, errors="replace"):
        if line.startswith("positions:"):
            positions = len(line.split()) - 1
        elif line.startswith("fn="):
            fn = name(line[3:].rstrip("\n"))
        elif line.startswith("cfn="):
            cfn = name(line[4:].rstrip("\n"))
        elif line.startswith("calls="):
            calls = int(line[6:].split()[0])
        elif line[:1].isdigit() or line[:1] in "+-*":
            fields = line.split()
            if len(fields) <= positions:
                continue
            cost = int(fields[positions])
            if calls is None:
                own[fn] += cost
            else:
                if callee and callee.search(cfn or ""):
                    via[(fn, cfn)] += cost
                    count[(fn, cfn)] += calls
                calls = None
    total = sum(own.values())
    print(f"total {total} Ir, {total / requests:.0f} per request")
    if callee:
        for (caller, target), cost in via.most_common(top):
            print(f"{cost / requests:8.0f}  calls/req {count[(caller, target)] / requests:5.2f}  {caller[:110]} -> {target[:60]}")
        return
    for f, cost in own.most_common(top):
        print(f"{cost / requests:8.0f} {100 * cost / total:5.1f}%  {f[:150]}")


if __name__ == "__main__":
    main()

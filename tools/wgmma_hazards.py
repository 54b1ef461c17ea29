#!/usr/bin/env python3
"""Finds registers that the machine code touches while a Hopper matrix product (HGMMA,
from PTX's wgmma.mma_async) still owns them: its accumulators written or read, or its A
operand registers written, before the wait (WARPGROUP.DEPBAR) that retires it.

  tools/wgmma_hazards.py KERNEL.ptx|KERNEL.cubin|KERNEL.sass [--arch sm_90a]

ptxas is meant to keep those registers to themselves until the wait, and it does when it
serialises the products (remark C7515). Without that, its register allocator was seen to
hand the A registers of an in-flight p.v to the next tile's softmax where a branch joined a
path with the product in flight to one without it (session 17): a wrong result, no error.
This tool reads the SASS (nvdisasm -c; PTX is first assembled with ptxas), follows its
branches, and keeps per instruction every set of products that may be in flight (groups
end at an HGMMA marked gsb0; "DEPBAR.LE gsb0, N" leaves the newest N). It prints each
instruction that writes an in-flight A or accumulator register, or reads an in-flight
accumulator, and exits 1 if there is one. Needs ptxas and nvdisasm (CUDA_HOME/bin, PATH or
NVDISASM).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ADDR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
LABEL = re.compile(r"^\s*(\.L_x_\d+):")
TARGET = re.compile(r"`\((\.L_x_\d+)\)")
REG = re.compile(r"(?<![A-Z])R(\d+)\b")
# instructions whose first operand is not a register they write
NO_DEST = ("ST", "STS", "STG", "STL", "RED", "BRA", "BAR", "WARPSYNC", "EXIT", "NOP", "MEMBAR",
           "FENCE", "DEPBAR", "BSSY", "BSYNC", "RET", "CALL", "SYNCS", "WARPGROUP", "ARRIVES",
           "LDGDEPBAR", "ERRBAR", "CCTL", "YIELD", "BPT", "HGMMA", "UTMALDG", "UBLKCP")
MAX_STATES = 16  # possible in-flight states kept per instruction before they are merged
MAX_GROUPS = 8  # committed groups told apart; older ones are merged (still in flight)


def tool(name):
    cuda = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    found = os.environ.get(name.upper()) or shutil.which(name) or os.path.join(cuda, "bin", name)
    if not os.path.exists(found):
        sys.exit("wgmma_hazards: needs %s (CUDA_HOME/bin, PATH or %s)" % (name, name.upper()))
    return found


def sass_of(path, arch):
    if path.endswith(".sass"):
        return open(path).read()
    with tempfile.TemporaryDirectory() as work:
        cubin = path
        if path.endswith(".ptx"):
            cubin = os.path.join(work, "k.cubin")
            subprocess.run([tool("ptxas"), "-arch=" + arch, path, "-o", cubin], check=True)
        return subprocess.run([tool("nvdisasm"), "-c", cubin], check=True, capture_output=True,
                              text=True).stdout


def parse(sass):
    """Instructions as (address, predicate, opcode, operands) and the labels' indices."""
    code, labels = [], {}
    for line in sass.splitlines():
        m = LABEL.match(line)
        if m:
            labels[m.group(1)] = len(code)
            continue
        m = ADDR.search(line)
        if not m:
            continue
        text = m.group(2)
        pred = ""
        if text.startswith("@"):
            pred, text = text.split(None, 1)
        opcode, _, rest = text.partition(" ")
        code.append((m.group(1), pred, opcode, rest))
    return code, labels


def width(opcode):
    if ".128" in opcode:
        return 4
    if ".64" in opcode or ".WIDE" in opcode:
        return 2
    return 1


def written(opcode, operands):
    if opcode.split(".")[0] in NO_DEST:
        return set()
    first = operands.split(",")[0].strip()
    m = re.fullmatch(r"R(\d+)", first)
    return set(range(int(m.group(1)), int(m.group(1)) + width(opcode))) if m else set()


def read(opcode, operands):
    regs = set()
    parts = operands.split(",")
    sources = parts if opcode.split(".")[0] in NO_DEST else parts[1:]
    for part in sources:
        for m in REG.finditer(part):
            regs.add(int(m.group(1)))
    return regs


def hgmma_regs(opcode, operands):
    """(accumulator registers, A registers) of an HGMMA."""
    m = re.search(r"\.(\d+)x(\d+)x\d+\.F32", opcode)
    acc_n = int(m.group(1)) * int(m.group(2)) // 128 if m else 32
    ops = [o.strip() for o in operands.split(",")]
    if ops[0] == "RZ":  # ptxas' empty product that closes a group
        return set(), set()
    d = int(ops[0][1:])
    acc = set(range(d, d + acc_n))
    a = set()
    if re.fullmatch(r"R\d+", ops[1]):
        a = set(range(int(ops[1][1:]), int(ops[1][1:]) + 4))
    return acc, a


def step(state, ins):
    """The in-flight state after one instruction. state = (closed groups, open group); a
    group is a frozenset of ('acc'|'a', register)."""
    closed, open_group = state
    _, pred, opcode, operands = ins
    if opcode.startswith("HGMMA"):
        acc, a = hgmma_regs(opcode, operands)
        open_group = open_group | frozenset(("acc", r) for r in acc) | frozenset(("a", r) for r in a)
        if "gsb0" in operands:
            closed, open_group = closed + (open_group,), frozenset()
            if len(closed) > MAX_GROUPS:  # a loop that commits without waiting: bound it
                closed = (closed[0] | closed[1],) + closed[2:]
    elif opcode.startswith("WARPGROUP.DEPBAR"):
        keep = int(operands.split(",")[-1].strip(), 0)
        if not pred:
            closed = closed[len(closed) - keep:] if keep else ()
    return (closed, open_group)


def hazards(state, ins):
    _, _, opcode, operands = ins
    if opcode.startswith("HGMMA"):
        return []
    owned = set()
    for g in state[0] + (state[1],):
        owned |= g
    acc = {r for kind, r in owned if kind == "acc"}
    a = {r for kind, r in owned if kind == "a"}
    w, rd = written(opcode, operands), read(opcode, operands)
    out = []
    if w & acc:
        out.append("writes accumulator R%s" % ",R".join(map(str, sorted(w & acc))))
    if rd & acc:
        out.append("reads accumulator R%s" % ",R".join(map(str, sorted(rd & acc))))
    if w & a:
        out.append("writes A operand R%s" % ",R".join(map(str, sorted(w & a))))
    return out


def successors(code, labels, i):
    _, pred, opcode, operands = code[i]
    base = opcode.split(".")[0]
    if base in ("EXIT", "RET") and not pred:
        return []
    if base == "BRA":
        m = TARGET.search(operands)
        targets = [labels[m.group(1)]] if m and m.group(1) in labels else []
        conditional = pred or re.match(r"!?U?P\d", operands.strip())
        return targets + ([i + 1] if conditional and i + 1 < len(code) else [])
    return [i + 1] if i + 1 < len(code) else []


def analyse(code, labels):
    states = [set() for _ in code]
    states[0].add(((), frozenset()))
    work = [0]
    while work:
        i = work.pop()
        outs = {step(s, code[i]) for s in states[i]}
        for j in successors(code, labels, i):
            new = outs - states[j]
            if not new:
                continue
            states[j] |= new
            if len(states[j]) > MAX_STATES:  # merge: the union of everything in flight
                depth = max(len(s[0]) for s in states[j])
                groups = [frozenset().union(*(s[0][k] for s in states[j] if len(s[0]) > k)) for k in range(depth)]
                states[j] = {(tuple(groups), frozenset().union(*(s[1] for s in states[j])))}
            work.append(j)
    found = []
    for i, ins in enumerate(code):
        msgs = set()
        for s in states[i]:
            msgs.update(hazards(s, ins))
        for msg in sorted(msgs):
            found.append("%s  %s %s %s: %s" % (ins[0], ins[1], ins[2], ins[3], msg))
    return found


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    arch = "sm_90a"
    if "--arch" in argv:
        arch = argv[argv.index("--arch") + 1]
    code, labels = parse(sass_of(argv[1], arch))
    products = sum(1 for c in code if c[2].startswith("HGMMA"))
    found = analyse(code, labels)
    for line in found:
        print(line)
    print("wgmma_hazards: %d HGMMA, %d hazard%s" % (products, len(found), "" if len(found) == 1 else "s"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Compiles one of the library's OpenCL programs for NVIDIA's sm_90 without an NVIDIA GPU,
to catch mistakes in the kernels' inline PTX before a run on the GPU machine costs device
time, and to see roughly how many registers a variant needs.

  tools/ptx_check.py PROGRAM [-DNAME=VALUE ...]
  tools/ptx_check.py attn_cache_mma -DCACHE_WARPS=4 -DSPLIT=1 -DMERGE_IN_KERNEL=1
  tools/ptx_check.py --keep DIR PROGRAM ...   (DIR gets PROGRAM.ptx and PROGRAM.cubin)

PROGRAM is a key of meson.build's kernel_programs; its sources are joined in that order, as
the build does. The defines given replace the defaults below (the decode's default on
sm_90 for attn_cache_mma); the parameter-block sizes come from the host headers.

How: clang (15 or newer) compiles the OpenCL C for nvptx64 (sm_86, PTX 7.5, the newest it
knows; inline asm text is passed through unchecked); the OpenCL built-ins it leaves as
calls are given stub bodies; the PTX is retargeted to sm_90 / PTX 8.3 (the tensor map
fences need 8.3; NVIDIA's driver writes 9.0) and assembled by CUDA's ptxas (-c:
relocatable, so nothing else need resolve). ptxas then checks every
inline instruction and prints registers and spills. The register counts are clang's
code generation, not the driver's: for those, read the driver's PTX from the disk cache
with tools/driver_ptx_regs.py. Needs clang, gcc and ptxas (CUDA_HOME/bin or PATH).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# attn_cache_mma as the sm_90 decode default plans it: fp16, d 128, a seqlens buffer,
# 8 warps x 2 stages through the copy engine, no split
CACHE_DEFAULTS = {
    "FACL_DTYPE": 1, "PART_DTYPE": 0, "HEAD_DIM": 128, "IS_VARLEN": 0, "HAS_SOFTCAP": 0,
    "HAS_ALIBI": 0, "HAS_DROPOUT": 0, "HAS_SEQUSED": 0, "IS_PAGED": 0, "PAGE_SHIFT": -1, "HAS_SEQLENS_BUF": 1,
    "HAS_BATCH_IDX": 0, "HAS_LEFTPAD": 0, "HAS_NEW": 0, "NEW_VARLEN": 0, "HAS_ROTARY": 0,
    "KEYS_FROM_CU_K": 0, "SPLIT": 0, "ALIGNED_KV": 1, "WARP_SHUFFLE": 1, "ROWS": 16,
    "KEY_GROUPS": 1, "KPS": 16, "CACHE_MMA": 1, "MMA_EMULATE": 0, "CACHE_WARPS": 8,
    "CACHE_STAGES": 2, "CACHE_BULK": 1, "CACHE_CPU": 0, "CACHE_PREFETCH": 0,
}


def program_sources(name):
    """The .cl files of program `name`, from meson.build's kernel_programs."""
    text = open(os.path.join(ROOT, "meson.build")).read()
    helpers = re.findall(r"'([\w.]+\.cl)'", re.search(r"kernel_helpers = \[(.*?)\]", text).group(1))
    m = re.search(r"'%s' : (kernel_helpers \+ )?\[(.*?)\]" % re.escape(name), text, re.S)
    if not m:
        sys.exit("ptx_check: no program '%s' in meson.build" % name)
    own = re.findall(r"'([\w.]+\.cl)'", m.group(2))
    return [os.path.join(ROOT, "cl_kernels", f) for f in (helpers if m.group(1) else []) + own]


def param_sizes(work):
    """sizeof(facl_kernel_params) and sizeof(facl_cache_params), as the host has them."""
    src = os.path.join(work, "sizes.c")
    with open(src, "w") as f:
        f.write('#define CL_TARGET_OPENCL_VERSION 300\n#include <stdio.h>\n#include "kernel_params.h"\n'
                '#include "cache_params.h"\nint main(void) { printf("%zu %zu\\n", '
                "sizeof(facl_kernel_params), sizeof(facl_cache_params)); return 0; }\n")
    exe = os.path.join(work, "sizes")
    subprocess.run(["gcc", "-I", os.path.join(ROOT, "src"), "-I", os.path.join(ROOT, "include"),
                    src, "-o", exe], check=True)
    return subprocess.run([exe], check=True, capture_output=True, text=True).stdout.split()


# With --keep, the OpenCL built-ins the program uses become instructions instead of calls to
# stubs: ptxas serialises every wgmma of a function that calls anything (remark C7509), so
# only call-free code shows how it schedules and allocates registers around the products
# (read with tools/wgmma_hazards.py). Scalar forms only; the values of log are approximate.
INLINE_BUILTINS = r"""
#define FACL_SREG(name, d) ((size_t)((d) == 0 ? __nvvm_read_ptx_sreg_##name##_x() : \
                                     (d) == 1 ? __nvvm_read_ptx_sreg_##name##_y() : __nvvm_read_ptx_sreg_##name##_z()))
#define get_local_id(d) FACL_SREG(tid, d)
#define get_group_id(d) FACL_SREG(ctaid, d)
#define get_num_groups(d) FACL_SREG(nctaid, d)
#define get_local_size(d) FACL_SREG(ntid, d)
#define fma(a, b, c) __builtin_fmaf(a, b, c)
#define fmax(a, b) __builtin_fmaxf(a, b)
#define fmin(a, b) __builtin_fminf(a, b)
#define log(x) (__nvvm_lg2_approx_f(x) * 0.69314718f)
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#define clamp(x, lo, hi) min(max(x, lo), hi)
#define barrier(flags) __asm__ volatile("bar.sync 0;" ::: "memory")
#define vstore_half_rte(v, i, ptr) __asm__ volatile("{ .reg .b16 h; cvt.rn.f16.f32 h, %1; st.global.b16 [%0], h; }" \
                                                    :: "l"((ptr) + (i)), "f"(v) : "memory")
"""


def stub_builtins(ptx):
    """Gives every declared but undefined function (the OpenCL built-ins) a body that returns
    zeros, so that ptxas assembles the module."""
    decl = re.compile(r"(?m)^(?:\.extern )?\.func\s+(\(\.param (?:\.align \d+ )?\.(\w+) func_retval0(\[\d+\])?\)\s*)?"
                      r"(\w+)\s*(\([^)]*\))?\s*;")
    out = ptx
    for m in decl.finditer(ptx):
        name = m.group(4)
        if re.search(r"\.func\s+(\([^)]*\)\s*)?%s\s*(\([^)]*\))?\s*\{" % name, ptx):
            continue
        body = "{\n"
        if m.group(2):
            if m.group(3):
                body += "".join("\tst.param.b8 [func_retval0+%d], 0;\n" % i
                                for i in range(int(m.group(3)[1:-1])))
            else:
                body += "\tst.param.%s [func_retval0+0], 0;\n" % m.group(2)
        body += "\tret;\n}\n"
        head = m.group(0).replace(".extern ", "", 1).rstrip().rstrip(";").rstrip()
        out = out.replace(m.group(0), head + "\n" + body, 1)
    return out


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    keep = None
    if argv[1] == "--keep" and len(argv) > 3:
        keep, argv = argv[2], argv[:1] + argv[3:]
    program = argv[1]
    defines = dict(CACHE_DEFAULTS) if program == "attn_cache_mma" else {}
    for arg in argv[2:]:
        m = re.fullmatch(r"-D(\w+)(?:=(.*))?", arg)
        if not m:
            sys.exit("ptx_check: '%s' is not -DNAME=VALUE" % arg)
        defines[m.group(1)] = m.group(2) if m.group(2) is not None else 1
    clang = next((c for c in ("clang-17", "clang-16", "clang-15", "clang") if shutil.which(c)), None)
    cuda = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    ptxas = shutil.which("ptxas") or os.path.join(cuda, "bin", "ptxas")
    if not clang or not os.path.exists(ptxas):
        sys.exit("ptx_check: needs clang and ptxas (set CUDA_HOME)")
    with tempfile.TemporaryDirectory() as work:
        sizes = param_sizes(work)
        defines.setdefault("FACL_PARAMS_SIZE", sizes[0])
        defines.setdefault("FACL_CACHE_PARAMS_SIZE", sizes[1])
        # OpenCL C has no asm keyword in clang; the driver's compiler accepts both spellings
        source = "".join(open(f).read() for f in program_sources(program))
        if keep:
            source = INLINE_BUILTINS + source
        source = re.sub(r"\basm(\s+volatile)?\s*\(", lambda m: "__asm__" + (m.group(1) or "") + "(", source)
        cl = os.path.join(work, program + ".cl")
        open(cl, "w").write(source)
        ptx = os.path.join(work, program + ".ptx")
        cmd = [clang, "-target", "nvptx64-nvidia-nvcl", "-x", "cl", "-cl-std=CL1.2", "-O2", "-S",
               "-Xclang", "-finclude-default-header", "-Xclang", "-target-feature", "-Xclang", "+ptx75",
               "-Xclang", "-target-cpu", "-Xclang", "sm_86", "-Wno-everything", "-o", ptx, cl]
        cmd += ["-D%s=%s" % (k, v) for k, v in defines.items()]
        if subprocess.run(cmd).returncode != 0:
            return 1
        text = stub_builtins(open(ptx).read())
        text = re.sub(r"(?m)^\.version .*$", ".version 8.3", text)
        # -DFACL_SM90A=1: the sm_90a instructions behind the marker become instructions, as
        # src/ptx_patch.c does with the driver's PTX (wgmma, setmaxnreg are then checked too)
        arch = "sm_90a" if str(defines.get("FACL_SM90A", 0)) == "1" else "sm_90"
        if arch == "sm_90a":
            text = re.sub(r"(?m)^(\s*)// FACL_SM90A ", r"\1", text)
            # entry markers: the directive into the (one) kernel entry's header
            directives = sorted(set(re.findall(r"(?m)^\s*// FACL_SM90A_ENTRY (.*)$", text)))
            text = re.sub(r"(?m)^\s*// FACL_SM90A_ENTRY .*\n", "", text)
            if directives:
                text = re.sub(r"(?ms)^(\.(?:visible )?\.?entry [^\n]*\n.*?)^\{",
                              lambda m: m.group(1) + "".join(d + "\n" for d in directives) + "{", text, count=1)
        text = re.sub(r"(?m)^\.target .*$", ".target " + arch, text)
        open(ptx, "w").write(text)
        rc = subprocess.run([ptxas, "-c", "-arch=" + arch, "-v", ptx, "-o",
                             os.path.join(work, program + ".o")]).returncode
        if keep:  # for tools/wgmma_hazards.py and reading the machine code
            os.makedirs(keep, exist_ok=True)
            shutil.copy(ptx, os.path.join(keep, program + ".ptx"))
            if rc == 0:
                shutil.copy(os.path.join(work, program + ".o"), os.path.join(keep, program + ".cubin"))
        return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Test-session setup shared by every member's tests."""

import os

# XLA:CPU without LLVM's optimisations: most of this suite's time is compiling tiny models
# (the tiny TrIVD train step compiles in ~36 s instead of ~61 s here), and the tests check
# results, not CPU speed (the benchmarks measure that, without these flags). Appended to
# XLA_FLAGS before any test starts JAX; xdist workers and test subprocesses inherit it.
TEST_XLA_FLAGS = ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true")
_flags = os.environ.get("XLA_FLAGS", "").split()
os.environ["XLA_FLAGS"] = " ".join(_flags + [f for f in TEST_XLA_FLAGS if f not in _flags])

# The compile-only TPU and GPU targets (tools/compile-targets, the `aot` group) need this
# process to be a CPU host: the CUDA plugin registers its compile-only H100 only when the CPU
# platform is requested before JAX starts, whichever test happens to start JAX first. On a
# machine with a GPU or TPU attached nothing changes.
if not (
    os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio")
):
    try:
        import compile_targets
    except ImportError:  # the `aot` group is not installed: nothing to prepare
        pass
    else:
        compile_targets.prefer_cpu_host()

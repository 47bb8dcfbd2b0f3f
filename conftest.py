"""Test-session setup shared by every member's tests."""

import os

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

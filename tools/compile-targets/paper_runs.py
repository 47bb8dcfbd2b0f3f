"""The papers' training runs compiled for their hardware (and today's), as a table.

    python3 -m uv run --group aot python tools/compile-targets/paper_runs.py run [--only ID,...]
    python3 -m uv run --group aot python tools/compile-targets/paper_runs.py table

`run` executes, one after another, each row's command line: the apps' own
`--compile_only --topology=NAME --json=FILE`, the same sharded step that training jits. A row
whose JSON exists is skipped (delete it to redo); rows that cannot be compiled leave their
error in the JSON. `table` prints the Markdown tables of BENCHMARKS.md from the JSON files.
Compiling a paper-size step takes minutes to tens of minutes of CPU and up to ~17 GB of RAM
each: the rows run one at a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "paper_runs")
# TrIVD-GAN-FP rows measured before commit 57cce45, whose recurrent units kept a normalised
# copy of every spectral-norm kernel per time step for the backward pass. The fix only lowers
# memory; rows not yet re-measured are shown from here, marked as such.
BEFORE = os.path.join(RESULTS, "before_57cce45")
GIB = 1024**3

# The paper's Table 1 (TrIVD-GAN-FP, appendix E.3): maximum memory of one training step, GB.
TABLE1_PAPER_GB = {
    "clip": 3.49,
    "downsampled": 3.01,
    "cropped": 3.10,
    "cropped_downsampled": 3.30,
    "mocogan_k1": 3.95,
    "mocogan": 3.95,
    "dvd_gan_fp": 3.53,
    "dvd_gan_fp_faster": 3.54,
    "dvd_gan_fp_stronger": 3.65,
}
TABLE1_NAMES = {
    "clip": "Clip",
    "downsampled": "Downsampled",
    "cropped": "Cropped",
    "cropped_downsampled": "Cropped + Downsampled",
    "mocogan_k1": "MoCoGAN-like K = 1",
    "mocogan": "MoCoGAN-like K = 8",
    "dvd_gan_fp": "DVD-GAN-FP",
    "dvd_gan_fp_faster": "DVD-GAN-FP_faster",
    "dvd_gan_fp_stronger": "DVD-GAN-FP_stronger",
}


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    table: str  # "table1", "trivd", "videotx"
    command: tuple[str, ...]
    topology: str
    note: str = ""


def _table1_rows() -> list[Row]:
    """Appendix E.3's per-core step (G batch 8, D batches 16 and 8; ch 48; 5 -> 11 frames at
    64x64; TSRU_p) for every decomposition, on a TPU v3-8 with 8 clips per core."""
    rows = []
    for key in TABLE1_PAPER_GB:
        decomposition = "mocogan" if key == "mocogan_k1" else key
        args = [
            "train-trivd",
            "--config=kinetics600:medium",
            "--config.data.batch_size=64",
            f"--config.model.decomposition={decomposition}",
        ]
        if key == "mocogan_k1":
            args.append("--config.model.num_sampled_frames=1")
        rows.append(Row(f"table1_{key}", "table1", tuple(args), "v3:2x2"))
    # The memory options on the final decomposition: what they save per core.
    for name, extra in (
        ("bf16", ("--config.model.dtype=bfloat16",)),
        ("remat", ("--config.model.remat=True",)),
        ("bf16_remat", ("--config.model.dtype=bfloat16", "--config.model.remat=True")),
    ):
        args = (
            "train-trivd",
            "--config=kinetics600:medium",
            "--config.data.batch_size=64",
            "--config.model.decomposition=dvd_gan_fp_stronger",
            *extra,
        )
        rows.append(Row(f"table1opt_stronger_{name}", "table1opt", args, "v3:2x2", name))
    return rows


def _trivd_rows() -> list[Row]:
    """Global batch 512 (the paper: 32 to 512 TPU v3 cores). The compile needs host memory in
    proportion to the device count, and libtpu 0.0.48 cannot compile for the 256-chip
    v6e:16x16 without a real host ("Failed to find host bounds for accelerator type"), so v6e
    rows use the 64-chip v6e:8x8 (8 clips per chip), as ch 120 does on v5p."""
    rows = []
    topologies = {
        "medium": ("v3:8x8", "v5p:4x4x8", "v6e:8x8"),
        "large": ("v3:8x8", "v5p:4x4x4", "v6e:8x8"),
    }
    for variant, ch in (("medium", 48), ("large", 120)):
        for topology in topologies[variant]:
            rows.append(
                Row(
                    f"trivd_{variant}_{topology.replace(':', '_')}",
                    "trivd",
                    ("train-trivd", f"--config=kinetics600:{variant}"),
                    topology,
                    f"ch {ch}",
                )
            )
    for name, extra in (
        ("bf16", ("--config.model.dtype=bfloat16",)),
        ("remat", ("--config.model.remat=True",)),
        ("bf16_remat", ("--config.model.dtype=bfloat16", "--config.model.remat=True")),
    ):
        rows.append(
            Row(
                f"trivd_large_v3_8x8_{name}",
                "trivd",
                ("train-trivd", "--config=kinetics600:large", *extra),
                "v3:8x8",
                f"ch 120, {name.replace('_', ' + ')}",
            )
        )
    return rows


def _videotx_rows() -> list[Row]:
    rows = []
    base = ("train-videotx", "--config=bair")
    large = ("train-videotx", "--config=kinetics600:large")
    bf16 = ("--config.model.dtype=bfloat16",)
    remat = ("--config.model.remat=True",)
    for topology in ("v3:4x4", "v5p:4x4x4", "v6e:8x8", "h100:8", "h200:8"):
        key = topology.replace(":", "_")
        rows.append(Row(f"vt_base_{key}", "videotx", base, topology, "base, f32"))
        if topology in ("v3:4x4", "h100:8"):
            rows.append(Row(f"vt_base_{key}_bf16", "videotx", base + bf16, topology, "base, bf16"))
    # Batch 256 as accumulated micro-batches (`num_microbatches`): on the H100 host 4 of 64
    # with remat did not fit (84.6 GiB), so 8 of 32 too; the H200 (141 GB): 4 of 64.
    accumulated = {
        "h100:8": (("accum4_remat", remat, 4), ("accum8_remat", remat, 8)),
        "h200:8": (("accum4", (), 4),),
    }
    for topology in ("v3:8x8", "v5p:4x4x8", "v6e:16x16", "h100:8", "h200:8"):
        key = topology.replace(":", "_")
        rows.append(Row(f"vt_large_{key}", "videotx", large, topology, "large, f32"))
        if topology in ("v3:8x8", "h100:8"):
            rows.append(
                Row(f"vt_large_{key}_bf16", "videotx", large + bf16, topology, "large, bf16")
            )
        if topology in ("v3:8x8", "h100:8"):
            for name, extra in (("remat", remat), ("bf16_remat", bf16 + remat)):
                label = f"large, {name.replace('_', ' + ')}"
                rows.append(
                    Row(f"vt_large_{key}_{name}", "videotx", large + extra, topology, label)
                )
        if topology == "h100:8":  # what an 8-GPU host holds without gradient accumulation
            small = large + remat + ("--config.batch_size=64",)
            rows.append(
                Row(f"vt_large_{key}_b64_remat", "videotx", small, topology, "large, remat")
            )
        for name, extra, k in accumulated.get(topology, ()):
            options = "remat, " if extra else ""
            rows.append(
                Row(
                    f"vt_large_{key}_{name}",
                    "videotx",
                    large + extra + (f"--config.num_microbatches={k}",),
                    topology,
                    f"large, {options}{k} micro-batches",
                )
            )
    return rows


ROWS = _table1_rows() + _trivd_rows() + _videotx_rows()


def _path(row: Row, folder: str | None = None) -> str:
    return os.path.join(folder or RESULTS, f"{row.id}.json")


def command_line(row: Row) -> list[str]:
    return [
        "python3",
        "-m",
        "uv",
        "run",
        "--group",
        "aot",
        *row.command,
        "--compile_only",
        f"--topology={row.topology}",
        f"--json={_path(row)}",
    ]


def _host_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def run(only: set[str] | None) -> int:
    os.makedirs(RESULTS, exist_ok=True)
    for row in ROWS:
        if (only and row.id not in only) or os.path.exists(_path(row)):
            continue
        cmd = command_line(row)
        print(f"[{time.strftime('%H:%M:%S')}] {row.id}: {' '.join(cmd)}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        tail = [ln for ln in proc.stdout.splitlines() if ln.strip()][-18:]
        print("\n".join(tail), flush=True)
        if not os.path.exists(_path(row)):
            # The command failed before it could report (a crash, an exit 2): keep why.
            err = " | ".join([ln for ln in proc.stderr.splitlines() if ln.strip()][-5:])
            if proc.returncode in (137, -9):  # SIGKILL: the kernel's OOM killer on this host
                # Largest resident set of any child so far (this row's when run alone).
                rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
                err = (
                    f"killed by SIGKILL after {seconds:.0f} s at {rss:.1f} GiB host memory "
                    f"(this host: {_host_gib():.1f} GiB): the compile ran out of host memory"
                )
            with open(_path(row), "w") as f:
                json.dump({"error": err[-1500:], "exit": proc.returncode, "compiled": False}, f)
        print(f"  exit {proc.returncode}, {seconds:.0f} s wall", flush=True)
    return 0


def _load(row: Row, folder: str | None = None) -> dict | None:
    path = _path(row, folder)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _gb(n) -> str:
    return "" if n is None else f"{n / GIB:.2f}"


def _result(r: dict) -> str:
    if r.get("out_of_memory"):
        # The TPU compiler refuses a program over HBM: say by how much, in its own words.
        match = re.search(
            r"temporaries \(([\d.]+G)\) exceeds available HBM \(([\d.]+G)\)",
            str(r.get("error", "")),
        )
        detail = f": temporaries {match[1]} > {match[2]} (compiler)" if match else ""
        return f"**does not fit**{detail}"
    if not r.get("compiled"):
        what = "not compiled" if r.get("exit") in (137, -9) else "compile error"
        return f"{what}: " + str(r.get("error", ""))[:140].replace("|", "/")
    return "fits" if r.get("fits") else "**does not fit**"


def table() -> str:
    lines = []
    cmd = lambda row: "`" + " ".join(row.command[1:]) + "`"
    lines.append("### TrIVD-GAN-FP, the paper's Table 1 memory column beside ours\n")
    lines.append(
        "| decomposition | paper GB | ours: peak GiB per core | temporaries | args | "
        "compile s | before 57cce45: peak GiB | flags |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for row in (r for r in ROWS if r.table == "table1"):
        r, before = _load(row), _load(row, BEFORE)
        key = row.id.removeprefix("table1_")
        old = _gb(before.get("peak_bytes")) if before and before.get("compiled") else ""
        if r is None:
            lines.append(
                f"| {TABLE1_NAMES[key]} | {TABLE1_PAPER_GB[key]} | not re-measured yet | | | | "
                f"{old} | {cmd(row)} |"
            )
            continue
        lines.append(
            f"| {TABLE1_NAMES[key]} | {TABLE1_PAPER_GB[key]} | "
            f"{_gb(r.get('peak_bytes')) if r.get('compiled') else _result(r)} | "
            f"{_gb(r.get('temp_bytes'))} | {_gb(r.get('argument_bytes'))} | "
            f"{r.get('compile_seconds', '')} | {old} | {cmd(row)} |"
        )
    lines.append(
        "\nThe same step (DVD-GAN-FP_stronger) with the memory options "
        "(`model.dtype`, `model.remat`):\n"
    )
    lines.append("| options | peak GiB per core | temporaries | compile s | flags |")
    lines.append("|---|---|---|---|---|")
    for row in (r for r in ROWS if r.table == "table1opt"):
        r = _load(row)
        if r is None:
            lines.append(f"| {row.note.replace('_', ' + ')} | not run yet | | | {cmd(row)} |")
            continue
        peak = _gb(r.get("peak_bytes")) if r.get("compiled") else _result(r)
        lines.append(
            f"| {row.note.replace('_', ' + ')} | {peak} | {_gb(r.get('temp_bytes'))} | "
            f"{r.get('compile_seconds', '')} | {cmd(row)} |"
        )
    for name, title in (("trivd", "TrIVD-GAN-FP"), ("videotx", "Video Transformer")):
        lines.append(f"\n### {title}: the papers' runs\n")
        lines.append(
            "| run | target | devices | global batch | per device | peak GiB | HBM GiB | "
            "params+opt GiB | temporaries GiB | result | FLOPs/step | compile s | command |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for row in (r for r in ROWS if r.table == name):
            r, marker = _load(row), ""
            if r is None:
                r = _load(row, BEFORE)
                marker = "" if r is None else " (before 57cce45)"
            if r is None:
                lines.append(
                    f"| {row.note} | {row.topology} | | | | | | | | not run yet | | | {cmd(row)} |"
                )
                continue
            flops = r.get("flops")
            lines.append(
                f"| {row.note} | {row.topology} | {r.get('devices', '')} | "
                f"{r.get('global_batch', '')} | {r.get('per_device_batch', '')} | "
                f"{_gb(r.get('peak_bytes')) if r.get('peak_bytes') else '-'} | "
                f"{_gb(r.get('hbm_bytes'))} | "
                f"{_gb(r.get('state_bytes'))} | "
                f"{_gb(r.get('temp_bytes')) if r.get('temp_bytes') else '-'} | {_result(r)}{marker} | "
                f"{'' if flops is None else f'{flops:.2e}'} | {r.get('compile_seconds', '')} | "
                f"{cmd(row)} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("run", "table", "list"))
    parser.add_argument("--only", default="", help="comma-separated row ids")
    args = parser.parse_args(argv)
    if args.action == "list":
        for row in ROWS:
            print(row.id, " ".join(command_line(row)))
        return 0
    if args.action == "run":
        return run(set(filter(None, args.only.split(","))) or None)
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())

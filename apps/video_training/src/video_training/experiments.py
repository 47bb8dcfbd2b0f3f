"""Helpers of the apps' experiment scripts (`apps/*/experiments/`): runs as logged subprocesses,
results merged across invocations."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Sequence

WALL = "experiment wall: {:.0f} s"  # the line run_logged appends ...
WALL_PATTERN = r"experiment wall: (\d+) s"  # ... and logged_wall reads


def run_logged(cmd: Sequence[str], log_path: str, name: str) -> int:
    """Runs `cmd` with stdout and stderr into `log_path`, appending its wall time; returns the
    exit status. Prints a start line with `name`."""
    print(f"[{time.strftime('%H:%M:%S')}] start {name}", flush=True)
    t0 = time.time()
    with open(log_path, "w") as log:
        rc = subprocess.run(list(cmd), check=False, stdout=log, stderr=subprocess.STDOUT).returncode
        log.write(WALL.format(time.time() - t0) + "\n")
    return rc


def read_text(path: str) -> str:
    """The file's text, or "" when it does not exist."""
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


def logged_wall(text: str) -> int | None:
    """The wall seconds `run_logged` appended to a log (the last run), or None."""
    found = re.findall(WALL_PATTERN, text)
    return int(found[-1]) if found else None


def metrics_at(workdir: str, step: int) -> dict:
    """Every metric logged at `step` in `workdir/metrics.jsonl`, merged ({} when none)."""
    found: dict = {}
    for line in read_text(os.path.join(workdir, "metrics.jsonl")).splitlines():
        row = json.loads(line)
        if row.get("step") == step:
            found.update(row)
    return found


def merge_results(path: str, rows: list[dict], key: str = "run") -> list[dict]:
    """Adds `rows` to the JSON list in `path` (replacing rows with the same `key`), writes it
    back and returns every row, sorted by `key`: seeds run in separate invocations share one
    table."""
    old = json.loads(read_text(path) or "[]")
    merged = {r[key]: r for r in old}
    merged.update({r[key]: r for r in rows})
    out = sorted(merged.values(), key=lambda r: r[key])
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, path)
    return out


def names_arg(text: str, allowed, flag: str) -> list[str]:
    """A comma-separated subset of `allowed` from flag `flag`; SystemExit naming it otherwise."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or any(n not in allowed for n in names):
        raise SystemExit(
            f"{flag}: expected a comma-separated subset of {sorted(allowed)}, got {text!r}"
        )
    return names


def seeds_arg(text: str) -> list[int]:
    """`--seeds`: comma-separated ints, at least one."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise SystemExit(f"--seeds: expected comma-separated ints, got {text!r}")
    return seeds


def run_plan(run_one, plan: Sequence[tuple], jobs: int, results_path: str) -> list[dict]:
    """Calls `run_one(*entry)` for each plan entry, `jobs` at a time (each starts a process),
    merges the rows into `results_path` (`merge_results`) and returns every row there."""
    import concurrent.futures

    if jobs < 1:
        raise SystemExit(f"--jobs: expected an integer >= 1, got {jobs}")
    os.makedirs(os.path.dirname(results_path) or ".", exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        rows = list(pool.map(lambda entry: run_one(*entry), plan))
    return merge_results(results_path, rows)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table of `rows` (cells formatted with `str`) under `header`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)

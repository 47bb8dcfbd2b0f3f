"""The kernel packages install standalone: wheel built by uv, clean venv, declared deps only."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> a smoke program that must run in a venv holding only the wheel and its deps.
SMOKE = {
    "subscale": (
        "import jax.numpy as jnp, subscale\n"
        "x = jnp.arange(2 * 4 * 4 * 4 * 3).reshape(2, 4, 4, 4, 3)\n"
        "s = subscale.to_slices(x, (2, 2, 2))\n"
        "assert (subscale.from_slices(s, (2, 2, 2)) == x).all()\n"
    ),
    "block-attention": (
        "import importlib.util, jax, block_attention as ba\n"
        "assert importlib.util.find_spec('flax') is None, 'flax must stay an optional extra'\n"
        "q = jax.random.normal(jax.random.key(0), (1, 2, 4, 4, 2, 8))\n"
        "o = ba.block_attention(q, q, q, (2, 2, 2), implementation='xla')\n"
        "assert o.shape == q.shape\n"
    ),
}


def _uv() -> list[str]:
    exe = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if exe:
        return [exe]
    return [sys.executable, "-m", "uv"]


@pytest.mark.parametrize("package", sorted(SMOKE))
def test_wheel_installs_and_imports_in_clean_venv(package, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    run = lambda *cmd: subprocess.run(
        cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=600
    )
    run(*_uv(), "build", "--package", package, "--wheel", "--out-dir", str(tmp_path / "dist"))
    wheels = list((tmp_path / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp_path / "venv"
    run(*_uv(), "venv", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    run(*_uv(), "pip", "install", "--python", str(python), str(wheels[0]))
    # The venv must not see the workspace: only the wheel and what it declares.
    freeze = run(*_uv(), "pip", "freeze", "--python", str(python)).stdout
    assert "flax" not in freeze and "tensorflow" not in freeze, freeze
    result = subprocess.run(
        [str(python), "-c", SMOKE[package]],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]

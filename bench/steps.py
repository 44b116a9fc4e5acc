"""Run one benchmark step in a child process, so the peak RSS it reports is that step's own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_step(child: str, step: str, args: dict, env: dict) -> dict:
    """Run ``child`` (Python source) with ``step`` and JSON ``args``; return the JSON it prints last."""
    proc = subprocess.run([sys.executable, "-c", child, step, json.dumps(args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{step} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])

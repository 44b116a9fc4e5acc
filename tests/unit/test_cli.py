"""``python -m fraudlens`` in a real subprocess: exit codes, messages, JSON outputs, light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


HEADER = "transaction_id,transaction_datetime,account_id,transaction_amount,fraudulent_activity"
GOOD = (HEADER + "\nc1,2025-01-03 10:00:00,a1,10,1\nc2,2025-01-04 10:00:00,a2,20,0\n"
        "c3,2025-01-05 10:00:00,a3,30,no\n")


def renamed(prefix: str) -> str:
    """GOOD with other transaction ids."""
    return GOOD.replace("\nc", "\n" + prefix)


def assert_bad_input(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def as_utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def test_ingest_then_datasets_json(run_cli, write):
    done = run_cli("ingest", write("good.csv", GOOD + "c4,never,a4,1,0\n"), "--dataset", "d")
    assert done.returncode == 0, done.stderr
    assert "read 4 rows, loaded 3, rejected 1" in done.stdout
    listing = run_cli("datasets", "--json")
    assert listing.returncode == 0, listing.stderr
    (entry,) = json.loads(listing.stdout)
    assert {k: entry[k] for k in ("name", "rows", "rejected", "frauds")} == \
        {"name": "d", "rows": 3, "rejected": 1, "frauds": 1}
    assert as_utc(entry["first"]) == datetime(2025, 1, 3, 15)
    assert as_utc(entry["last"]) == datetime(2025, 1, 5, 15)
    text = run_cli("datasets")
    assert text.returncode == 0 and "d" in text.stdout


def test_ingest_json_and_append_replace(run_cli, write):
    assert run_cli("ingest", write("a.csv", GOOD), "--dataset", "d").returncode == 0
    again = run_cli("ingest", write("b.csv", renamed("e")), "--dataset", "d")
    assert_bad_input(again, "already exists", "--append")
    done = run_cli("ingest", write("b.csv", renamed("e")), "--dataset", "d", "--append", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["dataset"], out["version"], out["loaded"], out["rejected"]) == ("d", 2, 3, 0)
    done = run_cli("ingest", write("c.csv", renamed("f")), "--dataset", "d", "--replace",
                   "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 3
    (entry,) = json.loads(run_cli("datasets", "--json").stdout)
    assert entry["rows"] == 3


def test_strict_failure_names_file_line_and_column(run_cli, write):
    path = write("strict.csv", GOOD + "c9,2025-01-06 10:00:00,a9,lots,0\n")
    done = run_cli("ingest", path, "--dataset", "d", "--strict")
    assert_bad_input(done, "strict.csv", "line 5", "transaction_amount")
    assert json.loads(run_cli("datasets", "--json").stdout) == []


@pytest.mark.parametrize("name,content,needles", [
    ("empty.csv", "", ["empty.csv", "empty"]),
    ("header.csv", HEADER + "\n", ["header.csv"]),
    ("cols.csv", "a,b\n1,2\n", ["cols.csv", "transaction_amount"]),
])
def test_bad_files_exit_2(run_cli, write, name, content, needles):
    done = run_cli("ingest", write(name, content), "--dataset", "d")
    assert_bad_input(done, *needles)
    assert json.loads(run_cli("datasets", "--json").stdout) == []


def test_missing_file_and_bad_names(run_cli, write, tmp_path):
    assert_bad_input(run_cli("ingest", tmp_path / "ghost.csv", "--dataset", "d"), "ghost.csv")
    assert_bad_input(run_cli("ingest", write("a.csv", GOOD), "--dataset", "../up"), "'../up'")
    assert_bad_input(run_cli("ingest", write("a.csv", GOOD), "--dataset", "models"), "'models'")


def test_bad_mapping_exits_2(run_cli, write, tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text("{oops")
    assert_bad_input(run_cli("ingest", write("a.csv", GOOD), "--dataset", "d", "--mapping", mapping),
                     "map.json")
    mapping.write_text(json.dumps({"transaction_id": "nope"}))
    assert_bad_input(run_cli("ingest", write("a.csv", GOOD), "--dataset", "d", "--mapping", mapping),
                     "nope")


def test_pseudonymise_without_key_exits_2(run_cli, write):
    assert_bad_input(run_cli("ingest", write("a.csv", GOOD), "--dataset", "d", "--pseudonymise"),
                     "FRAUDLENS_PSEUDONYMISATION_KEY")


def test_profile_json(run_cli, write):
    assert run_cli("ingest", write("a.csv", GOOD), "--dataset", "d").returncode == 0
    done = run_cli("profile", "--dataset", "d", "--json")
    assert done.returncode == 0, done.stderr
    profile = json.loads(done.stdout)
    assert profile["dataset"] == "d" and profile["rows"] == 3
    amount = [c for c in profile["columns"] if c["column"] == "transaction_amount"][0]
    assert (amount["nulls"], float(amount["min"]), float(amount["max"])) == (0, 10.0, 30.0)
    text = run_cli("profile", "--dataset", "d")
    assert text.returncode == 0 and "transaction_amount" in text.stdout
    assert_bad_input(run_cli("profile", "--dataset", "ghost"), "ghost")


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["ingest"],
    ["ingest", "x.csv"],
    ["ingest", "x.csv", "--dataset", "d", "--append", "--replace"],
    ["datasets", "--bogus"],
    ["profile"],
])
def test_usage_errors_exit_2(run_cli, args):
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip()


def test_datasets_with_no_data(run_cli):
    done = run_cli("datasets", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == []


HEAVY = ("xgboost", "shap", "streamlit")


@pytest.mark.parametrize("command", ["datasets", "profile", "ingest"])
def test_light_commands_do_not_import_heavy_libraries(home, write, cli_env, command):
    path = write("a.csv", GOOD)
    argv = {
        "datasets": ["datasets", "--json"],
        "profile": ["profile", "--dataset", "d", "--json"],
        "ingest": ["ingest", str(path), "--dataset", "e"],
    }[command]
    if command == "profile":
        from fraudlens import ingest

        ingest.ingest(path, "d", cfg=home)
    code = (
        "import sys, json\n"
        "from fraudlens.cli import main\n"
        f"rc = main({argv!r})\n"
        f"print('MODULES=' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=cli_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("MODULES=")][0]
    assert json.loads(line.removeprefix("MODULES=")) == []

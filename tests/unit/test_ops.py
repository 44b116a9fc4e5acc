"""The operational store: schema migration, transactions, concurrent writers and killed writers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fraudlens import audit, ops
from fraudlens.errors import FraudLensError

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent("""
    import sys, time
    from fraudlens import audit, ops
    home, name, pause_at, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for i in range(count):
        with ops.transaction(home) as con:
            audit.append(con, name, "test.write", {"i": i, "writer": name})
            con.execute("INSERT INTO labels (dataset, transaction_id, label, source, user, at) "
                        "VALUES ('tx', ?, 1, 'test', ?, ?)", (f"{name}-{i}", name, ops.now()))
            if i == pause_at:
                print("inside", i, flush=True)
                time.sleep(120)
        print("committed", i, flush=True)
""")


def _writer(home: Path, name: str, pause_at: int = -1, count: int = 1_000_000) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(home), name, str(pause_at), str(count)],
                            stdout=subprocess.PIPE, text=True, env=env)


def _labels(home: Path) -> set[str]:
    return {r[0] for r in ops.rows(home, "SELECT transaction_id FROM labels")}


def test_a_new_store_is_migrated_and_uses_wal_with_full_sync(tmp_path):
    con = ops.connect(tmp_path)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == ops.SCHEMA_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert con.execute("PRAGMA busy_timeout").fetchone()[0] == ops.BUSY_TIMEOUT_MS
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()
    assert {"alerts", "dispositions", "labels", "proposals", "audit", "alert_runs"} <= tables
    assert (tmp_path / "ops.sqlite").is_file()


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    ops.connect(tmp_path).close()
    raw = sqlite3.connect(tmp_path / "ops.sqlite")
    raw.execute(f"PRAGMA user_version = {ops.SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(ops.OpsError, match="newer than this FraudLens"):
        ops.connect(tmp_path)


def test_a_failed_transaction_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with ops.transaction(tmp_path) as con:
            audit.append(con, "ana", "test.write", {"i": 1})
            raise RuntimeError("boom")
    assert audit.count(cfg=_cfg(tmp_path)) == 0
    audit.record("ana", "test.write", {"i": 2}, cfg=_cfg(tmp_path))
    assert [e.detail["i"] for e in audit.entries(cfg=_cfg(tmp_path))] == [2]
    assert audit.verify(cfg=_cfg(tmp_path)).ok


def test_check_constraints_reject_unknown_statuses(tmp_path):
    with pytest.raises(sqlite3.IntegrityError):
        with ops.transaction(tmp_path) as con:
            con.execute("INSERT INTO proposals (kind, model, version, payload, comment, proposed_by, proposed_at) "
                        "VALUES ('threshold', 'm', 1, '{}', 'c', 'u', 'now')")


def test_a_writer_killed_inside_a_transaction_loses_only_that_transaction(tmp_path):
    proc = _writer(tmp_path, "w", pause_at=20)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.split())
            if line.startswith("inside"):
                break
        assert lines[-1] == ["inside", "20"]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert ops.integrity_check(tmp_path) == ["ok"]
    check = audit.verify(cfg=_cfg(tmp_path))
    assert check.ok, check
    assert check.entries == 20
    assert _labels(tmp_path) == {f"w-{i}" for i in range(20)}
    # The lock died with the writer: the next write goes through at once.
    audit.record("ana", "test.write", {"after": True}, cfg=_cfg(tmp_path))
    assert audit.verify(cfg=_cfg(tmp_path)).entries == 21


def test_a_writer_killed_at_a_random_moment_keeps_every_reported_commit(tmp_path):
    proc = _writer(tmp_path, "w")
    committed = -1
    try:
        for line in proc.stdout:
            committed = int(line.split()[1])
            if committed >= 30:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert ops.integrity_check(tmp_path) == ["ok"]
    check = audit.verify(cfg=_cfg(tmp_path))
    assert check.ok, check
    kept = _labels(tmp_path)
    assert {f"w-{i}" for i in range(committed + 1)} <= kept
    # A label and its audit entry are one transaction: both or neither.
    assert len(kept) == check.entries


def test_concurrent_writers_keep_one_unbroken_chain(tmp_path):
    ops.connect(tmp_path).close()
    procs = [_writer(tmp_path, name, count=30) for name in ("a", "b", "c")]
    for proc in procs:
        proc.stdout.read()
        assert proc.wait(timeout=120) == 0
    check = audit.verify(cfg=_cfg(tmp_path))
    assert check.ok, check
    assert check.entries == 90
    assert len(_labels(tmp_path)) == 90


def test_frames_and_arrow_read_small_tables(tmp_path):
    audit.record("ana", "test.write", {"i": 1}, cfg=_cfg(tmp_path))
    frame = ops.frame(tmp_path, "SELECT seq, user FROM audit")
    table = ops.arrow(tmp_path, "SELECT seq, user FROM audit")
    assert frame.to_dict("records") == [{"seq": 1, "user": "ana"}]
    assert table.column_names == ["seq", "user"] and table.num_rows == 1


def test_append_outside_a_transaction_is_refused(tmp_path):
    con = ops.connect(tmp_path)
    try:
        with pytest.raises(FraudLensError, match="open ops transaction"):
            audit.append(con, "ana", "test.write", {})
    finally:
        con.close()


def _cfg(home: Path):
    from opsdata import settings_for

    return settings_for(home)

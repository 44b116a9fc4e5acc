"""Data-quality profile: per column nulls, distinct values, range and top values; rejects by reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudlens import datasets, ingest, quality

SOURCE = (
    "transaction_id,transaction_datetime,account_id,transaction_amount,channel,city,fraudulent_activity\n"
    "q1,2025-01-03 10:00:00,a1,5,pos,Lima,0\n"
    "q2,2025-01-03 11:00:00,a1,7.5,online,Lima,1\n"
    "q3,2025-01-04 12:00:00,a2,1,pos,,0\n"
    "q4,2025-01-05 13:00:00,a3,250,pos,Cusco,\n"
    "q5,bad date,a3,1,pos,Cusco,0\n"
    "q6,2025-01-05 13:00:00,a3,-9,pos,Cusco,0\n"
)


@pytest.fixture
def profiled(home, write):
    ingest.ingest(write("q.csv", SOURCE), "d", cfg=home)
    return home


def col(profile: dict, name: str) -> dict:
    (entry,) = [c for c in profile["columns"] if c["column"] == name]
    return entry


def test_profile_columns(profiled):
    profile = quality.load("d", cfg=profiled)
    assert (profile["dataset"], profile["version"], profile["rows"], profile["rejected"]) == ("d", 1, 4, 2)
    amount = col(profile, "transaction_amount")
    assert (amount["nulls"], float(amount["min"]), float(amount["max"])) == (0, 1.0, 250.0)
    assert amount["distinct"] == 4
    city = col(profile, "merchant_location")
    assert city["nulls"] == 1 and city["null_share"] == pytest.approx(0.25)
    assert city["top"] == ["Lima", "Cusco"]  # most frequent first
    channel = col(profile, "channel")
    assert channel["top"] == ["pos", "online"]
    assert channel["distinct"] == 2
    account = col(profile, "account_id")
    assert account["top"][0] == "a1"
    label = col(profile, "fraudulent_activity")
    assert label["nulls"] == 1
    assert label["top"] == ["false", "true"]
    when = col(profile, "transaction_datetime")
    assert when["min"].replace("T", " ").startswith("2025-01-03 15:00:00")
    assert when["max"].replace("T", " ").startswith("2025-01-05 18:00:00")
    # A canonical column the source did not have: present False, all null.
    ip = col(profile, "ip_address")
    assert ip["present"] is False and ip["nulls"] == 4
    assert col(profile, "channel")["present"] is True


def test_profile_rejects_by_reason_cumulate(profiled, write):
    profile = quality.load("d", cfg=profiled)
    reasons = profile["rejects_by_reason"]
    assert sum(reasons.values()) == 2
    assert any("bad date" in r for r in reasons) and any("negative" in r for r in reasons)
    ingest.ingest(write("more.csv", SOURCE.replace("q", "r")), "d", mode="append", cfg=profiled)
    profile = quality.load("d", cfg=profiled)
    assert sum(profile["rejects_by_reason"].values()) == 4 == profile["rejected"]
    assert profile["rows"] == 8 and profile["version"] == 2
    assert [i["loaded"] for i in profile["ingests"]] == [4, 4]


def test_profile_is_stored_and_recomputed_when_stale(profiled, write):
    path = Path(profiled.home) / "d" / quality.PROFILE
    stored = json.loads(path.read_text())
    assert stored["version"] == 1
    # Someone wrote an outdated profile (e.g. a crash between manifest swap and profiling).
    ingest.ingest(write("more.csv", SOURCE.replace("q", "r")), "d", mode="append", cfg=profiled)
    stale = dict(stored, rows=-1)
    path.write_text(json.dumps(stale))
    fresh = quality.load("d", cfg=profiled)
    assert fresh["version"] == datasets.read(profiled.home, "d").version == 2
    assert fresh["rows"] == 8
    assert col(fresh, "channel")["top"] == ["pos", "online"]
    assert col(fresh, "transaction_amount")["nulls"] == 0
    assert json.loads(path.read_text())["version"] == 2


@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_missing_or_broken_profile_is_recomputed(profiled, damage):
    path = Path(profiled.home) / "d" / quality.PROFILE
    if damage == "delete":
        path.unlink()
    else:
        path.write_text("{broken")
    profile = quality.load("d", cfg=profiled)
    assert profile["rows"] == 4 and path.is_file()


def test_profile_of_a_current_version_is_not_recomputed(profiled):
    path = Path(profiled.home) / "d" / quality.PROFILE
    marked = json.loads(path.read_text())
    marked["marker"] = "kept"
    path.write_text(json.dumps(marked))
    assert quality.load("d", cfg=profiled)["marker"] == "kept"

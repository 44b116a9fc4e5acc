"""The audit hash chain (tamper detection through raw SQLite), four eyes, and evidence packs."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import zipfile
from xml.etree import ElementTree

import pandas as pd
import pytest

import opsdata
from fraudlens import audit, evidence, governance, operating, ops, registry
from fraudlens.governance import GovernanceError


@pytest.fixture
def cfg(tmp_path):
    return opsdata.settings_for(tmp_path / "home")


@pytest.fixture
def model_home(tmp_path_factory, tmp_path, monkeypatch):
    """A private copy of the prepared dataset and model."""
    cfg = opsdata.fresh_home(tmp_path_factory, tmp_path / "home")
    monkeypatch.setenv("FRAUDLENS_HOME", str(cfg.home))
    return cfg


def _fill(cfg, n: int = 6) -> None:
    for i in range(n):
        audit.record(f"user{i % 2}", "test.step", {"i": i, "note": "ñandú"}, cfg=cfg)


def _raw(cfg) -> sqlite3.Connection:
    return sqlite3.connect(cfg.home / "ops.sqlite", isolation_level=None)


# ---------------------------------------------------------------------------------------------
# The chain


def test_entries_chain_from_genesis_and_verify(cfg):
    _fill(cfg)
    found = audit.entries(cfg=cfg, newest_first=False)
    assert [e.seq for e in found] == [1, 2, 3, 4, 5, 6]
    assert found[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(found, found[1:]))
    assert found[2].hash == audit.entry_hash(found[1].hash, 3, found[2].at, "user0", "test.step",
                                             {"i": 2, "note": "ñandú"})
    check = audit.verify(cfg=cfg)
    assert check.ok and check.entries == 6 and check.first_bad_seq is None
    assert (check.head_seq, check.head_hash) == audit.head(cfg)
    assert [e.seq for e in audit.entries(limit=2, offset=1, cfg=cfg)] == [5, 4]


def test_an_empty_log_verifies(cfg):
    check = audit.verify(cfg=cfg)
    assert check.ok and check.entries == 0 and check.head_hash == audit.GENESIS


@pytest.mark.parametrize("column, value", [("detail", '{"i":3,"note":"changed"}'), ("user", "mallory"),
                                           ("action", "test.other"), ("at", "2020-01-01T00:00:00+00:00")])
def test_an_edited_entry_is_named(cfg, column, value):
    _fill(cfg)
    with _raw(cfg) as raw:
        raw.execute(f"UPDATE audit SET {column} = ? WHERE seq = 4", (value,))
    check = audit.verify(cfg=cfg)
    assert not check.ok and check.first_bad_seq == 4 and "edited" in check.reason


def test_an_edit_with_recomputed_hash_is_caught_by_the_next_entry(cfg):
    _fill(cfg)
    with _raw(cfg) as raw:
        seq, at, user, action, prev = raw.execute(
            "SELECT seq, at, user, action, prev_hash FROM audit WHERE seq = 3").fetchone()
        forged = audit.entry_hash(prev, seq, at, user, action, {"i": 99})
        raw.execute("UPDATE audit SET detail = ?, hash = ? WHERE seq = 3", ('{"i":99}', forged))
    check = audit.verify(cfg=cfg)
    assert not check.ok and check.first_bad_seq == 4


def test_a_deleted_entry_is_named(cfg):
    _fill(cfg)
    with _raw(cfg) as raw:
        raw.execute("DELETE FROM audit WHERE seq = 3")
    check = audit.verify(cfg=cfg)
    assert not check.ok and check.first_bad_seq == 3 and "missing" in check.reason


def test_a_deleted_and_renumbered_entry_is_named(cfg):
    _fill(cfg)
    with _raw(cfg) as raw:
        raw.execute("DELETE FROM audit WHERE seq = 3")
        for seq in (4, 5, 6):
            raw.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq - 1, seq))
        raw.execute("UPDATE sqlite_sequence SET seq = 5 WHERE name = 'audit'")
    check = audit.verify(cfg=cfg)
    assert not check.ok and check.first_bad_seq == 3


def test_a_deleted_tail_is_detected(cfg):
    _fill(cfg)
    kept_head = audit.head(cfg)
    with _raw(cfg) as raw:
        raw.execute("DELETE FROM audit WHERE seq >= 5")
    check = audit.verify(cfg=cfg)
    assert not check.ok and check.first_bad_seq == 5 and "deleted tail" in check.reason
    with _raw(cfg) as raw:  # someone also rewinds the counter: the kept head still tells
        raw.execute("UPDATE sqlite_sequence SET seq = 4 WHERE name = 'audit'")
    assert audit.verify(cfg=cfg).ok
    check = audit.verify(expected_head=kept_head, cfg=cfg)
    assert not check.ok and check.first_bad_seq == 5


def test_reordered_entries_are_named(cfg):
    _fill(cfg)
    with _raw(cfg) as raw:
        raw.execute("UPDATE audit SET seq = -4 WHERE seq = 4")
        raw.execute("UPDATE audit SET seq = 4 WHERE seq = 5")
        raw.execute("UPDATE audit SET seq = 5 WHERE seq = -4")
    check = audit.verify(cfg=cfg)
    assert not check.ok and check.first_bad_seq == 4


def test_a_rewritten_chain_differs_from_the_kept_head(cfg):
    _fill(cfg)
    kept = audit.head(cfg)
    rows = ops.rows(cfg.home, "SELECT seq, at, user, action, detail FROM audit ORDER BY seq")
    with _raw(cfg) as raw:  # an attacker with the file rewrites entry 2 and every hash after it
        prev = audit.GENESIS
        for seq, at, user, action, detail in rows:
            detail = '{"i":42}' if seq == 2 else detail
            digest = audit.entry_hash(prev, seq, at, user, action, json.loads(detail))
            raw.execute("UPDATE audit SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                        (detail, prev, digest, seq))
            prev = digest
    assert audit.verify(cfg=cfg).ok
    assert audit.verify(expected_head=kept, cfg=cfg).first_bad_seq == kept[0]


def test_bad_arguments_are_refused(cfg):
    with pytest.raises(Exception, match="'user' parameter"):
        audit.record(" ", "test.step", {}, cfg=cfg)
    with pytest.raises(Exception, match="'action' parameter"):
        audit.record("ana", "DROP TABLE", {}, cfg=cfg)
    with pytest.raises(Exception, match="'detail' parameter"):
        audit.record("ana", "test.step", ["x"], cfg=cfg)


def test_exports_escape_formulas_and_carry_the_verification(cfg, tmp_path):
    audit.record("=HYPERLINK(\"x\")", "export", {"what": "@SUM(A1)"}, cfg=cfg)
    text = audit.export("csv", cfg).decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["user"].startswith("'=") and row["seq"] == "1"
    lines = audit.export("json", cfg).decode("utf-8").splitlines()
    assert json.loads(lines[0])["detail"] == {"what": "@SUM(A1)"}
    assert json.loads(lines[-1])["verification"]["ok"] is True
    out = audit.write_export(tmp_path / "log.json", "ana", cfg)
    assert out.is_file()
    assert audit.entries(limit=1, cfg=cfg)[0].action == audit.EXPORT


def test_cli_audit_verify_exits_0_then_2(run_cli, home):
    assert run_cli("audit", "verify").returncode == 0
    for i in range(3):
        audit.record("ana", "test.step", {"i": i})
    ok = run_cli("audit", "verify", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["entries"] == 3
    with sqlite3.connect(home.home / "ops.sqlite") as raw:
        raw.execute("UPDATE audit SET user = 'x' WHERE seq = 2")
    bad = run_cli("audit", "verify")
    assert bad.returncode == 2 and "entry 2" in bad.stderr and "Traceback" not in bad.stderr
    listed = run_cli("audit", "list", "--json", "--limit", "2")
    assert listed.returncode == 0 and [e["seq"] for e in json.loads(listed.stdout)] == [3, 2]


# ---------------------------------------------------------------------------------------------
# Four eyes


def _propose_threshold(cfg, user="ana", threshold=0.7):
    return governance.propose("operating_point", opsdata.MODEL, 1, {"threshold": threshold},
                              "fewer alerts for the night shift", user, cfg)


def test_nobody_approves_their_own_proposal(model_home):
    cfg = model_home
    proposal = _propose_threshold(cfg, user="Ana ")
    with pytest.raises(GovernanceError, match="four eyes"):
        governance.approve(proposal.id, "ana", "analyst", cfg=cfg)
    assert governance.get(proposal.id, cfg).status == "pending"
    assert operating.live_point(cfg.home, f"{opsdata.MODEL}@1") is None


@pytest.mark.parametrize("role", ["viewer", "executive", "supervisor", "", None])
def test_only_analysts_and_admins_approve(model_home, role):
    proposal = _propose_threshold(model_home)
    with pytest.raises(GovernanceError, match="role"):
        governance.approve(proposal.id, "luis", role, cfg=model_home)
    assert governance.get(proposal.id, model_home).status == "pending"


def test_an_approved_operating_point_goes_live_and_is_audited(model_home):
    cfg = model_home
    proposal = _propose_threshold(cfg, threshold=0.7)
    assert proposal.payload["point"]["threshold"] == 0.7 and proposal.payload["previous_threshold"] is None
    done = governance.approve(proposal.id, "luis", "admin", "checked the curve", cfg)
    assert done.status == "approved" and done.decided_by == "luis"
    live = operating.live_point(cfg.home, f"{opsdata.MODEL}@1")
    assert live.point.threshold == 0.7 and f"proposal #{proposal.id}" in live.comment
    assert live.user == f"{proposal.proposed_by}, approved by luis"  # both people are credited
    actions = [e.action for e in audit.related("proposal_id", proposal.id, cfg)]
    assert actions == [audit.PROPOSAL, audit.APPROVAL, audit.OPERATING_POINT]
    with pytest.raises(GovernanceError, match="already approved"):
        governance.approve(proposal.id, "rosa", "analyst", cfg=cfg)
    second = _propose_threshold(cfg, user="rosa", threshold=0.4)
    assert second.payload["previous_threshold"] == 0.7
    assert audit.verify(cfg=cfg).ok


def test_the_audit_names_what_an_approval_replaced_when_another_came_first(model_home):
    """Two proposals made against the same live threshold, approved one after the other: the
    second's audit entry says it replaced the first's threshold, and what it was proposed against."""
    cfg = model_home
    first = governance.approve(_propose_threshold(cfg, threshold=0.6).id, "luis", "admin", cfg=cfg)
    lower, higher = _propose_threshold(cfg, threshold=0.5), _propose_threshold(cfg, user="rosa", threshold=0.7)
    assert lower.payload["previous_threshold"] == higher.payload["previous_threshold"] == 0.6
    governance.approve(higher.id, "luis", "admin", cfg=cfg)
    governance.approve(lower.id, "luis", "admin", cfg=cfg)

    def change(proposal):
        (entry,) = [e for e in audit.related("proposal_id", proposal.id, cfg) if e.action == audit.OPERATING_POINT]
        return entry.detail

    assert change(first)["previous_threshold"] is None and "previous_threshold_when_proposed" not in change(first)
    assert change(higher)["previous_threshold"] == 0.6 and "previous_threshold_when_proposed" not in change(higher)
    assert change(lower)["previous_threshold"] == 0.7
    assert change(lower)["previous_threshold_when_proposed"] == 0.6
    assert operating.live_point(cfg.home, f"{opsdata.MODEL}@1").point.threshold == 0.5
    assert audit.verify(cfg=cfg).ok


def test_a_rejected_proposal_changes_nothing(model_home):
    cfg = model_home
    proposal = _propose_threshold(cfg)
    done = governance.reject(proposal.id, "luis", "analyst", "too many missed frauds", cfg)
    assert done.status == "rejected"
    assert operating.live_point(cfg.home, f"{opsdata.MODEL}@1") is None
    with pytest.raises(GovernanceError, match="already rejected"):
        governance.approve(proposal.id, "rosa", "analyst", cfg=cfg)
    assert [e.action for e in audit.related("proposal_id", proposal.id, cfg)] == [audit.PROPOSAL, audit.REJECTION]


def test_a_champion_change_needs_approval_too(model_home):
    from fraudlens.train import train

    cfg = model_home
    second = train(opsdata.DATASET, "logistic", name=opsdata.MODEL, cfg=cfg, seed=1)
    registry.set_champion(opsdata.MODEL, 1, "lead", "first", home=cfg.home)
    proposal = governance.propose("champion", opsdata.MODEL, second.version, {}, "logistic is simpler", "ana", cfg)
    assert registry.champion(opsdata.MODEL, cfg.home) == 1
    assert proposal.payload["previous_champion"] == 1
    governance.approve(proposal.id, "luis", "analyst", cfg=cfg)
    assert registry.champion(opsdata.MODEL, cfg.home) == second.version
    assert registry.history(opsdata.MODEL, cfg.home)[-1]["user"] == "luis"
    pack = zipfile.ZipFile(io.BytesIO(evidence.evidence_pack(proposal.id, cfg)))
    metrics = pd.read_csv(pack.open(f"evidence_{proposal.id}/metrics.csv"), encoding="utf-8-sig")
    assert list(metrics["when"]) == ["before", "after", "change"]


def test_proposals_are_checked(model_home):
    with pytest.raises(GovernanceError, match="threshold"):
        governance.propose("operating_point", opsdata.MODEL, 1, {"threshold": 1.5}, "x", "ana", model_home)
    with pytest.raises(GovernanceError, match="kind"):
        governance.propose("delete_everything", opsdata.MODEL, 1, {}, "x", "ana", model_home)
    with pytest.raises(GovernanceError, match="comment"):
        governance.propose("operating_point", opsdata.MODEL, 1, {"threshold": 0.5}, " ", "ana", model_home)
    assert governance.proposals(cfg=model_home).empty


def test_the_evidence_pack_holds_what_an_inspector_asks_for(model_home):
    cfg = model_home
    first = _propose_threshold(cfg, threshold=0.5)
    governance.approve(first.id, "luis", "analyst", cfg=cfg)
    proposal = _propose_threshold(cfg, threshold=0.8)
    governance.approve(proposal.id, "luis", "analyst", "fine", cfg)
    data = evidence.evidence_pack(proposal.id, cfg)
    pack = zipfile.ZipFile(io.BytesIO(data))
    base = f"evidence_{proposal.id}/"
    names = {n.removeprefix(base) for n in pack.namelist()}
    assert names == {"README.md", "proposal.json", "MODEL_CARD.md", "metrics.csv", "pr_curve.svg", "pr_curve.csv",
                     "approvals.csv", "audit.csv", "audit_verification.json"}
    metrics = pd.read_csv(pack.open(base + "metrics.csv"), encoding="utf-8-sig").set_index("when")
    assert metrics.loc["before", "threshold"] == 0.5 and metrics.loc["after", "threshold"] == 0.8
    assert metrics.loc["after", "alerts_per_day"] <= metrics.loc["before", "alerts_per_day"]
    assert metrics.loc["change", "alerts"] == metrics.loc["after", "alerts"] - metrics.loc["before", "alerts"]
    svg = ElementTree.fromstring(pack.read(base + "pr_curve.svg"))
    assert svg.tag.endswith("svg") and svg.findall(".//{http://www.w3.org/2000/svg}polyline")
    assert len(svg.findall(".//{http://www.w3.org/2000/svg}circle")) >= 2
    assert b"<script" not in pack.read(base + "pr_curve.svg")
    curve = pd.read_csv(pack.open(base + "pr_curve.csv"), encoding="utf-8-sig").set_index("threshold")
    for when in ("before", "after"):  # each marked point lies on the drawn curve
        row = curve.loc[metrics.loc[when, "threshold"]]
        assert (row["recall"], row["precision"]) == pytest.approx(
            (metrics.loc[when, "recall"], metrics.loc[when, "precision"]))
    approvals = pd.read_csv(pack.open(base + "approvals.csv"), encoding="utf-8-sig")
    assert approvals.loc[0, "proposed_by"] == "ana" and approvals.loc[0, "decided_by"] == "luis"
    trail = pd.read_csv(pack.open(base + "audit.csv"), encoding="utf-8-sig")
    assert list(trail["action"]) == [audit.PROPOSAL, audit.APPROVAL, audit.OPERATING_POINT]
    assert json.loads(pack.read(base + "audit_verification.json"))["ok"] is True
    readme = pack.read(base + "README.md").decode("utf-8")
    assert "luis" in readme and "fewer alerts for the night shift" in readme
    assert pack.read(base + "MODEL_CARD.md").decode("utf-8") == registry.model_card(opsdata.MODEL, 1, cfg.home)
    assert evidence.evidence_pack(proposal.id, cfg) == data  # the same pack every time


def test_the_svg_escapes_its_labels():
    curve = pd.DataFrame({"recall": [0.0, 0.5, 1.0], "precision": [1.0, 0.6, 0.1]})
    svg = evidence.pr_curve_svg(curve, [("<b>&", 0.5, 0.6, "red")], title="a < b")
    root = ElementTree.fromstring(svg)
    assert "a < b" in "".join(root.itertext()) and "<b>&" in "".join(root.itertext())


def test_four_eyes_compares_people_not_roles(model_home):
    proposal = _propose_threshold(model_home, user="Ana (analyst, local mode)")
    with pytest.raises(GovernanceError, match="cannot approve"):
        governance.approve(proposal.id, "ana (admin, local mode)", "admin", cfg=model_home)
    assert governance.approve(proposal.id, "Luis (admin, local mode)", "admin", cfg=model_home).status == "approved"

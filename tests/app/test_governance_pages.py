"""The Approvals and Audit pages under AppTest on a small demo: who may open them, four eyes
from the page, the audit log's check after tampering, paging, and the downloads it records.

Proposals are made through the library as one person and decided on the page as another (the
local-mode name box, ``user_name``, sets who is acting).
"""

from __future__ import annotations

import io
import sqlite3
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from appdemo import module_demo, ok, private_copy

from fraudlens import audit, governance, operating, registry
from fraudlens.config import DEMO_DATASET
from fraudlens.demo import DEMO_MODEL
from fraudlens.train import train
from fraudlens.ui import auth, governance_view

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
DEMO_ROWS = 5000
REF = f"{DEMO_MODEL}@1"
ALICE = "alice (analyst, local mode)"
PAGES = {"pages/approvals.py": "Approvals", "pages/audit.py": "Audit log"}
ALLOWED = {"executive": set(), "supervisor": set(), "analyst": {"pages/approvals.py"},
           "admin": {"pages/approvals.py", "pages/audit.py"}}


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """One demo (dataset + champion model) for the module; each test works on a copy."""
    return module_demo(tmp_path_factory, "governance_pages", DEMO_ROWS)


@pytest.fixture
def home(home, demo_home, monkeypatch) -> Path:
    return private_copy(demo_home, home, monkeypatch, DEMO_ROWS)


def open_page(page: str, role: str = "analyst", name: str = "") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["role"] = role
    at.session_state["user_name"] = name
    ok(at.run())
    return ok(at.switch_page(f"pages/{page}.py").run())


def frame_with(at: AppTest, column: str):
    """The first table on the page that has ``column`` (pending: "change"; decided: "decided by")."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column")


def button(at: AppTest, key: str):
    return at.button(key=key)


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def propose(threshold: float = 0.7, user: str = ALICE) -> governance.Proposal:
    return governance.propose("operating_point", DEMO_MODEL, 1, {"threshold": threshold}, "why", user)


def live_threshold(home: Path) -> float:
    return operating.live_point(home, REF).point.threshold


# ---------------------------------------------------------------------------------------------
# Who may open the pages


def test_only_analysts_and_admins_open_approvals_and_only_admins_audit(home):
    at = open_page("home")
    for role in auth.ROLES:  # one app: the role picker changes between runs
        at.session_state["role"] = role
        ok(at.run())
        for page, title in PAGES.items():
            if page in ALLOWED[role]:
                ok(at.switch_page(page).run())
                assert title in texts(at.title), (role, page)
                assert not at.error, [e.value for e in at.error]
            else:
                with pytest.raises(ValueError, match="Could not find a navigation page"):
                    at.switch_page(page)
        ok(at.switch_page("pages/home.py").run())


def test_an_analyst_running_the_audit_page_file_directly_gets_home_instead(home):
    ok(AppTest.from_file(str(APP), default_timeout=120).run())
    at = AppTest.from_file(str(ROOT / "pages/audit.py"), default_timeout=60)
    at.session_state["role"] = "analyst"
    ok(at.run())
    assert "Audit log" not in texts(at.title) and "FraudLens" in texts(at.title)


# ---------------------------------------------------------------------------------------------
# Approvals


def test_no_proposal_says_where_to_make_one(home):
    at = open_page("approvals")
    assert any("No proposals waiting" in i.value and "Thresholds page" in i.value for i in at.info)
    assert any("No decided proposals yet" in c.value for c in at.caption)


def test_the_proposer_cannot_approve_their_own_proposal(home):
    before = live_threshold(home)
    p = propose()
    at = open_page("approvals", name="alice")
    table = frame_with(at, "change")
    assert table["id"].tolist() == [p.id] and table["proposed by"].tolist() == [ALICE]
    previous = p.payload["previous_point"]
    assert table["change"][0] == f"threshold {previous['threshold']:.4f} → 0.7000"
    assert table["recall"][0] == f"{previous['recall']:.1%} → {p.payload['point']['recall']:.1%}"
    shown = at.table[0].value
    assert shown.loc["Threshold", "proposed"] == "0.7000"
    assert shown.loc["Recall", "proposed"] == f"{p.payload['point']['recall']:.1%}"
    assert button(at, "approvals_approve").disabled
    assert any("second person" in i.value and "local mode" in i.value for i in at.info)
    # A page drawn for someone else, clicked after the name became the proposer's again: the
    # library refuses and the page says why.
    at.session_state["user_name"] = "bob"
    ok(at.run())
    assert not button(at, "approvals_approve").disabled
    at.session_state["user_name"] = "Alice "
    ok(button(at, "approvals_approve").click().run())
    assert any("cannot approve it" in e.value and "four eyes" in e.value for e in at.error), texts(at.error)
    assert governance.get(p.id).status == "pending" and live_threshold(home) == before
    assert audit.entries(limit=1)[0].action == audit.PROPOSAL


def test_a_second_person_approves_and_the_change_goes_live(home):
    p = propose()
    at = open_page("approvals", name="Bob")
    assert not button(at, "approvals_approve").disabled
    at.text_area(key="approvals_comment").input("curve checked")
    ok(button(at, "approvals_approve").click().run())
    assert any(f"#{p.id} approved by Bob (analyst, local mode)" in s.value for s in at.success)
    assert live_threshold(home) == 0.7
    assert governance.get(p.id).decided_by == "Bob (analyst, local mode)"
    trail = audit.related("proposal_id", p.id)
    assert [e.action for e in trail] == [audit.PROPOSAL, audit.APPROVAL, audit.OPERATING_POINT]
    assert trail[1].user == "Bob (analyst, local mode)" and trail[1].detail["comment"] == "curve checked"
    assert any("No proposals waiting" in i.value for i in at.info)
    decided = frame_with(at, "decided by")
    assert decided["status"].tolist() == ["approved"] and decided["decided by"].tolist() == [trail[1].user]


def test_the_same_name_in_another_role_is_still_the_same_person(home):
    p = propose()
    at = open_page("approvals", role="admin", name="alice")
    assert at.button(key="approvals_approve").disabled
    with pytest.raises(governance.GovernanceError, match="cannot approve"):
        governance.approve(p.id, "alice (admin, local mode)", "admin")
    assert governance.get(p.id).status == "pending"


def test_an_approval_needs_a_name_in_local_mode(home):
    propose()
    at = open_page("approvals", role="admin", name="")
    assert at.button(key="approvals_approve").disabled
    assert any("Type your name in the sidebar" in i.value for i in at.info)


def test_a_champion_change_shows_both_versions_and_goes_live_when_approved(home):
    second = train(DEMO_DATASET, "logistic", name=DEMO_MODEL, seed=1)
    p = governance.propose("champion", DEMO_MODEL, second.version, {}, "simpler model", ALICE)
    at = open_page("approvals", name="bob")
    assert frame_with(at, "change")["change"].tolist() == [f"champion v1 → v{second.version}"]
    shown = at.table[0].value
    assert shown.loc["Version"].tolist() == ["v1", f"v{second.version}"]
    assert shown.loc["Kind"].tolist() == ["XGBoost", "Logistic regression"]
    ok(button(at, "approvals_approve").click().run())
    assert registry.champion(DEMO_MODEL) == second.version
    assert [e.action for e in audit.related("proposal_id", p.id)] == [audit.PROPOSAL, audit.APPROVAL,
                                                                      audit.CHAMPION]


def test_rejecting_needs_a_comment_and_changes_nothing(home):
    before = live_threshold(home)
    p = propose()
    at = open_page("approvals", name="bob")
    ok(button(at, "approvals_reject").click().run())
    assert any("Write a comment" in e.value for e in at.error)
    assert governance.get(p.id).status == "pending"
    at.text_area(key="approvals_comment").input("too many missed frauds")
    ok(button(at, "approvals_reject").click().run())
    done = governance.get(p.id)
    assert done.status == "rejected" and done.decision_comment == "too many missed frauds"
    assert live_threshold(home) == before
    assert [e.action for e in audit.related("proposal_id", p.id)] == [audit.PROPOSAL, audit.REJECTION]
    assert not at.get("download_button")  # a rejected change has no evidence pack to offer


def test_an_approved_change_has_an_evidence_pack_whose_download_is_recorded(home):
    p = propose()
    governance.approve(p.id, "bob", "analyst", "fine")
    at = open_page("approvals", role="admin", name="carla")
    assert not at.get("download_button")  # nothing is built until a proposal is chosen
    at.selectbox(key="approvals_evidence").select(p.id)
    ok(at.run())
    download = at.download_button(key="approvals_evidence_download")
    assert download.label == "Download evidence pack (zip)"
    ok(download.click().run())
    entry = audit.entries(limit=1)[0]
    assert entry.action == audit.EXPORT and entry.user == "carla (admin, local mode)"
    assert entry.detail == {"what": "evidence_pack", "proposal_id": p.id,
                            "file": governance_view.evidence_file_name(p.id)}
    # The button's bytes come from this call (AppTest keeps no file store to read them from).
    pack = zipfile.ZipFile(io.BytesIO(governance_view.evidence_pack(home, p.id)))
    assert pack.testzip() is None
    assert {n.split("/", 1)[1] for n in pack.namelist()} == {
        "README.md", "proposal.json", "MODEL_CARD.md", "metrics.csv", "pr_curve.svg", "pr_curve.csv",
        "approvals.csv", "audit.csv", "audit_verification.json"}
    assert "carla" not in pack.read(f"evidence_{p.id}/README.md").decode() and "bob" in \
        pack.read(f"evidence_{p.id}/README.md").decode()


# ---------------------------------------------------------------------------------------------
# Audit


def test_the_audit_page_shows_the_chain_intact_then_the_broken_entry(home):
    for i in range(3):
        audit.record("ana", "test.step", {"i": i})
    at = open_page("audit", role="admin")
    assert any(f"{audit.count()} entries, chain intact" in s.value and audit.head()[1] in s.value for s in at.success)
    with sqlite3.connect(home / "ops.sqlite") as raw:  # someone edits entry 2 behind the app's back
        raw.execute("UPDATE audit SET user = 'mallory' WHERE seq = 2")
    ok(at.run())
    assert not at.success
    assert any("broken at entry 2" in e.value and "edited" in e.value for e in at.error), texts(at.error)


def test_the_log_is_paged_newest_first_and_filtered(home):
    start = audit.count()  # the demo's own entries (ingest, training, ...)
    for i in range(60):
        audit.record("ana", "test.step", {"i": i, "note": "ñandú"})
    last = audit.record("ana", audit.EXPORT, {"what": "x"}).seq
    at = open_page("audit", role="admin")
    table = frame_with(at, "detail")
    assert len(table) == governance_view.PAGE_SIZE and table["seq"].tolist()[:2] == [last, last - 1]
    assert '"note": "ñandú"' in table["detail"][1]
    assert any(f"Entries 1–50 of {last}" in c.value for c in at.caption)
    assert button(at, "audit_prev").disabled and not button(at, "audit_next").disabled
    ok(button(at, "audit_next").click().run())
    assert frame_with(at, "detail")["seq"].tolist() == list(range(last - 50, 0, -1))
    assert button(at, "audit_next").disabled and start > 0
    assert '"note": "ñandú"' in at.code[0].value
    at.selectbox(key="audit_action").select("Exports and downloads")
    ok(at.run())
    assert frame_with(at, "detail")["seq"].tolist() == [last]


def test_exporting_the_log_is_recorded(home):
    audit.record("ana", "test.step", {"i": 1})
    at = open_page("audit", role="admin", name="root")
    ok(at.download_button(key="audit_export_json").click().run())
    entry = audit.entries(limit=1)[0]
    assert entry.action == audit.EXPORT and entry.user == "root (admin, local mode)"
    assert entry.detail["what"] == "audit_log" and entry.detail["format"] == "json"
    lines = governance_view.log_export(home, "json").decode().splitlines()
    assert len(lines) == audit.count() + 1 and '"verification"' in lines[-1]

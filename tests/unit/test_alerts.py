"""Alerts: raising at a threshold, the queue, dispositions as labels, the below-the-line estimate."""

from __future__ import annotations

import json
import threading
import zipfile
from datetime import date

import numpy as np
import pandas as pd
import pytest

import opsdata
from fraudlens import alerts, audit, governance, operating, ops
from fraudlens.errors import FraudLensError
from fraudlens.explain import explain_transaction
from fraudlens.ingest import ingest
from fraudlens.scoring import score_dataset
from fraudlens.store import get_store

DATASET, MODEL = opsdata.DATASET, opsdata.MODEL


@pytest.fixture
def cfg(tmp_path_factory, tmp_path, monkeypatch):
    cfg = opsdata.fresh_home(tmp_path_factory, tmp_path / "home")
    monkeypatch.setenv("FRAUDLENS_HOME", str(cfg.home))
    monkeypatch.setenv("FRAUDLENS_TIMEZONE", cfg.timezone)
    return cfg


@pytest.fixture
def scores(cfg) -> pd.DataFrame:
    """Every transaction's score, straight from the scoring module, with its truth and amount."""
    path = score_dataset(DATASET, f"{MODEL}@1", cfg.home / "truth_scores.parquet", cfg=cfg).path
    store = get_store(cfg)
    return store.query(
        "truth",
        f"SELECT s.transaction_id, s.score, t.transaction_amount AS amount, t.transaction_datetime, "
        f"t.fraud_scenario IS NOT NULL AS truth FROM read_parquet($p) s JOIN {store.table(DATASET)} t "
        "USING (transaction_id)", {"p": str(path)})


def _all(cfg, **filters) -> pd.DataFrame:
    pages, offset = [], 0
    while True:
        page = alerts.queue(limit=1000, offset=offset, cfg=cfg, **filters)
        pages.append(page.rows)
        offset += len(page.rows)
        if not page.truncated:
            return pd.concat(pages, ignore_index=True)


def _oracle(cfg, scores: pd.DataFrame, ids_frame: pd.DataFrame) -> None:
    truth = ids_frame.merge(scores[["transaction_id", "truth"]], on="transaction_id")
    for value, disposition in ((True, "confirmed_fraud"), (False, "false_positive")):
        ids = truth.loc[truth["truth"] == value, "id"].tolist()
        if ids:
            alerts.bulk_dispose(ids, disposition, "oracle", "oracle", cfg=cfg)


# ---------------------------------------------------------------------------------------------
# Raising


def test_alerts_are_exactly_the_transactions_at_or_above_the_threshold(cfg, scores):
    t = 0.6
    result = alerts.raise_alerts(DATASET, MODEL, threshold=t, sample_rate=0.0, explain_top=0, user="ana", cfg=cfg)
    raised = _all(cfg)
    expected = scores[scores["score"] >= t]
    assert result.above == result.alerts_created == len(expected) == len(raised) > 20
    assert set(raised["transaction_id"]) == set(expected["transaction_id"])
    merged = raised.merge(expected, on="transaction_id")
    assert np.allclose(merged["score_x"], merged["score_y"])
    assert np.allclose(merged["expected_loss"], merged["score_x"] * merged["amount_x"])
    assert result.scored == len(scores) and result.below == len(scores) - len(expected)
    assert (raised["status"] == "open").all() and (raised["source"] == "threshold").all()
    entry = audit.entries(limit=1, cfg=cfg)[0]
    assert entry.action == audit.ALERTS_RAISED and entry.detail["alerts"] == len(expected)
    again = alerts.raise_alerts(DATASET, MODEL, threshold=t, sample_rate=0.0, explain_top=0, cfg=cfg)
    assert again.alerts_created == 0 and again.skipped_existing == len(expected)


def test_two_runs_started_together_count_each_alert_once(cfg, scores, monkeypatch):
    """Two sessions raise alerts at once: the second waits for the first, so it skips the first's
    alerts instead of counting them again as its own."""
    t = 0.6
    together = threading.Barrier(2, timeout=3)
    real_store_run = alerts._store_run

    def store_when_both_scanned(*args, **kwargs):
        try:
            together.wait()  # both reach here only if the scans overlap
        except threading.BrokenBarrierError:
            pass
        return real_store_run(*args, **kwargs)

    monkeypatch.setattr(alerts, "_store_run", store_when_both_scanned)
    results = []
    runs = [threading.Thread(target=lambda: results.append(alerts.raise_alerts(
        DATASET, MODEL, threshold=t, sample_rate=0.0, explain_top=0, user="ana", cfg=cfg))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    expected = int((scores["score"] >= t).sum())
    assert sorted(r.above for r in results) == [0, expected]
    assert sorted(r.skipped_existing for r in results) == [0, expected]
    counted = ops.rows(cfg.home, "SELECT sum(above) FROM alert_runs WHERE dataset = ?", [DATASET])[0][0]
    assert counted == expected == len(_all(cfg))


def test_the_live_operating_point_is_the_default_threshold(cfg):
    with pytest.raises(FraudLensError, match="no live operating point"):
        alerts.raise_alerts(DATASET, MODEL, cfg=cfg)
    proposal = governance.propose("operating_point", MODEL, 1, {"threshold": 0.8}, "start", "ana", cfg)
    governance.approve(proposal.id, "luis", "analyst", cfg=cfg)
    result = alerts.raise_alerts(DATASET, MODEL, explain_top=0, sample_rate=0.0, cfg=cfg)
    assert result.threshold == 0.8 and (alerts.queue(cfg=cfg).rows["score"] >= 0.8).all()


def test_a_date_range_and_a_new_batch_limit_what_is_scored(cfg, tmp_path):
    from fraudlens.ingest import ingest
    from fraudlens.synth import generate

    result = alerts.raise_alerts(DATASET, MODEL, threshold=0.5, date_from=date(2025, 2, 1),
                                 date_until=date(2025, 2, 7), sample_rate=0.0, explain_top=0, cfg=cfg)
    raised = _all(cfg)
    days = pd.to_datetime(raised["transaction_datetime"]).dt.date
    assert result.scope == "from 2025-02-01 until 2025-02-07"
    assert days.min() >= date(2025, 2, 1) and days.max() <= date(2025, 2, 7)
    src = tmp_path / "batch.parquet"
    generate(src, 2_000, seed=99, days=3, fraud_rate=0.05, start=date(2025, 3, 3))
    batch = pd.read_parquet(src)
    batch["transaction_id"] = "B" + batch["transaction_id"].astype(str)
    batch.to_parquet(src)
    ingest(src, DATASET, mode="append", cfg=cfg)
    result = alerts.raise_alerts(DATASET, MODEL, threshold=0.5, ingest_id=alerts.latest_ingest(DATASET, cfg),
                                 sample_rate=0.05, seed=1, explain_top=0, cfg=cfg)
    assert result.scored == 2_000
    new = _all(cfg, status=None)
    new = new[new["run_id"] == result.run_id]
    assert len(new) == result.alerts_created + result.sampled > 0
    assert new["transaction_id"].str.startswith("B").all()
    with pytest.raises(FraudLensError, match="no live batch"):
        alerts.raise_alerts(DATASET, MODEL, threshold=0.5, ingest_id="nope", cfg=cfg)


def test_runs_that_scored_the_same_period_are_named_by_the_estimate(cfg, tmp_path):
    from fraudlens.ingest import ingest
    from fraudlens.synth import generate

    def raise_on(**scope):
        return alerts.raise_alerts(DATASET, MODEL, threshold=0.5, sample_rate=0.05, seed=1, explain_top=0,
                                   cfg=cfg, **scope).run_id

    weeks = [raise_on(date_from=date(2025, 2, 1), date_until=date(2025, 2, 7)),
             raise_on(date_from=date(2025, 2, 8), date_until=date(2025, 2, 14))]
    batches = []
    for name in ("A", "B"):  # two batches of the same days, raised one by one
        src = tmp_path / f"{name}.parquet"
        generate(src, 500, seed=len(batches), days=3, start=date(2025, 3, 3))
        batch = pd.read_parquet(src)
        batch.assign(transaction_id=name + batch["transaction_id"].astype(str)).to_parquet(src)
        ingest(src, DATASET, mode="append", cfg=cfg)
        batches.append(raise_on(ingest_id=alerts.latest_ingest(DATASET, cfg)))
    apart = alerts.estimate_missed(DATASET, MODEL, cfg=cfg)
    assert apart.runs == 4 and apart.overlaps == () and "same period" not in apart.note
    everything = raise_on()  # all that has no alert yet: the periods of every run before
    again = alerts.estimate_missed(DATASET, MODEL, cfg=cfg)
    assert again.overlaps == tuple((run, everything) for run in weeks + batches)
    assert again.note.startswith(f"Alert runs #{weeks[0]} and #{everything}, #{weeks[1]} and #{everything}, ")
    assert "scored the same period" in again.note and "overstated" in again.note


def test_a_run_after_the_last_scored_transaction_scores_only_new_ones(cfg, scores, tmp_path):
    from fraudlens.ingest import ingest
    from fraudlens.synth import generate

    assert alerts.last_scored(DATASET, MODEL, cfg) is None
    first = alerts.raise_alerts(DATASET, MODEL, threshold=0.5, sample_rate=0.05, seed=1, explain_top=0, cfg=cfg)
    newest = alerts.last_scored(DATASET, MODEL, cfg)
    assert newest == scores["transaction_datetime"].max().to_pydatetime()
    with pytest.raises(alerts.NothingNew, match="nothing new to score"):
        alerts.raise_alerts(DATASET, MODEL, threshold=0.5, after=newest, explain_top=0, cfg=cfg)
    assert len(alerts.runs(DATASET, cfg)) == 1  # nothing recorded
    src = tmp_path / "later.parquet"
    generate(src, 700, seed=3, days=2, start=date(2025, 3, 10))
    later = pd.read_parquet(src)
    later.assign(transaction_id="L" + later["transaction_id"].astype(str)).to_parquet(src)
    ingest(src, DATASET, mode="append", cfg=cfg)
    second = alerts.raise_alerts(DATASET, MODEL, threshold=0.5, after=newest, sample_rate=0.05, seed=1,
                                 explain_top=0, cfg=cfg)
    assert second.scored == 700 and second.skipped_existing == 0 and second.scope.startswith("after ")
    estimate = alerts.estimate_missed(DATASET, MODEL, cfg=cfg)
    assert estimate.overlaps == () and estimate.below == first.below + second.below
    assert alerts.last_scored(DATASET, MODEL, cfg) > newest


def test_eager_reasons_match_the_explanation_and_the_rest_are_explained_on_open(cfg):
    alerts.raise_alerts(DATASET, MODEL, threshold=0.3, explain_top=5, sample_rate=0.0, cfg=cfg)
    rows = alerts.queue(limit=1000, cfg=cfg).rows
    explained = rows[rows["reasons"].notna()]
    assert len(explained) == 5 and list(explained.index) == [0, 1, 2, 3, 4]  # the top of the queue
    first = explained.iloc[0]
    assert first["reasons"] == explain_transaction(DATASET, f"{MODEL}@1", first["transaction_id"], cfg=cfg).reasons
    later = rows[rows["reasons"].isna()].iloc[0]
    reasons = alerts.alert_reasons(int(later["id"]), cfg)
    assert reasons and reasons == explain_transaction(DATASET, f"{MODEL}@1", later["transaction_id"], cfg=cfg).reasons
    assert alerts.get_alert(int(later["id"]), cfg).reasons == reasons


def test_bad_arguments_are_refused(cfg):
    for kwargs, match in (({"threshold": 1.5}, "'threshold'"), ({"threshold": 0.5, "order": "amount"}, "'order'"),
                          ({"threshold": 0.5, "sample_rate": -0.1}, "'sample_rate'"),
                          ({"threshold": 0.0, "max_alerts": 10}, "more than 10 alerts")):
        with pytest.raises(FraudLensError, match=match):
            alerts.raise_alerts(DATASET, MODEL, explain_top=0, cfg=cfg, **kwargs)
    assert alerts.queue(status=None, cfg=cfg).total == 0


# ---------------------------------------------------------------------------------------------
# The queue


@pytest.fixture
def raised(cfg):
    alerts.raise_alerts(DATASET, MODEL, threshold=0.3, sample_rate=0.01, seed=3, explain_top=0, cfg=cfg)
    return cfg


def test_the_queue_is_ordered_and_paged(raised):
    cfg = raised
    by_loss = _all(cfg, status=None)
    assert (np.diff(by_loss["expected_loss"].to_numpy()) <= 0).all()
    ties = by_loss.groupby("expected_loss")["id"].apply(lambda s: s.is_monotonic_increasing)
    assert ties.all()
    by_score = _all(cfg, status=None, order="score")
    assert (np.diff(by_score["score"].to_numpy()) <= 0).all()
    assert set(by_score["id"]) == set(by_loss["id"])
    page = alerts.queue(limit=7, offset=3, status=None, cfg=cfg)
    assert page.total == len(by_loss) and page.truncated and len(page.rows) == 7
    assert list(page.rows["id"]) == list(by_loss["id"].iloc[3:10])
    last = alerts.queue(limit=7, offset=len(by_loss) - 2, status=None, cfg=cfg)
    assert not last.truncated and len(last.rows) == 2
    sample = _all(cfg, status=None, source="below_the_line")
    assert len(sample) > 0 and (sample["score"] < 0.3).all() and (sample["sample_rate"] == 0.01).all()
    with pytest.raises(FraudLensError, match="'order'"):
        alerts.queue(order="score; DROP TABLE alerts", cfg=cfg)


def test_assignment_and_status_filters(raised):
    cfg = raised
    ids = alerts.queue(limit=4, cfg=cfg).rows["id"].tolist()
    assert alerts.assign(ids[:3], "rosa", "lead", cfg) == 3
    assert set(alerts.queue(assignee="rosa", cfg=cfg).rows["id"]) == set(ids[:3])
    assert ids[3] in set(_all(cfg, unassigned=True)["id"])
    alerts.dispose(ids[0], "confirmed_fraud", "called the customer", "rosa", cfg)
    assert ids[0] not in set(alerts.queue(assignee="rosa", cfg=cfg).rows["id"])
    assert list(alerts.queue(status="confirmed_fraud", cfg=cfg).rows["id"]) == [ids[0]]
    with pytest.raises(FraudLensError, match="no alert"):
        alerts.assign([ids[0], 10**9], "rosa", "lead", cfg)


# ---------------------------------------------------------------------------------------------
# Dispositions become labels


def test_a_disposition_writes_a_label_and_an_audit_entry_in_one_go(raised):
    cfg = raised
    row = alerts.queue(limit=1, cfg=cfg).rows.iloc[0]
    alert = alerts.dispose(int(row["id"]), "false_positive", "known traveller", "rosa", cfg)
    assert alert.status == "false_positive" and alert.dispositions["user"].tolist() == ["rosa"]
    labels = alerts.effective_labels(DATASET, cfg)
    assert labels.to_dict("records")[0] | {"at": None} == {
        "transaction_id": row["transaction_id"], "label": False, "source": "disposition", "user": "rosa", "at": None}
    entry = audit.entries(limit=1, cfg=cfg)[0]
    assert entry.action == audit.ALERT_DISPOSED and entry.detail["alert_id"] == int(row["id"])
    assert entry.detail["label"] is False
    # A final disposition changes only on purpose.
    with pytest.raises(FraudLensError, match="already have a final disposition"):
        alerts.dispose(int(row["id"]), "confirmed_fraud", "customer called back", "rosa", cfg)
    assert alerts.effective_label(DATASET, row["transaction_id"], cfg) is False
    # Changed mind: confirmed fraud, then "needs info" withdraws the label again.
    alerts.dispose(int(row["id"]), "confirmed_fraud", "customer called back", "rosa", cfg, change=True)
    assert alerts.effective_label(DATASET, row["transaction_id"], cfg) is True
    alerts.dispose(int(row["id"]), "needs_info", "conflicting statements", "luis", cfg, change=True)
    assert alerts.effective_labels(DATASET, cfg).empty
    assert len(alerts.get_alert(int(row["id"]), cfg).dispositions) == 3
    assert audit.verify(cfg=cfg).ok


def test_needs_info_on_a_fresh_alert_sets_no_label(raised):
    cfg = raised
    alert_id = int(alerts.queue(limit=1, cfg=cfg).rows["id"].iloc[0])
    alerts.dispose(alert_id, "needs_info", "ask the branch", "rosa", cfg)
    assert ops.rows(cfg.home, "SELECT count(*) FROM labels")[0][0] == 0


def test_bulk_dispose_is_all_or_nothing(raised):
    cfg = raised
    ids = alerts.queue(limit=5, cfg=cfg).rows["id"].tolist()
    with pytest.raises(FraudLensError, match="no alert"):
        alerts.bulk_dispose([*ids, 10**9], "false_positive", "batch", "rosa", cfg)
    with pytest.raises(FraudLensError, match="'disposition'"):
        alerts.bulk_dispose(ids, "fraud", "batch", "rosa", cfg)
    with pytest.raises(FraudLensError, match="'comment'"):
        alerts.bulk_dispose(ids, "false_positive", " ", "rosa", cfg)
    assert alerts.queue(status="false_positive", cfg=cfg).total == 0
    assert alerts.bulk_dispose(ids, "false_positive", "same merchant, refunds", "rosa", cfg) == 5
    assert alerts.queue(status="false_positive", cfg=cfg).total == 5
    assert len(alerts.effective_labels(DATASET, cfg)) == 5


def test_the_labels_overlay_overrides_the_dataset_label_at_query_time(raised):
    cfg = raised
    store = get_store(cfg)
    view = store.table(DATASET)
    unknown = store.query_rows("u", f"SELECT transaction_id FROM {view} WHERE fraudulent_activity IS NULL LIMIT 1")[0][0]
    legit = store.query_rows("l", f"SELECT transaction_id FROM {view} WHERE NOT fraudulent_activity LIMIT 1")[0][0]
    alerts.set_label(DATASET, unknown, True, "chargebacks", source="chargeback", cfg=cfg)
    alerts.set_label(DATASET, legit, True, "chargebacks", source="chargeback", cfg=cfg)
    sql, params = alerts.labels_overlay_sql(store, DATASET, cfg)
    rows = dict(store.query_rows("o", f"SELECT transaction_id, fraudulent_activity FROM ({sql}) "
                                 "WHERE transaction_id IN ($a, $b)", {**params, "a": unknown, "b": legit}))
    assert rows == {unknown: True, legit: True}
    total = store.query_rows("n", f"SELECT count(*), count(fraudulent_activity) FROM ({sql})", params)[0]
    before = store.query_rows("m", f"SELECT count(*), count(fraudulent_activity) FROM {view}")[0]
    assert total == (before[0], before[1] + 1)
    sources = dict(store.query_rows("s", f"SELECT label_source, count(*) FROM ({sql}) GROUP BY ALL", params))
    assert sources["ops"] == 2
    frame = pd.DataFrame({"transaction_id": [unknown, legit, "other"],
                          "fraudulent_activity": pd.array([None, False, False], dtype="boolean")})
    applied = alerts.apply_effective_labels(frame, DATASET, cfg)
    assert applied["fraudulent_activity"].tolist() == [True, True, False]
    assert frame["fraudulent_activity"].tolist()[1] is False  # the input is not changed
    # The Parquet files are untouched.
    assert store.query_rows("d", f"SELECT fraudulent_activity FROM {view} WHERE transaction_id = $t",
                            {"t": legit})[0][0] is False


# ---------------------------------------------------------------------------------------------
# What the threshold misses


def test_wilson_interval_against_known_values():
    low, high = alerts.wilson_interval(10, 100)
    assert low == pytest.approx(0.0552, abs=1e-4) and high == pytest.approx(0.1744, abs=1e-4)
    assert alerts.wilson_interval(0, 0) == (0.0, 1.0)
    assert alerts.wilson_interval(0, 50)[0] == 0.0 and alerts.wilson_interval(50, 50)[1] == 1.0


def test_no_estimate_before_the_sample_is_worked(raised):
    estimate = alerts.estimate_missed(DATASET, MODEL, cfg=raised)
    assert estimate.runs == 1 and estimate.sample_size > 0 and np.isnan(estimate.recall)
    assert "cannot be estimated" in estimate.note


@pytest.mark.slow
def test_the_recall_interval_covers_the_true_recall_in_most_seeds(cfg, scores):
    threshold, rate = 0.9, 0.1
    true_recall = scores.loc[scores["truth"], "score"].ge(threshold).mean()
    assert 0.3 < true_recall < 0.95  # enough fraud on both sides for the test to mean something
    covered, widths, estimates = 0, [], []
    for seed in range(10):
        for suffix in ("", "-wal", "-shm"):
            (cfg.home / f"ops.sqlite{suffix}").unlink(missing_ok=True)
        alerts.raise_alerts(DATASET, MODEL, threshold=threshold, sample_rate=rate, seed=seed, explain_top=0,
                            cfg=cfg)
        _oracle(cfg, scores, _all(cfg, status=None)[["id", "transaction_id"]])
        e = alerts.estimate_missed(DATASET, MODEL, cfg=cfg)
        assert e.resolved_above == e.above and e.sample_resolved == e.sample_size
        assert e.frauds_above == scores[scores["score"] >= threshold]["truth"].sum()
        covered += e.recall_low <= true_recall <= e.recall_high
        widths.append(e.recall_high - e.recall_low)
        estimates.append(e.recall)
    assert covered >= 8, (covered, true_recall, estimates)
    assert np.mean(widths) < 0.35  # informative, not a trivially wide interval
    assert abs(np.mean(estimates) - true_recall) < 0.1


def test_unresolved_alerts_above_widen_the_interval(raised, scores):
    cfg = raised
    everything = _all(cfg, status=None)
    sample = everything[everything["source"] == "below_the_line"]
    _oracle(cfg, scores, sample[["id", "transaction_id"]])
    above = everything[everything["source"] == "threshold"]
    _oracle(cfg, scores, above.iloc[: len(above) // 2][["id", "transaction_id"]])
    e = alerts.estimate_missed(DATASET, MODEL, cfg=cfg)
    assert e.resolved_above == len(above) // 2
    assert e.frauds_above_low <= e.frauds_above <= e.frauds_above_high
    assert e.recall_low <= e.recall <= e.recall_high
    assert "not yet resolved" in e.note


# ---------------------------------------------------------------------------------------------
# Command line


def test_cli_raises_lists_and_disposes(cfg, run_cli, home):
    # run_cli's home is another directory: point it at this test's copy.
    env = {"FRAUDLENS_HOME": str(cfg.home), "FRAUDLENS_USER": "rosa"}
    raised = run_cli("alerts", "raise", "--dataset", DATASET, "--model", MODEL, "--threshold", "0.5",
                     "--explain", "0", "--seed", "1", "--json", **env)
    assert raised.returncode == 0, raised.stderr
    result = json.loads(raised.stdout)
    assert result["alerts_created"] > 0
    listed = run_cli("alerts", "list", "--json", "--limit", "3", **env)
    rows = json.loads(listed.stdout)
    assert listed.returncode == 0 and rows["total"] == result["alerts_created"] + result["sampled"]
    ids = [str(a["id"]) for a in rows["alerts"]]
    disposed = run_cli("alerts", "dispose", *ids, "--disposition", "confirmed_fraud", "--comment", "ok", **env)
    assert disposed.returncode == 0, disposed.stderr
    assert alerts.queue(status="confirmed_fraud", cfg=cfg).total == 3
    assert audit.entries(limit=1, cfg=cfg)[0].user == "rosa"
    again = run_cli("alerts", "dispose", ids[0], "--disposition", "false_positive", "--comment", "oops", **env)
    assert again.returncode == 2 and "final disposition" in again.stderr
    changed = run_cli("alerts", "dispose", ids[0], "--disposition", "false_positive", "--comment", "checked",
                      "--change", **env)
    assert changed.returncode == 0 and alerts.queue(status="confirmed_fraud", cfg=cfg).total == 2
    estimate = run_cli("alerts", "estimate", "--dataset", DATASET, "--model", MODEL, **env)
    assert estimate.returncode == 0 and "estimated recall: not yet" in estimate.stdout
    assert "nan" not in estimate.stdout
    as_json = json.loads(run_cli("alerts", "estimate", "--dataset", DATASET, "--model", MODEL, "--json",
                                 **env).stdout)
    assert as_json["recall"] is None and as_json["above"] == result["alerts_created"]
    bad = run_cli("alerts", "dispose", "999999", "--disposition", "confirmed_fraud", "--comment", "x", **env)
    assert bad.returncode == 2 and "no alert" in bad.stderr and "Traceback" not in bad.stderr
    nolive = run_cli("alerts", "raise", "--dataset", DATASET, "--model", MODEL, **env)
    assert nolive.returncode == 2 and "--threshold" in nolive.stderr


def test_cli_four_eyes_from_proposal_to_evidence(cfg, run_cli, tmp_path):
    env = {"FRAUDLENS_HOME": str(cfg.home)}
    proposed = run_cli("proposals", "propose", "--model", f"{MODEL}@1", "--threshold", "0.6",
                       "--comment", "fits the team", "--user", "rosa", "--json", **env)
    assert proposed.returncode == 0, proposed.stderr
    pid = json.loads(proposed.stdout)["id"]
    pending = json.loads(run_cli("proposals", "list", "--status", "pending", "--json", **env).stdout)
    assert [p["id"] for p in pending] == [pid] and pending[0]["threshold"] == 0.6
    own = run_cli("proposals", "approve", str(pid), "--role", "analyst", "--user", "rosa", **env)
    assert own.returncode == 2 and "cannot approve" in own.stderr and "Traceback" not in own.stderr
    assert operating.live_point(cfg.home, MODEL) is None
    approved = run_cli("proposals", "approve", str(pid), "--role", "admin", "--user", "luis", "--comment", "ok",
                       **env)
    assert approved.returncode == 0, approved.stderr
    assert operating.live_point(cfg.home, MODEL).point.threshold == 0.6
    pack = tmp_path / "evidence.zip"
    written = run_cli("proposals", "evidence", str(pid), "--out", str(pack), "--user", "luis", **env)
    assert written.returncode == 0 and zipfile.ZipFile(pack).testzip() is None
    actions = [e.action for e in audit.entries(limit=4, newest_first=False, cfg=cfg)]
    assert actions == [audit.PROPOSAL, audit.APPROVAL, audit.OPERATING_POINT, audit.EXPORT]
    rejected = run_cli("proposals", "reject", str(pid), "--role", "admin", "--comment", "late", **env)
    assert rejected.returncode == 2 and "already approved" in rejected.stderr


def test_alert_ids_follow_time_then_transaction_id(cfg, tmp_path):
    """Rows of one timestamp whose ids sort against their order in the file get their alert
    ids in transaction id order, as the queue's tie-breaks promise."""
    store = get_store(cfg)
    rows = store.query("rows", f"SELECT * FROM {store.table(DATASET)}")
    rows["transaction_datetime"] = rows["transaction_datetime"].dt.floor("h")  # many rows share an hour
    rows["transaction_id"] = [f"x{len(rows) - i}" for i in range(len(rows))]  # falling: x10 < x9 < x8
    rows.to_parquet(tmp_path / "tied.parquet")
    ingest(tmp_path / "tied.parquet", "tied", cfg=cfg)
    alerts.raise_alerts("tied", MODEL, threshold=0.3, sample_rate=0.05, seed=1, explain_top=0, cfg=cfg)
    made = _all(cfg, status=None, dataset="tied").sort_values("id")
    assert made["transaction_datetime"].duplicated().sum() > 10
    for _source, part in made.groupby("source"):
        keys = list(zip(part["transaction_datetime"], part["transaction_id"]))
        assert keys == sorted(keys)

"""Approvals: four eyes on the live operating point and the champion.

A change proposed on the Thresholds or Models page waits here until a second person with the
analyst or admin role approves or rejects it. Decided proposals stay listed, and each approved
one has an evidence pack (zip) to download; the download is recorded in the audit log.
"""

from __future__ import annotations

import streamlit as st

from fraudlens.errors import FraudLensError
from fraudlens.governance import APPROVER_ROLES
from fraudlens.ui import auth, governance_view as view, layout

PICK = "approvals_pick"
COMMENT = "approvals_comment"
FLASH = "approvals_flash"
EVIDENCE = "approvals_evidence"
COLUMNS = {"id": st.column_config.NumberColumn(width="small"), "change": st.column_config.TextColumn(width="medium"),
           "comment": st.column_config.TextColumn(width="medium")}


def decide(home, proposal_id: int, approving: bool) -> None:
    """Button callback: approve or reject, and leave the outcome for the next draw."""
    comment = str(st.session_state.get(COMMENT) or "").strip()
    if not approving and not comment:
        st.session_state[FLASH] = ("error", "Write a comment first: say why you reject this proposal.")
        return
    try:
        done = (view.approve if approving else view.reject)(home, proposal_id, comment)
    except FraudLensError as exc:
        st.session_state[FLASH] = ("error", str(exc))
        return
    st.session_state[COMMENT] = ""
    st.session_state[FLASH] = ("success", f"Proposal #{done.id} {done.status} by {done.decided_by}."
                               + (" The change is live." if approving else " Nothing changed."))


def record_download(home, proposal_id: int) -> None:
    """Download button callback: the pack was taken, so the audit log says who took it."""
    view.record(home, {"what": "evidence_pack", "proposal_id": proposal_id,
                       "file": view.evidence_file_name(proposal_id)})


def draw_flash() -> None:
    flash = st.session_state.pop(FLASH, None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])


def draw_details(home, p) -> None:
    left, right = st.columns([3, 2])
    with left:
        if p.kind == "operating_point":
            st.markdown(f"**Alert threshold of {view.version_label(p.model, p.version)}** on its test window "
                        f"({p.payload.get('test_days', 'n/a')} days), when proposed")
            st.table(view.point_table(p.payload))
        else:
            st.markdown(f"**Champion of {p.model}**: the version that scores new transactions")
            st.table(view.champion_table(home, p.model, p.version, p.payload.get("previous_champion")))
    with right:
        # Names and comments are typed by users: shown as plain text, never as Markdown.
        st.markdown("**Proposed by**")
        st.text(f"{p.proposed_by}, {view.when(p.proposed_at)}")
        st.markdown("**Why**")
        st.text(p.comment)
        note = view.changed_since(home, p)
        if note:
            st.warning(note)


def draw_decision(home, p) -> None:
    me = auth.user()
    own = view.same_person(me, p.proposed_by)
    may_decide = auth.role() in APPROVER_ROLES
    st.text_area("Comment", key=COMMENT, max_chars=1000, height=80,
                 placeholder="Required to reject; optional to approve.")
    reason = (f"You are {me}, who proposed this change: a second person with the analyst or admin role "
              "must approve it (four eyes).") if own else None
    if not auth.named():
        reason = ("Type your name in the sidebar first: an approval is recorded under a person's name, and "
                  "nobody may approve their own proposal.")
    row = st.container(horizontal=True, vertical_alignment="center")
    row.button("Approve", key="approvals_approve", type="primary", disabled=reason is not None or not may_decide,
               help=reason or "Makes the change live now, recorded with your name.",
               on_click=decide, args=(home, p.id, True))
    row.button("Reject", key="approvals_reject", disabled=not may_decide,
               help="Needs a comment. The proposer may reject their own proposal to withdraw it.",
               on_click=decide, args=(home, p.id, False))
    row.caption(f"Acting as **{me}**.")
    if reason:
        local = "" if auth.auth_configured() or not own else (
            " In local mode, a different person types their own name in the sidebar.")
        st.info(reason + local)


def draw_pending(home, frame) -> None:
    st.subheader("Waiting for approval")
    pending = frame[frame["status"] == "pending"]
    if pending.empty:
        st.info("No proposals waiting. Propose a threshold on the Thresholds page or a champion on the "
                "Models page.")
        return
    st.dataframe(view.proposals_table(pending), hide_index=True, key="approvals_pending_table",
                 column_config=COLUMNS)
    labels = view.proposal_labels(pending)
    if st.session_state.get(PICK) not in labels:
        st.session_state[PICK] = list(labels)[-1]  # the oldest waits longest
    pick = st.selectbox("Proposal to decide", list(labels), key=PICK, format_func=labels.get)
    chosen = view.proposal(home, pick)
    with st.container(border=True):
        draw_details(home, chosen)
        draw_decision(home, chosen)


def draw_decided(home, frame) -> None:
    st.subheader("Decided")
    cols = st.columns(2)
    status = cols[0].selectbox("Status", list(view.STATUS_FILTERS), key="approvals_status")
    models = sorted(set(frame.loc[frame["status"] != "pending", "model"]))
    model = cols[1].selectbox("Model", ["All models", *models], key="approvals_model")
    found = view.decided(home, view.STATUS_FILTERS[status], None if model == "All models" else model)
    if found.empty:
        st.caption("No decided proposals yet." if not models else "No decided proposal matches these filters.")
        return
    st.dataframe(view.proposals_table(found, decided=True), hide_index=True, key="approvals_decided_table",
                 column_config=COLUMNS)
    draw_evidence(home, found[found["status"] == "approved"])


def draw_evidence(home, approved) -> None:
    if approved.empty:
        return
    labels = view.proposal_labels(approved)
    st.markdown("**Evidence pack** of an approved change: model card, metrics at the old and new threshold, "
                "precision-recall curve, the decision and its audit entries, in one zip.")
    cols = st.columns([2, 1], vertical_alignment="bottom")
    pick = cols[0].selectbox("Approved proposal", list(labels), key=EVIDENCE, index=None,
                             placeholder="Choose one to prepare its pack", format_func=labels.get)
    if pick is None:
        return
    try:
        data = view.evidence_pack(home, pick)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    cols[1].download_button("Download evidence pack (zip)", data, file_name=view.evidence_file_name(pick),
                            mime="application/zip", key="approvals_evidence_download",
                            on_click=record_download, args=(home, pick))


home = layout.ensure_frame("pages/approvals.py")
st.title("Approvals")
st.caption("Changing a model's live alert threshold or its champion takes two people: one proposes with a "
           "comment, a second analyst or admin approves. Both steps go into the audit log.")
draw_flash()
try:
    proposals = view.all_proposals(home)
except FraudLensError as exc:
    st.error(str(exc))
    st.stop()
draw_pending(home, proposals)
draw_decided(home, proposals)

"""Home: what FraudLens is, the active dataset's headline figures, and what to do next."""

from __future__ import annotations

import streamlit as st

from fraudlens.config import DEMO_DATASET
from fraudlens.ui import auth, cached, layout, state

home = layout.ensure_frame("pages/home.py")
st.title("FraudLens")
st.markdown(
    "Fraud analytics for transaction screening: load a bank's transaction export, check its "
    "quality, and see where fraud concentrates. Every figure here can be reproduced with "
    "`python -m fraudlens`."
)

name = st.session_state.get(state.ACTIVE_DATASET)
info = cached.dataset_info(home, name) if name else None
loads_data = auth.may_open(auth.role(), "pages/data.py")
if info is None:
    st.info(
        "No dataset yet. Load a file of transactions (CSV, Parquet or JSON Lines) on the "
        "Data page to begin." if loads_data else
        "No dataset yet. A supervisor or analyst loads one on the Data page."
    )
    auth.page_link("pages/data.py", "Go to the Data page")
    st.stop()

figures = cached.headline(info)
tz = cached.timezone_name()
st.subheader(f"Active dataset: {info.name}")
if info.name == DEMO_DATASET:
    st.caption("Synthetic card and account transactions generated on first start, with fraud "
               "planted by known schemes. Load your own data on the Data page.")
top = st.columns(3)
top[0].metric("Transactions", figures["rows"], border=True)
top[1].metric("Frauds", figures["frauds"], border=True, help="Transactions labelled fraudulent.")
top[2].metric("Frauds among all rows", figures["fraud_rate"], border=True,
              help="Frauds as a share of all loaded transactions, labelled or not. The Overview and "
                   "Explore pages give the fraud rate among labelled transactions.")
bottom = st.columns(3)
bottom[0].metric("First transaction", figures["first"], border=True, help=f"Date in {tz} time.")
bottom[1].metric("Last transaction", figures["last"], border=True, help=f"Date in {tz} time.")
bottom[2].metric("Rejected at ingest", figures["rejected"], border=True,
                 help="Rows refused over all ingests of this dataset; see the Data page for why.")
if info.pseudonymised:
    st.caption("Account ids and IP addresses in this dataset are pseudonymised.")

st.subheader("What to do next")
steps = ["- **See the summary**: the Overview page has the headline figures against the previous "
         "period, the trend, fraud by channel and type, and the money lost."]
if auth.may_open(auth.role(), "pages/explore.py"):
    steps.append("- **Find the patterns**: the Explore page shows fraud by hour and weekday, "
                 "amount, segment, region, merchant and account; click a chart element to list "
                 "the transactions behind it.")
if loads_data:
    steps += [
        "- **Check the data**: the Data page shows every dataset, the data-quality profile of the "
        "active one (empty values, ranges, most common values) and its ingest history.",
        "- **Load your own data**: upload a CSV, CSV.gz, Parquet or JSON Lines export on the Data "
        "page, check how its columns map onto the standard transaction, and ingest it. Rows that "
        "cannot be read are set aside with a reason you can download.",
    ]
if auth.may_open(auth.role(), "pages/alerts.py"):
    steps += [
        "- **Work the alerts**: the Alerts page raises alerts with the champion model at the live "
        "threshold and lists them by expected loss; open one to see why it scored high and record "
        "a disposition, which becomes a label for the next training.",
        "- **Change a threshold or champion with four eyes**: propose it on the Thresholds or Models "
        "page; a second analyst or admin approves it on the Approvals page.",
    ]
steps.append("- **Watch the model**: the Monitoring page shows score drift (PSI), alert volume and "
             "precision, the estimated share of fraud the threshold misses, and label maturity.")
steps.append("- **Switch dataset**: pick the active dataset in the sidebar; every page follows it.")
st.markdown("\n".join(steps))
links = st.columns(3)
auth.page_link("pages/overview.py", "Open the Overview page", links[0])
auth.page_link("pages/explore.py", "Open the Explore page", links[1])
auth.page_link("pages/data.py", "Open the Data page", links[2])

"""The leadroute workbench (Streamlit): `leadroute app` or `streamlit run app.py`.

Pages only read widgets, call one library function and render; the numbers come from the same
functions the CLI and notebooks use.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="leadroute", layout="wide")

pages = [
    st.Page("workbench/overview.py", title="Overview", url_path="overview", default=True),
    st.Page("workbench/rules.py", title="Rules", url_path="rules"),
    st.Page("workbench/compare.py", title="Compare", url_path="compare"),
    st.Page("workbench/experiments.py", title="Experiments", url_path="experiments"),
    st.Page("workbench/deploy.py", title="Deploy", url_path="deploy"),
    st.Page("workbench/model.py", title="Model", url_path="model"),
    st.Page("workbench/monitor.py", title="Monitor", url_path="monitor"),
    st.Page("workbench/data.py", title="Data", url_path="data"),
]
st.navigation(pages).run()

"""The leadroute workbench (Streamlit): `leadroute app` or `streamlit run app.py`.

Pages only read widgets, call one library function and render; the numbers come from the same
functions the CLI and notebooks use.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="leadroute", layout="wide")

pages = [
    st.Page("workbench/overview.py", title="Overview", url_path="overview", default=True),
    st.Page("workbench/data.py", title="Data", url_path="data"),
]
st.navigation(pages).run()

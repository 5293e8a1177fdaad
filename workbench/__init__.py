"""Page scripts of the Streamlit workbench (kept out of a folder named ``pages/``, which
Streamlit would otherwise treat as its legacy multipage layout)."""

"""Figures any page can show or export: run colours, tables drawn as charts, offline PNG/SVG/CSV.

Owns the colour of each run, the same on every page and in every export (`colors`), tables
and scatters drawn with Altair (`tables`) and the offline export of charts (`export`,
through vl-convert: no browser, no network). It imports only Altair, pandas, numpy and
vl-convert: no other part of the sandbox, no Streamlit, no torch.
"""

"""App-side glue that needs no Streamlit: what the pages decide about visitors.

Owns the access token and the rate limit on wrong tokens (`auth`) and the registry of
the app's process-wide objects that no visitor's "clear cache" may reset (`shared`), who may keep uploads (`uploads`) and admission rules for expensive
actions (`admission`). The pages (`pages/`)
hold the Streamlit widgets; what can be tested without Streamlit lives here. It imports
only the standard library.
"""

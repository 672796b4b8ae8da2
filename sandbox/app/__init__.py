"""App-side glue that needs no Streamlit: what the pages decide about visitors.

Owns the access token and the rate limit on wrong tokens (`auth`). The pages (`pages/`)
hold the Streamlit widgets; what can be tested without Streamlit lives here. It imports
only the standard library.
"""

"""The optional shared access token for LAN use (``SANDBOX_TOKEN``).

When the variable is set, a visitor types the token once per browser session; when it is
unset the app is open, as on localhost. Streamlit's own `st.login` is OIDC-only, so a shared
token is the app's own: compared in constant time, never logged, never put in a URL.
"""

from __future__ import annotations

import hmac
import os


def expected_token() -> str | None:
    """The token visitors must give, or None when the app is open."""
    token = os.environ.get("SANDBOX_TOKEN", "")
    return token or None


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison (no timing side channel on how much of the token matched)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))

"""An LLM judge over any OpenAI-compatible chat-completions endpoint.

Where the judge is comes from the person who starts the app, never from a request: the
environment (``SANDBOX_JUDGE_BASE_URL``, ``SANDBOX_JUDGE_MODEL``, ``SANDBOX_JUDGE_API_KEY``,
optional ``SANDBOX_JUDGE_TIMEOUT``) or the values of ``.streamlit/secrets.toml`` that the
caller passes in (a ``[judge]`` table with ``base_url``, ``model``, ``api_key``, ``timeout``,
or the same flat names as the environment). The environment wins. Without a base URL and a
model the judge is off, and `judge_status` says so in a sentence.

Every pair is judged in both orders, which cancels the judge's position bias: the two
answers agree → that verdict; they disagree → a tie; either one unparseable → "unparsed"
(kept with both raw answers, left out of the ratings). The rubric is editable and stored with
every verdict; the answer format the parser needs is appended to it by the code.

Requests go through httpx with a timeout for the whole answer (a server that trickles a
byte at a time is cut off once the timeout has passed since the request was sent, not after
a silence of that length), and are retried with exponential backoff on timeouts,
connection errors, HTTP 429 and 5xx (a numeric Retry-After is honoured, capped). An answer
is read up to `MAX_RESPONSE_BYTES` (a longer one is refused) and stored cut to
`MAX_STORED_ANSWER_CHARS` (its start and its end, where the verdict line is); lone
surrogates in it are replaced (`sandbox.text.encodable`), so one odd answer never stops a
run.
The API key is sent only in the Authorization header: it is masked in this module's reprs,
log lines and error sentences, and in the raw answers before they are stored (a server that
echoes it back does not get it into the database).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from sandbox.arena.store import ArenaStore, BattleRecord, VoteRecord, new_id
from sandbox.text import encodable

log = logging.getLogger(__name__)

ENV_BASE_URL = "SANDBOX_JUDGE_BASE_URL"
ENV_MODEL = "SANDBOX_JUDGE_MODEL"
ENV_API_KEY = "SANDBOX_JUDGE_API_KEY"
ENV_TIMEOUT = "SANDBOX_JUDGE_TIMEOUT"
SECRETS_TABLE = "judge"

DEFAULT_TIMEOUT = 60.0  # seconds for one request
DEFAULT_RETRIES = 3  # further tries after the first
DEFAULT_BACKOFF = 1.0  # seconds before the first retry, doubled each time
MAX_RETRY_AFTER = 30.0  # a server's Retry-After is honoured up to this
MAX_RUBRIC_CHARS = 8000
MAX_ERROR_CHARS = 200  # of a server's error message, in a sentence
MAX_RESPONSE_BYTES = 1_000_000  # read of one answer; a 512-token answer is a few kB
MAX_STORED_ANSWER_CHARS = 4000  # of one order's answer in the database: its start and its end
MASK = "***"
KEY_RUN = 8  # characters of the key in a row that count as showing it

DEFAULT_RUBRIC = (
    "You compare two continuations of the same story opening, written by two small language "
    "models trained on simple children's stories. The better continuation is fluent, grammatical "
    "English; stays coherent with the opening and with itself (names, places, events); and tells "
    "a story that goes somewhere. Do not prefer a continuation for its length or its position, "
    "and do not reward repetition. If both are equally good, it is a tie; if both are "
    "incoherent, both are bad."
)
ANSWER_FORMAT = (
    "Think briefly if you need to, then end your answer with exactly one line of the form "
    "'Verdict: A', 'Verdict: B', 'Verdict: tie' or 'Verdict: both bad'."
)

_VERDICT_LINE = re.compile(r"verdict\s*[:=\-]?\s*[*_`\"'\[(]*\s*(a|b|tie|both[\s_-]*bad)\b", re.IGNORECASE)
_BARE = re.compile(r"^[\s*_`\"'\[(]*(a|b|tie|both[\s_-]*bad)[\s*_`\"'\]).!]*$", re.IGNORECASE)


class JudgeError(RuntimeError):
    """The judge could not give a verdict (no answer, refused, misconfigured); one sentence."""


class _TooLate(Exception):
    """The answer was still arriving when the request's time was up."""


class _Unread(Exception):
    """An answer not read to its end: too long, or compressed; the message says which."""


def cut_answer(text: str, limit: int = MAX_STORED_ANSWER_CHARS) -> str:
    """``text`` as stored: whole when short, else its start and its end (the verdict line)
    around a note of how much was cut."""
    if len(text) <= limit:
        return text
    head, tail = limit // 2, limit - limit // 2
    return f"{text[:head]}\n[… {len(text) - head - tail:,} characters cut …]\n{text[-tail:]}"


@dataclass(frozen=True)
class JudgeConfig:
    """Where the judge is and how patiently it is asked. The key never appears in its repr."""

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    max_tokens: int = 512
    temperature: float = 0.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{ENV_BASE_URL} must be an http(s) URL such as http://127.0.0.1:8080/v1.")
        if not self.model.strip():
            raise ValueError(f"{ENV_MODEL} must name the judge model.")
        if not self.timeout > 0:
            raise ValueError("the judge's timeout must be more than 0 seconds")
        if self.max_retries < 0:
            raise ValueError("the judge's retries must be 0 or more")

    def __repr__(self) -> str:
        key = "set" if self.api_key else "none"
        return f"JudgeConfig(endpoint={self.endpoint!r}, model={self.model!r}, api_key={key}, timeout={self.timeout})"

    @property
    def endpoint(self) -> str:
        """``scheme://host[:port]`` of the base URL: safe to show (no path, no user or password)."""
        parts = urlsplit(self.base_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"

    @property
    def url(self) -> str:
        """The chat-completions URL."""
        return self.base_url.rstrip("/") + "/chat/completions"

    def mask(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``: the key whole, and any run of
        `KEY_RUN` or more of its characters in a row (any case), so a server that echoes a
        part of it, or changes its case, does not get it shown or stored."""
        if not self.api_key or not text:
            return text
        run = min(KEY_RUN, len(self.api_key))
        key, low = self.api_key.lower(), text.lower()
        parts = {key[i : i + run] for i in range(len(key) - run + 1)}
        spans: list[list[int]] = []
        for i in range(len(low) - run + 1):
            if low[i : i + run] in parts:
                if spans and i <= spans[-1][1]:
                    spans[-1][1] = i + run
                else:
                    spans.append([i, i + run])
        for start, end in reversed(spans):
            text = text[:start] + MASK + text[end:]
        return text


def _setting(name: str, key: str, environ: Mapping[str, str], secrets: Mapping[str, Any] | None) -> str:
    value = environ.get(name, "")
    if not value and secrets:
        table = secrets.get(SECRETS_TABLE)
        if isinstance(table, Mapping):
            value = table.get(key, "") or ""
        value = value or secrets.get(name, "") or ""
    return str(value).strip()


def judge_config(secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> JudgeConfig | None:
    """The judge's configuration from the environment, else ``secrets``; None when it is off.

    Raises `ValueError` with one sentence when it is configured but unusable (a base URL
    that is not http(s), a timeout that is not a number).
    """
    environ = os.environ if environ is None else environ
    base_url = _setting(ENV_BASE_URL, "base_url", environ, secrets)
    model = _setting(ENV_MODEL, "model", environ, secrets)
    if not base_url or not model:
        return None
    timeout_text = _setting(ENV_TIMEOUT, "timeout", environ, secrets)
    try:
        timeout = float(timeout_text) if timeout_text else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"{ENV_TIMEOUT} must be a number of seconds, not {timeout_text!r}.") from None
    return JudgeConfig(base_url, model, _setting(ENV_API_KEY, "api_key", environ, secrets), timeout)


def judge_status(config: JudgeConfig | None) -> str:
    """One sentence for the page and the CLI: whether the judge is on, and which model it is."""
    if config is None:
        return (
            f"The LLM judge is off: set {ENV_BASE_URL} and {ENV_MODEL} (and {ENV_API_KEY} for a "
            "hosted model) in the environment or in .streamlit/secrets.toml, then restart the app."
        )
    return f"The LLM judge is {config.model} at {config.endpoint}."


# -- answers ---------------------------------------------------------------------------------


def parse_verdict(answer: str) -> str:
    """``"A"``, ``"B"``, ``"tie"``, ``"both_bad"``, or ``"unparsed"`` for an answer without a verdict.

    The last ``Verdict: X`` line wins (a judge that reasons first may mention both); an answer
    that is nothing but the verdict ("B", "**tie**") counts too.
    """
    matches = _VERDICT_LINE.findall(answer or "")
    token = matches[-1] if matches else None
    if token is None:
        bare = _BARE.match(answer or "")
        token = bare.group(1) if bare else None
    if token is None:
        return "unparsed"
    token = token.lower()
    if token.startswith("both"):
        return "both_bad"
    return {"a": "A", "b": "B"}.get(token, token)


def combine(first: str, second: str) -> str:
    """The verdict on run_a vs run_b from the answer with run_a shown as A (``first``) and the
    answer with run_b shown as A (``second``): agreeing answers stand, disagreeing ones tie."""
    if "unparsed" in (first, second):
        return "unparsed"
    as_ab = {"A": "a", "B": "b"}.get(first, first)
    as_ba = {"A": "b", "B": "a"}.get(second, second)
    return as_ab if as_ab == as_ba else "tie"


def build_messages(prompt: str, first: str, second: str, rubric: str) -> list[dict]:
    """The chat messages for one order: the rubric (plus the answer format), then the texts."""
    user = (
        f"Story opening:\n<<<\n{prompt}\n>>>\n\n"
        f"Continuation A:\n<<<\n{first}\n>>>\n\n"
        f"Continuation B:\n<<<\n{second}\n>>>\n\n"
        "Which continuation is better?"
    )
    return [{"role": "system", "content": f"{rubric.strip()}\n\n{ANSWER_FORMAT}"}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class OrderAnswer:
    """One request's outcome: the verdict by position and the raw answer (key masked)."""

    verdict: str  # "A", "B", "tie", "both_bad" or "unparsed"
    raw: str


@dataclass(frozen=True)
class JudgeVerdict:
    """Both orders and their combination, in run_a / run_b terms."""

    verdict: str  # "a", "b", "tie", "both_bad" or "unparsed"
    ab: OrderAnswer  # run_a shown as A
    ba: OrderAnswer  # run_b shown as A

    def raw_json(self, model: str) -> str:
        """What the store keeps as the vote's ``raw``."""
        return json.dumps(
            {
                "model": model,
                "ab": {"verdict": self.ab.verdict, "answer": self.ab.raw},
                "ba": {"verdict": self.ba.verdict, "answer": self.ba.raw},
            },
            ensure_ascii=False,
        )


def check_rubric(rubric: str) -> str:
    """The rubric, stripped; `ValueError` with a sentence when empty or too long."""
    text = (rubric or "").strip()
    if not text:
        raise ValueError("The judge's rubric is empty.")
    if len(text) > MAX_RUBRIC_CHARS:
        raise ValueError(f"The judge's rubric is {len(text):,} characters long; at most {MAX_RUBRIC_CHARS:,}.")
    return text


# -- the client ------------------------------------------------------------------------------


class Judge:
    """Asks the configured endpoint; thread-safe (one pooled httpx client). Close it when done."""

    def __init__(self, config: JudgeConfig, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(config.timeout), headers=headers, transport=transport,
                                    follow_redirects=False)

    def __repr__(self) -> str:
        return f"Judge({self.config!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error_message(self, response: httpx.Response) -> str:
        """The server's own error message, short and masked (OpenAI's ``error.message`` if any)."""
        try:
            body = response.json()
            message = body.get("error", {}).get("message") if isinstance(body, dict) else None
            text = message if isinstance(message, str) else response.text
        except (ValueError, AttributeError):
            text = response.text
        text = " ".join(self.config.mask(text).split())
        return text[:MAX_ERROR_CHARS] + ("…" if len(text) > MAX_ERROR_CHARS else "")

    def ask(self, messages: list[dict]) -> str:
        """The content of the judge's answer to ``messages``, with retries; raises `JudgeError`."""
        cfg = self.config
        payload = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
        tries = cfg.max_retries + 1
        why = ""
        for attempt in range(tries):
            delay = cfg.backoff * (2**attempt)
            try:
                response = self._post(payload)
            except (httpx.TimeoutException, _TooLate):
                why = f"did not answer within {cfg.timeout:g} s"
            except _Unread as exc:
                sentence = f"The judge {cfg.model} at {cfg.endpoint} {exc}; the answer was not read."
                log.warning("%s", sentence)
                raise JudgeError(sentence) from None
            except httpx.TransportError as exc:
                why = f"could not be reached ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return self._content(response)
                if response.status_code == 429 or response.status_code >= 500:
                    why = f"answered HTTP {response.status_code} ({self._error_message(response)})"
                    retry_after = response.headers.get("retry-after", "")
                    if retry_after.strip().isdigit():
                        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
                else:
                    sentence = (
                        f"The judge {cfg.model} at {cfg.endpoint} refused the request "
                        f"(HTTP {response.status_code}: {self._error_message(response)})."
                    )
                    log.warning("%s", sentence)
                    raise JudgeError(sentence)
            log.warning("judge %s at %s %s (try %d of %d)", cfg.model, cfg.endpoint, cfg.mask(why), attempt + 1, tries)
            if attempt + 1 < tries:
                self._sleep(delay)
        raise JudgeError(f"The judge {cfg.model} at {cfg.endpoint} {cfg.mask(why)}, {tries} tries.")

    def _post(self, payload: dict) -> httpx.Response:
        """POST ``payload``, reading the answer within one deadline and `MAX_RESPONSE_BYTES`.

        httpx's timeout bounds each read, not the whole answer; the deadline is checked
        after every chunk. Compressed answers are not asked for, and not accepted (a small
        compressed body can unpack to any size).
        """
        deadline = time.monotonic() + self.config.timeout
        with self._client.stream("POST", self.config.url, json=payload, headers={"Accept-Encoding": "identity"}) as response:
            encoding = response.headers.get("content-encoding", "identity").lower()
            if encoding != "identity":
                raise _Unread(f"answered in a compressed encoding ({encoding[:20]}), which is not asked for")
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise _Unread(f"answered more than {MAX_RESPONSE_BYTES:,} bytes")
                if time.monotonic() > deadline:
                    raise _TooLate
        return httpx.Response(response.status_code, headers=response.headers, content=bytes(body))

    def _content(self, response: httpx.Response) -> str:
        """The message content of a 200 answer; the body itself when it has another shape."""
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            content = None
        return self.config.mask(encodable(content if isinstance(content, str) else response.text))

    def judge(self, prompt: str, text_a: str, text_b: str, rubric: str = DEFAULT_RUBRIC) -> JudgeVerdict:
        """Judge run_a's ``text_a`` against run_b's ``text_b`` in both orders."""
        rubric = check_rubric(rubric)
        first = self.ask(build_messages(prompt, text_a, text_b, rubric))
        second = self.ask(build_messages(prompt, text_b, text_a, rubric))
        ab = OrderAnswer(parse_verdict(first), cut_answer(first))
        ba = OrderAnswer(parse_verdict(second), cut_answer(second))
        return JudgeVerdict(combine(ab.verdict, ba.verdict), ab, ba)

    def judge_battle(self, battle: BattleRecord, store: ArenaStore | None = None,
                     rubric: str = DEFAULT_RUBRIC) -> VoteRecord:
        """Judge a stored (or about to be stored) battle and record the verdict as a judge vote.

        The vote is stored when ``store`` is given (a `StoreError` then means it waits in the
        store's pending queue). Raises `JudgeError` when the endpoint gives no answer.
        """
        rubric = check_rubric(rubric)
        verdict = self.judge(battle.prompt, battle.text_a, battle.text_b, rubric)
        vote = VoteRecord(
            id=new_id(), battle_id=battle.id, rater_kind="judge", rater_id=self.config.model,
            verdict=verdict.verdict, shown_order="both", rubric=rubric,
            raw=verdict.raw_json(self.config.model),
        )  # fmt: skip
        if store is not None:
            store.add_vote(vote, battle)
        return vote

"""The LLM judge against a local OpenAI-compatible server on 127.0.0.1 with scripted answers."""

from __future__ import annotations

import json
import logging

import pytest
from arena_server import KEY, FakeServer, Reply, Trickle, chat, fake_servers, shown

from sandbox.arena.judge import (
    DEFAULT_RUBRIC,
    Judge,
    JudgeConfig,
    JudgeError,
    build_messages,
    combine,
    judge_config,
    judge_status,
    parse_verdict,
)
from sandbox.arena.store import ArenaStore, BattleRecord, new_id


@pytest.fixture
def serve():
    with fake_servers() as start:
        yield start


def prefers_good(body: dict, n: int) -> Reply:
    """A fair judge: picks whichever position holds the text with GOOD in it."""
    a, b = shown(body)
    pick = "A" if "GOOD" in a else "B" if "GOOD" in b else "tie"
    return 200, chat(f"Story {pick} is more coherent.\nVerdict: {pick}"), 0.0, {}


def config(server: FakeServer, **kw) -> JudgeConfig:
    return JudgeConfig(server.base_url, "judge-model", KEY, **{"timeout": 5.0, "backoff": 0.01, **kw})


def battle(text_a: str = "GOOD: the fox found the map", text_b: str = "bad bad bad") -> BattleRecord:
    return BattleRecord(id=new_id(), prompt="Once upon a time", settings={"seed": 1}, seed=1, draw_seed=2,
                        shown_order="ab", run_a="x/one", fingerprint_a="f1", text_a=text_a,
                        run_b="y/two", fingerprint_b="f2", text_b=text_b)  # fmt: skip


def test_both_orders_are_sent_and_combined(serve, tmp_path):
    server = serve(prefers_good)
    store = ArenaStore(tmp_path / "arena.sqlite3")
    b = battle()
    store.add_battle(b)
    rubric = "Prefer stories about foxes. " + DEFAULT_RUBRIC
    with Judge(config(server)) as judge:
        vote = judge.judge_battle(b, store, rubric=rubric)
    first, second = server.requests
    assert first["path"] == second["path"] == "/v1/chat/completions"
    assert first["auth"] == f"Bearer {KEY}" and first["body"]["model"] == "judge-model"
    assert shown(first["body"]) == (b.text_a, b.text_b)
    assert shown(second["body"]) == (b.text_b, b.text_a)  # A and B swapped
    assert first["body"]["messages"][0]["content"].startswith(rubric)
    assert vote.verdict == "a" and vote.rater_kind == "judge" and vote.rater_id == "judge-model"
    assert vote.shown_order == "both"
    [stored] = store.votes()
    assert stored == vote and stored.rubric == rubric
    raw = json.loads(stored.raw)
    assert raw["ab"]["verdict"] == "A" and raw["ba"]["verdict"] == "B"
    assert "Verdict: B" in raw["ba"]["answer"]


def test_a_judge_with_position_bias_gives_a_tie(serve):
    server = serve(lambda body, n: (200, chat("Verdict: A"), 0.0, {}))  # always the first
    with Judge(config(server)) as judge:
        v = judge.judge("p", "one", "two")
    assert (v.ab.verdict, v.ba.verdict, v.verdict) == ("A", "A", "tie")
    assert len(server.requests) == 2


def test_a_malformed_answer_is_recorded_as_unparsed(serve, tmp_path):
    answers = iter([chat("I like the first one more, I think."), {"unexpected": "shape"}])
    server = serve(lambda body, n: (200, next(answers), 0.0, {}))
    store = ArenaStore(tmp_path / "arena.sqlite3")
    b = battle()
    store.add_battle(b)
    with Judge(config(server)) as judge:
        vote = judge.judge_battle(b, store)
    assert vote.verdict == "unparsed"
    raw = json.loads(store.votes()[0].raw)
    assert raw["ab"] == {"verdict": "unparsed", "answer": "I like the first one more, I think."}
    assert raw["ba"]["verdict"] == "unparsed" and "unexpected" in raw["ba"]["answer"]


def test_a_timeout_is_retried_a_bounded_number_of_times(serve, caplog):
    server = serve(lambda body, n: (200, chat("Verdict: A"), 1.5, {}))  # always too slow
    with Judge(config(server, timeout=0.2, max_retries=2)) as judge:
        with pytest.raises(JudgeError) as err:
            judge.judge("p", "one", "two")
    port = server.httpd.server_port
    assert str(err.value) == f"The judge judge-model at http://127.0.0.1:{port} did not answer within 0.2 s, 3 tries."
    assert len(server.requests) == 3  # the first try and two retries, then it stops


def test_server_errors_and_rate_limits_are_retried(serve):
    script = [(500, {"error": {"message": "overloaded"}}, 0.0, {}), (429, "slow down", 0.0, {"Retry-After": "0"})]

    def answer(body: dict, n: int) -> Reply:
        return script[n] if n < len(script) else prefers_good(body, n)

    server = serve(answer)
    slept: list[float] = []
    with Judge(config(server, backoff=0.25), sleep=slept.append) as judge:
        v = judge.judge("p", "GOOD one", "two")
    assert v.verdict == "a" and len(server.requests) == 4
    assert slept == [0.25, 0.5]  # exponential backoff between the tries


def test_a_refusal_is_not_retried_and_the_key_is_never_shown(serve, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at debug level
    refusal = {"error": {"message": f"Incorrect API key provided: {KEY}. You can find your key..."}}
    server = serve(lambda body, n: (401, refusal, 0.0, {}))
    judge = Judge(config(server))
    with pytest.raises(JudgeError, match="refused the request") as err:
        judge.judge("p", "one", "two")
    assert len(server.requests) == 1
    assert KEY not in str(err.value) and "***" in str(err.value)
    assert KEY not in repr(judge) and KEY not in repr(judge.config) and KEY not in str(judge.config)
    judge.close()
    # A server that echoes the key back in its answers does not get it into the database.
    server = serve(lambda body, n: (200, chat(f"Verdict: tie. (auth was Bearer {KEY})"), 0.0, {}))
    store = ArenaStore(tmp_path / "arena.sqlite3")
    b = battle()
    store.add_battle(b)
    with Judge(config(server)) as judge:
        judge.judge_battle(b, store)
    unreachable = Judge(JudgeConfig("http://127.0.0.1:9/v1", "m", KEY, timeout=1, max_retries=1, backoff=0.01))
    with pytest.raises(JudgeError, match="could not be reached") as err2:
        unreachable.judge("p", "one", "two")
    unreachable.close()
    assert KEY not in str(err2.value)
    assert KEY not in caplog.text and "judge-model" in caplog.text
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("arena.sqlite3"))
    assert KEY.encode() not in stored and b"auth was Bearer ***" in stored


def test_configuration_comes_from_the_environment_or_secrets():
    assert judge_config(environ={}) is None
    assert "judge is off" in judge_status(None) and "SANDBOX_JUDGE_BASE_URL" in judge_status(None)
    env = {"SANDBOX_JUDGE_BASE_URL": "http://127.0.0.1:11434/v1", "SANDBOX_JUDGE_MODEL": "llama3.2"}
    cfg = judge_config(environ=env)
    assert cfg is not None and cfg.api_key == "" and cfg.url == "http://127.0.0.1:11434/v1/chat/completions"
    assert judge_status(cfg) == "The LLM judge is llama3.2 at http://127.0.0.1:11434."
    secrets = {"judge": {"base_url": "https://user:pw@api.example.org/v1", "model": "gpt-x", "api_key": KEY, "timeout": 20}}
    cfg = judge_config(secrets, environ={})
    assert (cfg.model, cfg.api_key, cfg.timeout) == ("gpt-x", KEY, 20.0)
    assert "pw" not in judge_status(cfg) and KEY not in repr(cfg)  # no password, no key shown
    flat = {"SANDBOX_JUDGE_BASE_URL": "http://h:1/v1", "SANDBOX_JUDGE_MODEL": "m2", "SANDBOX_JUDGE_API_KEY": "k"}
    assert judge_config(flat, environ={}).model == "m2"
    assert judge_config(secrets, environ=env).model == "llama3.2"  # the environment wins
    with pytest.raises(ValueError, match="http"):
        judge_config(environ={**env, "SANDBOX_JUDGE_BASE_URL": "file:///etc/passwd"})
    with pytest.raises(ValueError, match="number of seconds"):
        judge_config(environ={**env, "SANDBOX_JUDGE_TIMEOUT": "soon"})


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("Verdict: A", "A"),
        ("Both have flaws.\nVerdict: **B**", "B"),
        ("verdict - tie", "tie"),
        ("Verdict: both bad", "both_bad"),
        ("Verdict: Both_Bad.", "both_bad"),
        ("B", "B"),
        ("**Tie**", "tie"),
        ("Verdict: A... no wait.\nVerdict: B", "B"),
        ("A is better because", "unparsed"),
        ("Verdict: Actually neither", "unparsed"),
        ("", "unparsed"),
    ],
)
def test_verdicts_are_parsed(answer, verdict):
    assert parse_verdict(answer) == verdict


def test_orders_combine():
    assert combine("A", "B") == "a" and combine("B", "A") == "b"
    assert combine("A", "A") == "tie" and combine("tie", "tie") == "tie"
    assert combine("both_bad", "both_bad") == "both_bad" and combine("both_bad", "tie") == "tie"
    assert combine("A", "unparsed") == "unparsed"


def test_an_empty_rubric_is_refused(serve):
    server = serve(prefers_good)
    with Judge(config(server)) as judge:
        with pytest.raises(ValueError, match="rubric is empty"):
            judge.judge("p", "a", "b", rubric="  ")
    assert server.requests == []


# -- Reliability II, 4: a hostile judge endpoint ------------------------------------------------------


def test_a_trickling_answer_times_out_on_the_whole_answer(serve):
    """One byte at a time, each well within the timeout: the answer as a whole is not."""
    timeout = 0.5
    body = json.dumps(chat("Verdict: A")).encode()
    every = timeout / 5
    assert len(body) * every > 10 * timeout, "sent in full, the answer would take ten timeouts"
    server = serve(lambda b, n: (200, Trickle(body, every), 0.0, {}))
    with Judge(config(server, timeout=timeout, max_retries=0)) as judge:
        with pytest.raises(JudgeError, match=f"did not answer within {timeout:g} s, 1 tries"):
            judge.ask(build_messages("p", "one", "two", DEFAULT_RUBRIC))


def test_an_oversized_answer_is_refused_without_being_read_whole(serve):
    from sandbox.arena.judge import MAX_RESPONSE_BYTES

    server = serve(lambda b, n: (200, chat("x" * MAX_RESPONSE_BYTES + "\nVerdict: A"), 0.0, {}))
    with Judge(config(server, max_retries=2)) as judge:
        with pytest.raises(JudgeError, match=f"answered more than {MAX_RESPONSE_BYTES:,} bytes; the answer was not read"):
            judge.ask(build_messages("p", "one", "two", DEFAULT_RUBRIC))
    assert len(server.requests) == 1, "not retried"


def test_a_long_answer_is_stored_cut_keeping_its_verdict(serve, tmp_path):
    from sandbox.arena.judge import MAX_STORED_ANSWER_CHARS

    def long_fair(body: dict, n: int) -> Reply:
        status, answer, wait, headers = prefers_good(body, n)
        text = answer["choices"][0]["message"]["content"]
        return status, chat("I weigh every sentence. " * MAX_STORED_ANSWER_CHARS + text), wait, headers

    store = ArenaStore(tmp_path / "arena.sqlite3")
    record = battle()
    store.add_battle(record)
    with Judge(config(serve(long_fair))) as judge:
        vote = judge.judge_battle(record, store)
    assert vote.verdict == "a"
    (stored,) = store.votes()
    raw = json.loads(stored.raw)
    for order, pick in (("ab", "A"), ("ba", "B")):
        answer = raw[order]["answer"]
        assert answer.endswith(f"Verdict: {pick}") and "characters cut" in answer
        assert len(answer) < 2 * MAX_STORED_ANSWER_CHARS


def test_a_lone_surrogate_in_an_answer_is_stored_replaced(serve, tmp_path):
    """JSON may escape half a surrogate pair; SQLite cannot store it, and the run went on no further."""
    from sandbox.arena.headless import judge_unjudged
    from sandbox.arena.store import VoteRecord

    odd = '{"choices": [{"message": {"content": "odd \\ud800 text\\nVerdict: A"}}]}'
    store = ArenaStore(tmp_path / "arena.sqlite3")
    records = [battle(), battle()]
    for record in records:
        store.add_battle(record)
        store.add_vote(VoteRecord(id=new_id(), battle_id=record.id, rater_kind="person", rater_id="p1", verdict="a", shown_order="ab"))
    with Judge(config(serve(lambda b, n: (200, odd, 0.0, {})))) as judge:
        summary = judge_unjudged(store, judge)
    assert summary.judged == len(records) and not summary.failures
    judged = [json.loads(v.raw) for v in store.votes() if v.rater_kind == "judge"]
    assert len(judged) == len(records)
    assert all(j["ab"]["answer"] == "odd \ufffd text\nVerdict: A" for j in judged)


@pytest.mark.parametrize("echo", [KEY.upper(), KEY[:12] + "…", "…" + KEY[-10:], f"{KEY[:9]} {KEY[9:]}"])
def test_the_key_is_masked_however_it_is_echoed(serve, echo):
    """Reliability II, 8: a server that echoes part of the key, or changes its case, still gets ***."""
    refusal = {"error": {"message": f"Incorrect API key provided: {echo}. You can find your key..."}}
    server = serve(lambda body, n: (401, refusal, 0.0, {}))
    with Judge(config(server)) as judge, pytest.raises(JudgeError, match="refused the request") as err:
        judge.judge("p", "one", "two")
    shown = str(err.value)
    assert "***" in shown
    for part in (KEY[:8], KEY[-8:], KEY[6:14]):
        assert part.lower() not in shown.lower()

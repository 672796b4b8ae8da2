"""`sandbox judge` and `sandbox leaderboard`: judged battles headless against a local
OpenAI-compatible server on 127.0.0.1, the printed and JSON leaderboards."""

from __future__ import annotations

import json

import pytest
from arena_server import KEY, chat, fake_servers

from sandbox import cli
from sandbox.arena.judge import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL
from sandbox.arena.store import ArenaStore, BattleRecord, VoteRecord, new_id

RUNS = ["toy_a/run1", "toy_b/cached"]


@pytest.fixture
def no_judge(monkeypatch, tmp_path):
    """No judge in the environment, and no secrets file in the current folder."""
    for name in (ENV_BASE_URL, ENV_MODEL, ENV_API_KEY):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def judge_args(models, db, prompts, *extra: str, runs=RUNS) -> list[str]:
    return ["judge", "--models-dir", str(models), "--runs", *runs, "--prompts", str(prompts), "--db", str(db),
            "--max-new-tokens", "8", "--device", "cpu", *extra]  # fmt: skip


def test_judge_runs_battles_and_leaderboard_prints_them(toy_models, tmp_path, no_judge, monkeypatch, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the fox\n\na cat ran\n", encoding="utf-8")
    db = tmp_path / "arena.sqlite3"
    with fake_servers() as start:
        # A judge that always prefers the continuation shown first: both orders disagree → ties.
        server = start(lambda body, n: (200, chat("Verdict: A"), 0.0, {}))
        monkeypatch.setenv(ENV_BASE_URL, server.base_url)
        monkeypatch.setenv(ENV_MODEL, "cli-judge")
        monkeypatch.setenv(ENV_API_KEY, KEY)
        code = cli.main(judge_args(toy_models, db, prompts, "--n", "3", "--json"))
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["battles"], summary["judged"], summary["verdicts"]) == (3, 3, {"tie": 3})
    assert len(server.requests) == 6 and "[3/3]" in err and "The LLM judge is cli-judge" in err
    assert KEY not in out + err
    store = ArenaStore(db)
    assert [b.prompt for b in store.battles()] == ["the fox", "a cat ran", "the fox"]
    assert [b.seed for b in store.battles()] == [0, 1, 2]  # --seed (0) + i, shared by both runs

    assert cli.main(["leaderboard", "--db", str(db), "--json", "--bootstrap", "50"]) == 0
    data = json.loads(capsys.readouterr().out)
    kinds = [b["kind"] for b in data["leaderboards"]]
    assert kinds == ["combined", "people", "judge:cli-judge"]
    judge_board = data["leaderboards"][2]
    assert judge_board["votes"] == 3 and {r["run"] for r in judge_board["ratings"]} == set(RUNS)
    assert all(r["ties"] == 3 for r in judge_board["ratings"])

    assert cli.main(["leaderboard", "--db", str(db), "--rater", "judge", "--bootstrap", "0"]) == 0
    text = capsys.readouterr().out
    assert "Judge cli-judge: 3 votes on 3 battles" in text and "People:" not in text
    assert "toy_a/run1" in text and "rank" in text


def test_judge_refuses_before_any_work(toy_models, tmp_path, no_judge, monkeypatch, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the fox\n", encoding="utf-8")
    db = tmp_path / "arena.sqlite3"
    assert cli.main(judge_args(toy_models, db, prompts, "--n", "2")) == 2
    assert "The LLM judge is off: set SANDBOX_JUDGE_BASE_URL" in capsys.readouterr().err
    monkeypatch.setenv(ENV_BASE_URL, "http://127.0.0.1:9/v1")
    monkeypatch.setenv(ENV_MODEL, "m")
    assert cli.main(judge_args(toy_models, db, tmp_path / "missing.txt", "--n", "2")) == 2
    assert "The prompt file missing.txt does not exist." in capsys.readouterr().err
    assert cli.main(judge_args(toy_models, db, prompts, "--n", "0")) == 2
    assert "between 1 and" in capsys.readouterr().err
    assert cli.main(judge_args(toy_models, db, prompts, "--n", "2", runs=["toy_a/run1", "toy_a/nope"])) == 2
    assert "no run called 'toy_a/nope'" in capsys.readouterr().err
    assert ArenaStore(db).counts()["battles"] == 0


def test_the_judge_is_read_from_the_apps_secrets_file(toy_models, tmp_path, no_judge, capsys):
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('[judge]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "from-secrets"\n', encoding="utf-8")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the fox\n", encoding="utf-8")
    # Bad input after the judge is found: the sentence is about the input, not "judge is off".
    assert cli.main(judge_args(toy_models, tmp_path / "a.sqlite3", prompts, "--n", "0")) == 2
    assert "between 1 and" in capsys.readouterr().err
    (tmp_path / ".streamlit" / "secrets.toml").write_text("[judge\n", encoding="utf-8")
    assert cli.main(judge_args(toy_models, tmp_path / "a.sqlite3", prompts, "--n", "1")) == 2
    assert "cannot be read as TOML" in capsys.readouterr().err


def test_leaderboard_of_people_and_an_empty_store(tmp_path, capsys):
    db = tmp_path / "arena.sqlite3"
    assert cli.main(["leaderboard", "--db", str(db)]) == 0
    assert "no votes yet" in capsys.readouterr().out
    store = ArenaStore(db)
    for n in range(4):
        battle = BattleRecord(new_id(), "p", {}, n, n, "ab", "x/one", "f1", "a", "y/two", "f2", "b")
        store.add_battle(battle)
        store.add_vote(VoteRecord(new_id(), battle.id, "person", "person-1", "a", "ab"))
    assert cli.main(["leaderboard", "--db", str(db), "--rater", "people", "--json", "--bootstrap", "0"]) == 0
    data = json.loads(capsys.readouterr().out)
    [board] = data["leaderboards"]
    assert board["kind"] == "people" and [r["run"] for r in board["ratings"]] == ["x/one", "y/two"]
    assert [(r["wins"], r["losses"]) for r in board["ratings"]] == [(4, 0), (0, 4)]

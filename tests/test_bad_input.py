"""Bad input, as a new user makes it: every case ends in one line on stderr, a stated exit
code, no traceback, and nothing already done lost. In process through click's runner where
possible; Ctrl-C through a real subprocess sent SIGINT. JSONL completions stand in for the
policy model (sampling is not the point here), and the judge is off unless a case needs it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from rlaif_sql.cli import main
from tests.openai_stub import Reply, openai_stub

USER_ERROR, NOTHING_VERIFIED, INTERRUPTED = 2, 3, 130
RIGHT = "```sql\nSELECT count(*) FROM orders\n```"
WRONG = "SELECT count(*) FROM orders WHERE id > 2"


@pytest.fixture()
def pack(tmp_path: Path) -> Path:
    with duckdb.connect(str(tmp_path / "shop.duckdb")) as conn:
        conn.execute("CREATE TABLE orders AS SELECT range AS id, range % 3 AS region FROM range(9)")
    tasks = [
        {"task_id": "count", "question": "How many orders?", "db": "shop.duckdb",
         "gold_sql": "SELECT count(*) FROM orders"},
        {"task_id": "regions", "question": "Orders per region?", "db": "shop.duckdb",
         "gold_sql": "SELECT region, count(*) AS n FROM orders GROUP BY region"},
    ]  # fmt: skip
    candidates = [
        {"task_id": "count", "candidate_id": "c1", "completion": RIGHT},
        {"task_id": "count", "candidate_id": "c2", "completion": WRONG},
        {"task_id": "regions", "candidate_id": "c3", "completion": "SELECT region FROM orders"},
    ]
    completions = [{"task_id": c["task_id"], "completion": c["completion"]} for c in candidates]
    write_jsonl(tmp_path / "tasks.jsonl", tasks)
    write_jsonl(tmp_path / "candidates.jsonl", candidates)
    write_jsonl(tmp_path / "completions.jsonl", completions)
    return tmp_path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


BASE = {
    "tasks": 'path = "tasks.jsonl"',
    "sampling": "n = 2\ntemperatures = [0.2]",
    "sampling.backend": 'kind = "jsonl"\npath = "completions.jsonl"\nmodel = "fixture"',
    "judge": "max_ties_per_task = 0\nconflict_sample = 0",
    "export": 'out = "run/export"\nformats = ["jsonl"]',
    "run": 'store = "run/run.duckdb"',
}


def config(pack: Path, name: str = "pipeline.toml", **sections: str) -> Path:
    """The base config with sections replaced (a value of None drops a section); extra
    sections are appended verbatim under their (possibly misspelled) name."""
    merged = {**BASE, **{k.replace("__", "."): v for k, v in sections.items()}}
    text = "".join(f"[{k}]\n{v}\n" for k, v in merged.items() if v is not None)
    (pack / name).write_text(text)
    return pack / name


def cli(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_line_error(args: list, code: int, *needles: str) -> str:
    exit_code, out, err = cli(*args)
    assert exit_code == code, (exit_code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ---------------------------------------------------------------------- the config


@pytest.mark.parametrize(
    ("section", "body", "needles"),
    [
        ("tasks", 'path = "tasks.jsonl"\nlimt = 8', ["[tasks]", "'limt'", "did you mean limit"]),
        ("sampling", "tempratures = [0.2]", ["did you mean temperatures", "bring, backend"]),
        ("sampling.backend", 'kind = "local"\nbatchsize = 4', ["did you mean batch_size"]),
        ("sampling.backend", 'kind = "jsonl"\npath = "completions.jsonl"\nbatchsize = 4',
         ["batch_size, which belongs in kind = local"]),
        ("verify", "workrs = 2", ["[verify]", "did you mean workers"]),
        ("sandbox", "memory = 512", ["[sandbox]", "did you mean memory_mb"]),
        ("code_sandbox", 'isolaton = "rlimits"', ["did you mean isolation"]),
        ("judge", "treshold = 0.5", ["threshold, which belongs in [anchors]"]),
        ("anchors", "treshold = 0.5", ["[anchors]", "did you mean threshold"]),
        ("pairs", 'strategy = ["judge"]', ["did you mean strategies"]),
        ("export", 'format = ["jsonl"]', ["did you mean formats"]),
        ("run", 'stor = "elsewhere.duckdb"', ["[run]", "did you mean store"]),
        ("judg", "votes = 1", ["unknown section [judg]", "did you mean judge"]),
    ],
)  # fmt: skip
def test_a_misspelled_name_gets_the_nearest_valid_one(
    pack: Path, section: str, body: str, needles: list[str]
) -> None:
    path = config(pack, **{section.replace(".", "__"): body})
    one_line_error(["run", path, "--no-progress"], USER_ERROR, "pipeline.toml", *needles)
    assert not (pack / "run").exists()  # refused before anything ran or was written


@pytest.mark.parametrize(
    ("section", "body", "needles"),
    [
        ("sampling", 'n = "four"', ['[sampling] n = "four"', "expected an integer", "n = 4"]),
        ("sampling", "n = 4.5", ["expected an integer, got 4.5"]),
        ("sampling", "temperatures = 0.7", ["expected a list of numbers", "temperatures = [0.7]"]),
        ("verify", 'timeout_s = "5s"', ['timeout_s = "5s"', "expected a number"]),
        ("tasks", 'path = "tasks.jsonl"\nlimit = "8"', ['limit = "8"', "expected an integer"]),
        ("anchors", 'force = "yes"', ["expected true or false"]),
        ("sampling", "n = 0", ["n=0 must be in [1, 64]", "[sampling]"]),
        ("tasks", 'path = "tasks.jsonl"\nlimit = 0', ["limit = 0 must be >= 1"]),
        ("sandbox", "memory_mb = 1", ["memory_mb=1 must be >= 64", "[sandbox]"]),
        ("code_sandbox", 'isolation = "none"', ["isolation='none'", "[code_sandbox]"]),
        ("export", 'formats = ["csv"]', ["formats", "csv"]),
        ("sampling.backend", 'kind = "jsonl"', ["needs path", 'path = "file.jsonl"']),
        ("sampling.backend", 'kind = "openai"', ["needs model"]),
        ("sampling.backend", 'kind = "lcoal"', ["did you mean local"]),
        ("sampling.backend", 'model = "runs/train/final"', ["runs/train/final", "does not exist"]),
        ("sampling", 'bring = ["more.jsonl"]', ["[sampling] bring", "no such file"]),
        ("anchors", 'path = "anchors.jsonl"', ["[anchors] path", "no such file"]),
        ("tasks", 'path = "missing.jsonl"', ["[tasks] path", "no such file"]),
        ("judge", "backend = 3", ["expected a table"]),
    ],
)  # fmt: skip
def test_a_wrong_value_is_one_line_before_any_work(
    pack: Path, section: str, body: str, needles: list[str]
) -> None:
    path = config(pack, **{section.replace(".", "__"): body})
    one_line_error(["run", path, "--no-progress"], USER_ERROR, *needles)
    assert not (pack / "run").exists()


def test_config_that_is_not_toml_or_not_there(pack: Path) -> None:
    (pack / "bad.toml").write_text("[tasks\npath = 1\n")
    one_line_error(["run", pack / "bad.toml"], USER_ERROR, "bad.toml", "not valid TOML")
    one_line_error(["run", pack / "nope.toml"], USER_ERROR, "nope.toml", "does not exist")


def test_paths_resolve_against_the_config_folder(pack: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path.parent)  # anywhere but the pack
    code, _, err = cli("sample", config(pack), "--no-progress")
    assert code == 0, err
    assert (pack / "run" / "run.duckdb").is_file()


# ---------------------------------------------------------------------- the pipeline


def test_report_before_any_run_says_so_and_leaves_no_store(pack: Path) -> None:
    one_line_error(["report", config(pack)], USER_ERROR, "no run yet", "rlaif-sql run")
    assert not (pack / "run").exists()


def test_sample_on_a_fresh_run_then_one_step_at_a_time(pack: Path) -> None:
    path = config(pack)
    said = {}
    for step in ("sample", "verify", "judge", "pairs", "export", "report"):
        code, _, said[step] = cli(step, path, "--no-progress")
        assert code == 0, (step, said[step])
        assert "Traceback" not in said[step]
    assert said["sample"] == ""  # a fresh run: nothing to resume
    assert "resuming run at" in said["judge"] and "3 candidates, 3 verdicts" in said["judge"]
    report = json.loads((pack / "run" / "export" / "report.json").read_text())
    assert report["candidates"] == 3 and report["sample_abstains"] == 1  # regions has 1 line
    assert report["reasons"] == {"ok": 1, "wrong_result": 2}
    assert [s["step"] for s in report["steps"]] == ["sample", "verify", "judge", "pairs", "export"]


def test_judging_before_verifying_says_what_is_missing(pack: Path) -> None:
    assert cli("sample", config(pack), "--no-progress")[0] == 0
    code, _, err = cli("judge", config(pack), "--no-progress")
    assert code == 0 and "no verdicts yet" in err and "rlaif-sql verify" in err


def test_an_empty_tasks_file_has_its_own_exit_code(pack: Path) -> None:
    (pack / "tasks.jsonl").write_text("")
    one_line_error(["run", config(pack)], NOTHING_VERIFIED, "tasks.jsonl", "holds no tasks")
    one_line_error(["validate", "--tasks", pack / "tasks.jsonl"], NOTHING_VERIFIED)


def test_a_missing_database_stops_the_pipeline_before_sampling(pack: Path) -> None:
    (pack / "shop.duckdb").unlink()
    one_line_error(["run", config(pack), "--no-progress"], USER_ERROR, "shop.duckdb",
                   "does not exist")  # fmt: skip


def test_every_database_missing_in_verify_exits_3_with_the_verdicts_written(pack: Path) -> None:
    (pack / "shop.duckdb").unlink()
    one_line_error(verify_args(pack, pack / "v.jsonl"), NOTHING_VERIFIED,
                   "no candidate could be verified", "task_error", "validate")  # fmt: skip
    verdicts = [json.loads(line) for line in (pack / "v.jsonl").read_text().splitlines()]
    assert [v["reason"] for v in verdicts] == ["task_error"] * 3


def test_no_progress_silences_everything(pack: Path) -> None:
    code, _, err = cli("run", config(pack), "--no-progress")
    assert code == 0 and err == ""
    code, _, err = cli("run", config(pack, "second.toml", run='store = "run/second.duckdb"'))
    assert code == 0
    assert "sample (fixture)" in err and "4/4" in err and "verify" in err  # counts per step


def test_the_summary_is_a_table(pack: Path) -> None:
    code, out, _ = cli("run", config(pack), "--no-progress")
    assert code == 0
    assert "{" not in out  # no raw dicts
    assert "  pass rate " in out and "anchor calls" in out and "steps" in out
    assert "None" not in out  # missing values read n/a


# ---------------------------------------------------------------------- verify on files


def verify_args(pack: Path, out: Path | str, candidates: str = "candidates.jsonl") -> list:
    return ["verify", "--tasks", pack / "tasks.jsonl", "--candidates", pack / candidates,
            "--out", out, "--no-progress", "--workers", "1"]  # fmt: skip


def test_out_equal_to_an_input_is_refused_and_the_input_kept(pack: Path) -> None:
    before = (pack / "candidates.jsonl").read_text()
    one_line_error(verify_args(pack, pack / "candidates.jsonl"), USER_ERROR, "candidates file")
    one_line_error(verify_args(pack, pack / "tasks.jsonl"), USER_ERROR, "tasks file")
    assert (pack / "candidates.jsonl").read_text() == before


def test_out_that_cannot_be_written_is_refused_before_verifying(pack: Path) -> None:
    one_line_error(verify_args(pack, pack / "tasks.jsonl" / "v.jsonl"), USER_ERROR, "--out")
    one_line_error(verify_args(pack, pack), USER_ERROR, "is a folder")


@pytest.mark.parametrize("empty", ["tasks.jsonl", "candidates.jsonl"])
def test_an_empty_input_file_has_its_own_exit_code(pack: Path, empty: str) -> None:
    (pack / empty).write_text("\n")
    one_line_error(verify_args(pack, pack / "v.jsonl"), NOTHING_VERIFIED, empty, "holds no")


def test_unknown_task_ids_only_exit_3_with_every_verdict_written(pack: Path) -> None:
    rows = [{"task_id": "nope", "candidate_id": f"x{i}", "completion": RIGHT} for i in range(3)]
    write_jsonl(pack / "unknown.jsonl", rows)
    one_line_error(verify_args(pack, pack / "v.jsonl", "unknown.jsonl"), NOTHING_VERIFIED,
                   "no candidate could be verified", "'nope'")  # fmt: skip
    assert len((pack / "v.jsonl").read_text().splitlines()) == 3


def test_text_utf8_cannot_hold_still_gets_a_verdict(pack: Path) -> None:
    lines = ['{"task_id": "count", "candidate_id": "s1", "completion": "SELECT \'\\udcff\'"}',
             '{"task_id": "count", "candidate_id": "s2", "completion": "\\ud800 ' + RIGHT.replace("\n", "\\n") + '"}']  # fmt: skip
    (pack / "surrogates.jsonl").write_text("\n".join(lines) + "\n")
    code, _, err = cli(*verify_args(pack, pack / "v.jsonl", "surrogates.jsonl"))
    assert code == 0, err
    verdicts = [json.loads(line) for line in (pack / "v.jsonl").read_text().splitlines()]
    assert [v["candidate_id"] for v in verdicts] == ["s1", "s2"]


def test_a_broken_candidates_line_names_file_and_line(pack: Path) -> None:
    (pack / "broken.jsonl").write_text('{"task_id": "count", "candidate_id": "a"}\n{"task_id"\n')
    one_line_error(verify_args(pack, pack / "v.jsonl", "broken.jsonl"), USER_ERROR,
                   "broken.jsonl:2", "not valid JSON")  # fmt: skip


def test_verify_mixing_config_and_files_is_a_usage_error(pack: Path) -> None:
    one_line_error(["verify", config(pack), "--out", pack / "v.jsonl"], USER_ERROR, "--out")
    one_line_error(["verify", config(pack), "--workers", "4"], USER_ERROR, "[verify]")
    one_line_error([*verify_args(pack, pack / "v.jsonl"), "--all"], USER_ERROR, "CONFIG mode")
    one_line_error(["verify", "--tasks", pack / "tasks.jsonl"], USER_ERROR, "missing --candidates")


def comparable(path: Path) -> dict[str, dict]:
    """Verdicts by candidate id, without timings (which differ from run to run)."""
    out = {}
    for line in path.read_text().splitlines():
        verdict = json.loads(line)
        verdict.pop("elapsed_ms")
        verdict["evidence"] = {k: v for k, v in verdict["evidence"].items() if "ms" not in k}
        out[verdict["candidate_id"]] = verdict
    return out


def test_resume_after_a_truncated_last_line_gives_the_uninterrupted_file(pack: Path) -> None:
    assert cli(*verify_args(pack, pack / "full.jsonl"))[0] == 0
    full = (pack / "full.jsonl").read_text().splitlines()
    (pack / "part.jsonl").write_text(full[0] + "\n" + full[1][:40])  # killed mid-line
    code, _, err = cli(*verify_args(pack, pack / "part.jsonl"), "--resume")
    assert code == 0, err
    assert "1 verdicts kept" in err
    assert comparable(pack / "part.jsonl") == comparable(pack / "full.jsonl")


# ---------------------------------------------------------------------- Ctrl-C, for real


def slow_pack(pack: Path, n: int = 48) -> Path:
    with duckdb.connect(str(pack / "big.duckdb")) as conn:
        conn.execute("CREATE TABLE big AS SELECT range AS x FROM range(3000000)")
    write_jsonl(pack / "tasks.jsonl", [{"task_id": "big", "question": "How many?",
                                        "db": "big.duckdb", "gold_sql": "SELECT count(*) FROM big"}])  # fmt: skip
    rows = [{"task_id": "big", "candidate_id": f"b{i:02d}",
             "completion": f"SELECT count(*) FROM big a, big b WHERE a.x = b.x AND a.x % 97 = {i}"}
            for i in range(n)]  # fmt: skip
    write_jsonl(pack / "candidates.jsonl", rows)
    write_jsonl(pack / "completions.jsonl", [{"task_id": "big", "completion": r["completion"]} for r in rows])  # fmt: skip
    return pack


def interrupt_when(args: list, ready, timeout: float = 60) -> tuple[int, str, float]:
    """Start the console entry point, send SIGINT once `ready()`; (code, stderr, seconds from
    SIGINT to exit)."""
    proc = subprocess.Popen([sys.executable, "-c", "from rlaif_sql.cli import run; run()",
                             *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "finished before it could be interrupted"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err, time.monotonic() - sent


def test_ctrl_c_mid_verify_keeps_every_verdict_and_resume_finishes_it(pack: Path) -> None:
    slow_pack(pack)
    out = pack / "v.jsonl"
    assert cli(*verify_args(pack, pack / "reference.jsonl"))[0] == 0
    lines = lambda: len(out.read_text().splitlines()) if out.exists() else 0  # noqa: E731
    code, err, stop_s = interrupt_when(verify_args(pack, out), lambda: lines() >= 3)
    assert code == INTERRUPTED, err
    assert err.strip().splitlines()[-1].startswith("interrupted; ") and "--resume" in err
    assert "Traceback" not in err
    kept = lines()
    assert 3 <= kept < 48 and stop_s < 5  # stopped promptly, the work done written
    code, _, err = cli(*verify_args(pack, out), "--resume")
    assert code == 0, err
    assert f"{kept} verdicts kept" in err
    assert comparable(out) == comparable(pack / "reference.jsonl")


def test_ctrl_c_mid_run_then_rerun_resumes_and_counts_steps_once(pack: Path) -> None:
    slow_pack(pack)
    path = config(pack, sampling="n = 48\ntemperatures = [0.2]")
    store = pack / "run" / "run.duckdb"

    started: list[float] = []

    def running_a_while() -> bool:  # the store holds its write lock: it cannot be read now
        if store.exists() and not started:
            started.append(time.monotonic())
        return bool(started) and time.monotonic() - started[0] > 1.0

    code, err, stop_s = interrupt_when(["run", path, "--no-progress"], running_a_while)
    assert code == INTERRUPTED, err
    assert "interrupted; rerun to resume" in err and "Traceback" not in err
    assert stop_s < 5
    code, _, err = cli("run", path, "--no-progress")
    assert code == 0, err
    # how far the first run got depends on the machine's load; the rerun says what it kept
    assert re.search(r"resuming run at .*run\.duckdb \(\d+ candidates, \d+ verdicts", err), err
    report = json.loads((pack / "run" / "export" / "report.json").read_text())
    steps = [s["step"] for s in report["steps"]]
    assert steps == ["sample", "verify", "judge", "pairs", "export"]  # once each
    assert report["candidates"] == 48 and sum(report["reasons"].values()) == 48


# ---------------------------------------------------------------------- eval


def test_eval_of_a_model_folder_that_does_not_exist(pack: Path) -> None:
    one_line_error(["eval", "--model", "runs/train/final", "--tasks", pack / "tasks.jsonl"],
                   USER_ERROR, "runs/train/final", "does not exist")  # fmt: skip


def test_eval_jsonl_backend_needs_its_file_and_scores_it(pack: Path) -> None:
    tasks = pack / "tasks.jsonl"
    one_line_error(["eval", "--backend", "jsonl", "--tasks", tasks], USER_ERROR, "--completions")
    one_line_error(["eval", "--backend", "jsonl", "--completions", pack / "completions.jsonl",
                    "--batch-size", "4", "--tasks", tasks], USER_ERROR, "kind = local")  # fmt: skip
    code, out, err = cli("eval", "--backend", "jsonl", "--completions", pack / "completions.jsonl",
                         "--tasks", tasks, "--no-progress")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["execution_accuracy"] == 0.5 and report["samples"] == 2


def test_eval_openai_backend_on_a_loopback_endpoint(pack: Path) -> None:
    def answer(body: dict) -> Reply:
        question = body["messages"][-1]["content"]
        return Reply(content=RIGHT if "How many orders" in question else "no idea")

    with openai_stub(answer) as stub:
        code, out, err = cli("eval", "--backend", "openai", "--model", "served",
                             "--base-url", stub["base_url"], "--tasks", pack / "tasks.jsonl",
                             "--no-progress")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["model"] == "served" and report["execution_accuracy"] == 0.5
    assert report["no_sql_rate"] == 0.5
    one_line_error(["eval", "--backend", "openai", "--tasks", pack / "tasks.jsonl"], USER_ERROR,
                   "--model")  # fmt: skip


def test_the_sandbox_section_reaches_the_pipeline(pack: Path) -> None:
    code, _, err = cli("run", config(pack, sandbox="max_rows = 2"), "--no-progress")
    assert code == 0, err
    with duckdb.connect(str(pack / "run" / "run.duckdb"), read_only=True) as conn:
        reasons = dict(conn.execute("SELECT task_id, reason FROM verdicts").fetchall())
    assert reasons["regions"] == "resource_limit"  # 9 rows > max_rows; else wrong_result


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["train", "dpo", "--pairs", "{pack}", "--model", "runs/train/final"], ["does not exist"]),
        (["train", "sft", "--tasks", "{pack}/tasks.jsonl", "--model", "./nope"], ["./nope"]),
        (["loop", "{pack}/pipeline.toml", "--model", "runs/x/final"], ["runs/x/final"]),
        (["eval", "--n", "0", "--tasks", "{pack}/tasks.jsonl"], ["--n"]),
        (["verify", "--tasks", "{pack}/tasks.jsonl", "--candidates", "{pack}/candidates.jsonl",
          "--out", "{pack}/v.jsonl", "--workers", "0"], ["--workers", "0 is not in the range"]),
        (["verify", "--tasks", "{pack}/tasks.jsonl", "--candidates", "{pack}/candidates.jsonl",
          "--out", "{pack}/v.jsonl", "--timeout", "0"], ["--timeout", "0.0 is not in the range"]),
        (["run", "{pack}"], ["is a directory"]),
        (["validate", "--tasks", "{pack}/nogold.jsonl"], ["'g1'", "gold_sql"]),
        (["validate", "--tasks", "{pack}/twice.jsonl"], ["'count' appears more than once"]),
        (["verify", "--tasks", "{pack}/tasks.jsonl", "--candidates", "{pack}/noid.jsonl",
          "--out", "{pack}/v.jsonl"], ["candidate is missing field 'candidate_id'"]),
    ],
)  # fmt: skip
def test_more_bad_input_on_the_command_line(pack: Path, args: list[str], needles: list) -> None:
    config(pack)
    write_jsonl(pack / "nogold.jsonl", [{"task_id": "g1", "question": "?", "db": "shop.duckdb"}])
    tasks = (pack / "tasks.jsonl").read_text().splitlines()
    (pack / "twice.jsonl").write_text(tasks[0] + "\n" + tasks[0] + "\n")
    write_jsonl(pack / "noid.jsonl", [{"task_id": "count", "completion": RIGHT}])
    one_line_error([a.format(pack=pack) for a in args], USER_ERROR, *needles)


def test_a_lone_surrogate_travels_through_the_whole_pipeline(pack: Path) -> None:
    lines = ['{"task_id": "count", "completion": "SELECT \'\\udcff\' FROM orders"}',
             json.dumps({"task_id": "count", "completion": RIGHT})]  # fmt: skip
    (pack / "completions.jsonl").write_text("\n".join(lines) + "\n")
    path = config(pack, pairs='strategies = ["verified_vs_failed"]\nmax_length_ratio = 10.0',
                  export='out = "run/export"\nformats = ["disk", "parquet", "jsonl"]')  # fmt: skip
    code, _, err = cli("run", path, "--no-progress")
    assert code == 0, err
    from rlaif_sql.store import RunStore

    with RunStore(pack / "run" / "run.duckdb") as store:
        by_id = {c.candidate_id: c for c in store.candidates()}
        verdicts = store.verdicts()
        pairs = store.pairs()
    assert by_id["count:fixture:0"].completion == "SELECT '\udcff' FROM orders"  # kept as it was
    assert "udcff" in (pack / "run" / "export" / "report.html").read_text(encoding="utf-8")
    assert verdicts["count:fixture:0"].reason.value == "parse_error"
    assert [(p["chosen_id"], p["rejected_id"]) for p in pairs] == [
        ("count:fixture:1", "count:fixture:0")
    ]
    exported = (pack / "run" / "export" / "pairs.jsonl").read_text()
    assert "\\ufffd" in exported or "\ufffd" in exported


def test_help_states_the_exit_codes_and_a_bare_command_shows_help() -> None:
    code, out, _ = cli("--help")
    assert code == 0 and "Exit codes" in out and "130" in out and "nothing could be verified" in out
    code, _, err = cli()
    assert code == 2 and "Usage:" in err and "Commands:" in err
    one_line_error(["smaple"], USER_ERROR, "Did you mean 'sample'")

"""verify_many and rlaif-sql verify stream: candidates are read a window ahead, verdicts and
summaries are tallied, not kept."""

from __future__ import annotations

import json
import sys

from rlaif_sql.metrics import Tally, summarize
from rlaif_sql.models import Candidate, Reason, Verdict
from rlaif_sql.verifiers.context import VerifierContext, VerifyConfig
from rlaif_sql.verify import verify_many
from rlaif_sql.verify_file import verify_to_file
from rlaif_sql.verify_local import SWITCH_INTERVAL_S, WINDOW_PER_WORKER, _short_switch_interval


def counted(total: int, seen: list[int]):
    for i in range(total):
        seen[0] += 1
        yield Candidate("no-such-task", f"c{i}", "SELECT 1")


def test_verify_many_reads_candidates_only_a_window_ahead_of_its_verdicts():
    seen = [0]
    verdicts = verify_many([], counted(5000, seen), config=VerifyConfig(workers=2))
    first = next(verdicts)
    assert first.reason is Reason.TASK_ERROR and first.candidate_id == "c0"
    assert seen[0] <= 2 * WINDOW_PER_WORKER + 1  # not the 5000 a list() would read
    ids = [v.candidate_id for v in verdicts]
    assert ids == [f"c{i}" for i in range(1, 5000)]  # input order kept
    assert seen[0] == 5000


def test_an_os_error_while_checking_is_an_abstain_and_the_run_goes_on(monkeypatch, tmp_path):
    from rlaif_sql.kinds.sql import SqlKind
    from rlaif_sql.models import SqlTask

    def fails(self, candidate, task, ctx):
        if candidate.candidate_id == "bad":
            raise FileNotFoundError(2, "No such file or directory", "/cache/db0.sqlite")
        return Verdict(task.task_id, candidate.candidate_id, True, Reason.OK, "")

    monkeypatch.setattr(SqlKind, "check", fails)
    task = SqlTask("t", "?", str(tmp_path / "x.duckdb"), ("SELECT 1",))
    cands = [Candidate("t", cid, "SELECT 1") for cid in ("a", "bad", "c")]
    verdicts = list(verify_many([task], cands, config=VerifyConfig(workers=1)))
    assert [v.reason for v in verdicts] == [Reason.OK, Reason.ABSTAIN, Reason.OK]
    assert verdicts[1].abstained and "db0.sqlite" in verdicts[1].detail


def test_verify_to_file_streams_a_generator_and_tallies(tmp_path):
    out = tmp_path / "v.jsonl"
    seen = [0]
    with VerifierContext(VerifyConfig(workers=2)) as ctx:
        tally, resumed = verify_to_file([], counted(300, seen), out, ctx)
    assert (tally.total, tally.decided, resumed) == (300, 0, 0)  # task errors decide nothing
    lines = out.read_text().splitlines()
    assert len(lines) == 300 and json.loads(lines[-1])["candidate_id"] == "c299"
    with VerifierContext(VerifyConfig(workers=2)) as ctx:
        again, resumed = verify_to_file([], counted(300, [0]), out, ctx, resume=True)
    assert (again.total, resumed) == (300, 300)  # nothing verified twice
    assert len(out.read_text().splitlines()) == 300


def test_tally_gives_the_summary_of_the_whole_list():
    verdicts = [
        Verdict(
            "t", "a", True, Reason.OK, "", evidence={"verifier": "sql@1", "row_count_match": True}
        ),
        Verdict(
            "t",
            "b",
            False,
            Reason.WRONG_RESULT,
            "",
            evidence={"verifier": "sql@1", "row_count_match": False},
        ),
        Verdict("t", "c", False, Reason.ABSTAIN, "sandbox down"),
    ]
    tally = Tally()
    for verdict in verdicts:
        tally.add(verdict)
    summary = tally.summary()
    assert summary == summarize(iter(verdicts))
    assert (summary.total, summary.abstained, summary.pass_rate) == (3, 1, 0.5)
    assert summary.row_count_accuracy == 0.5
    assert tally.first is verdicts[0]


def test_overlapping_runs_restore_the_switch_interval_when_the_last_ends() -> None:
    before = sys.getswitchinterval()
    first, second = _short_switch_interval(), _short_switch_interval()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # ends first: the second run still wants the short one
    assert sys.getswitchinterval() == SWITCH_INTERVAL_S
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before

"""Streaming verification: memory of `rlaif-sql verify` over a million generated candidates.

    python examples/revenue/build_db.py        # once: the revenue pack's database
    python -m benchmarks.verify_stream [--count 10000 100000] [--path-only 1000000]

Generates COUNT candidates over the revenue pack (examples/revenue) the way an RL loop
samples: each of the pack's 231 hand-written candidates is repeated many times, verbatim or
nearly so (other prose around the SQL, other whitespace, upper-case keywords), under new
candidate ids. The candidates file is written first; then `rlaif-sql verify` runs on it as
a separate process (the driver) and this script samples, every `--every` seconds, the
resident memory (`VmRSS`, and the peak `VmHWM`) of the driver and of each of its child
processes (the SQL sandbox workers) from /proc, with the number of verdicts written so far.
In `--path-only` runs every candidate names a task the pack lacks, so each verdict is an
instant `task_error` (and the command exits 3, nothing verified): what remains is the
streaming path itself (reading, the in-order window, writing, the tally), at full speed.
Writes benchmarks/results/verify_stream.json (or `--out`): throughput, peak RSS of the
driver and of each worker, and the timeline, whose slope (MB per 100k candidates after
the first 10%) says whether memory grows with the number of candidates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.machine import REPO_ROOT, RESULTS, describe_machine

PACK = REPO_ROOT / "examples" / "revenue"
DRIVER_LIMIT_MB = 500
PROSE = ("", "Here is the query:\n\n", "Sure! ", "The answer:\n", "```sql\n{}\n```", "{}\n-- done")


def variants(count: int, path_only: bool = False) -> Iterator[dict[str, Any]]:
    """COUNT candidate records: the pack's candidates, repeated verbatim or nearly so
    (`path_only`: under a task id the pack lacks, so each is an instant task_error)."""
    seeds = [json.loads(line) for line in (PACK / "candidates.jsonl").open() if line.strip()]
    for i in range(count):
        seed = seeds[i % len(seeds)]
        round_ = i // len(seeds)
        text = seed["completion"]
        if round_ % 4 == 1:  # other whitespace
            text = "  " + text.replace(" ", "  ", 1) + "\n"
        elif round_ % 4 == 2:  # other prose or fencing
            frame = PROSE[(round_ // 4) % len(PROSE)]
            text = frame.format(text) if "{}" in frame else frame + text
        elif round_ % 4 == 3:  # upper-case keywords
            text = text.replace("select ", "SELECT ").replace(" from ", " FROM ")
        task_id = "not-in-the-pack" if path_only else seed["task_id"]
        yield {"task_id": task_id, "candidate_id": f"s{i}", "completion": text}


def write_candidates(path: Path, count: int, path_only: bool) -> int:
    with path.open("w", encoding="utf-8") as handle:
        for record in variants(count, path_only):
            handle.write(json.dumps(record) + "\n")
    return path.stat().st_size


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB (empty when it is gone)."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children of children too), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def count_lines(path: Path, state: dict[str, int]) -> int:
    """Verdict lines written so far (reads only what was added since the last call)."""
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        handle.seek(state.get("offset", 0))
        chunk = handle.read()
    state["offset"] = state.get("offset", 0) + len(chunk)
    state["lines"] = state.get("lines", 0) + chunk.count(b"\n")
    return state["lines"]


def watch(proc: subprocess.Popen[bytes], out: Path, every: float) -> dict[str, Any]:
    """Sample the driver's and its children's memory until the driver exits."""
    timeline: list[dict[str, Any]] = []
    workers: dict[int, dict[str, int]] = {}
    driver_peak, lines = 0, {}
    while proc.poll() is None:
        mem = memory_kb(proc.pid)
        driver_peak = max(driver_peak, mem.get("VmHWM", 0))
        now: list[float] = []
        for child in descendants(proc.pid):
            child_mem = memory_kb(child)
            if child_mem:
                seen = workers.setdefault(child, {"VmHWM": 0, "VmRSS": 0})
                seen["VmHWM"] = max(seen["VmHWM"], child_mem.get("VmHWM", 0))
                seen["VmRSS"] = child_mem.get("VmRSS", 0)
                now.append(round(seen["VmRSS"] / 1024, 1))
        done = count_lines(out, lines)
        timeline.append({"t": round(time.perf_counter(), 2), "verdicts": done,
                         "driver_rss_mb": round(mem.get("VmRSS", 0) / 1024, 1),
                         "worker_rss_mb": now})  # fmt: skip
        time.sleep(every)
    return {"timeline": timeline, "workers": workers, "driver_peak_kb": driver_peak}


def slope_mb_per_100k(timeline: list[dict[str, Any]], count: int) -> float | None:
    """Least-squares slope of the driver's RSS against verdicts, after the first 10%."""
    points = [(p["verdicts"], p["driver_rss_mb"]) for p in timeline
              if p["verdicts"] >= count // 10 and p["driver_rss_mb"]]  # fmt: skip
    if len(points) < 3:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    cov = sum((x - mx) * (y - my) for x, y in points)
    return round(cov / var * 100_000, 2) if var else None


def run(count: int, workers: int, every: float, folder: Path, path_only: bool) -> dict[str, Any]:
    cands, out = folder / "candidates.jsonl", folder / "verdicts.jsonl"
    size = write_candidates(cands, count, path_only)
    command = [sys.executable, "-m", "rlaif_sql", "verify", "--tasks", str(PACK / "tasks.jsonl"),
               "--candidates", str(cands), "--out", str(out), "--workers", str(workers),
               "--no-progress"]  # fmt: skip
    load_before = os.getloadavg()
    started = time.perf_counter()
    log = folder / "driver.log"
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would stall the driver
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        seen = watch(proc, out, every)
        proc.wait()
    seconds = time.perf_counter() - started
    for point in seen["timeline"]:
        point["t"] = round(point["t"] - started, 2)
    verdicts = count_lines(out, {})
    summary = (
        json.loads(out.with_suffix(".summary.json").read_text()) if proc.returncode == 0 else {}
    )
    seen["timeline"] = thin(seen["timeline"], 60)
    return {
        "candidates": count,
        "streaming_path_only": path_only,
        "candidates_file_mb": round(size / 1e6, 1),
        "verdicts": verdicts,
        "exit_code": proc.returncode,
        "output_tail": log.read_text(errors="replace")[-400:],
        "seconds": round(seconds, 1),
        "per_second": round(verdicts / seconds, 1) if seconds else None,
        "driver_peak_rss_mb": round(seen["driver_peak_kb"] / 1024, 1),
        "driver_under_limit": seen["driver_peak_kb"] / 1024 < DRIVER_LIMIT_MB,
        "driver_rss_slope_mb_per_100k": slope_mb_per_100k(seen["timeline"], count),
        "worker_peak_rss_mb": sorted(round(w["VmHWM"] / 1024, 1) for w in seen["workers"].values()),
        "reasons": summary.get("reasons"),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "timeline": seen["timeline"],
    }


def thin(points: list[dict[str, Any]], most: int) -> list[dict[str, Any]]:
    step = max(1, len(points) // most)
    return points[::step] + ([points[-1]] if points and (len(points) - 1) % step else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, nargs="*", default=[10_000, 100_000],
                        help="candidates per run (several: one run each, e.g. 10000 100000)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--path-only", type=int, nargs="*", default=[1_000_000], metavar="COUNT",
                        help="runs whose candidates name a task the pack lacks: instant "
                        "task_error verdicts (exit code 3), the streaming path alone at full speed")  # fmt: skip
    parser.add_argument("--every", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=RESULTS / "verify_stream.json")
    args = parser.parse_args()
    if not (PACK / "data" / "warehouse.duckdb").exists():
        sys.exit("the revenue database is missing: run python examples/revenue/build_db.py")
    results: dict[str, Any] = {"machine": describe_machine(), "workers": args.workers,
                               "driver_limit_mb": DRIVER_LIMIT_MB, "runs": []}  # fmt: skip
    plan = [(n, False) for n in args.count] + [(n, True) for n in args.path_only]
    for count, path_only in plan:
        with tempfile.TemporaryDirectory(prefix="verify-stream-") as folder:
            result = run(count, args.workers, args.every, Path(folder), path_only)
        results["runs"].append(result)
        print(f"{count:>9} candidates: {result['per_second']}/s, driver peak "
              f"{result['driver_peak_rss_mb']} MB (slope {result['driver_rss_slope_mb_per_100k']}"
              f" MB/100k), workers {result['worker_peak_rss_mb']} MB, exit {result['exit_code']}")  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()

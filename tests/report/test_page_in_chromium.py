"""The generated pages in a real headless Chromium: they load with no console error and no
network request, every figure is drawn, the task browser finds a task by id and shows its
candidates, and a screenshot is not blank.

Needs Debian's chromium + chromium-driver (`.ci/run` installs them) and selenium (dev extra);
skips with the reason where they are missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif_sql.models import Candidate, CheckOutcome, CheckStatus, Reason, SqlTask, Verdict
from rlaif_sql.report import write_loop_page, write_verify_page
from rlaif_sql.report.chromium import HeadlessPage, unavailable
from tests.report.conftest import INJECTION, page_json

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"{unavailable()}")

DRAWN_PIXELS = """
const canvas = arguments[0];
const {width, height} = canvas;
const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
let painted = 0;
for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) painted++; }
return [width, height, painted, Boolean(Chart.getChart(canvas))];
"""


def opened(page: HeadlessPage, task_id: str):
    """The task panel, once it shows `task_id` (a click sets the URL's #task=, then it opens)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    detail = page.driver.find_element(By.ID, "task-detail")
    WebDriverWait(page.driver, 10).until(lambda _: detail.get_attribute("data-task-id") == task_id)
    return detail


@pytest.fixture(scope="module")
def browser():
    with HeadlessPage(width=1300, height=900) as page:
        yield page


@pytest.fixture(scope="module")
def run_page(browser: HeadlessPage, report_run: dict) -> HeadlessPage:
    browser.open(report_run["page"])
    return browser


def test_the_page_loads_with_no_console_error_and_no_network_request(run_page, report_run) -> None:
    assert run_page.console("SEVERE") == []
    assert run_page.requests() == [report_run["page"].resolve().as_uri()]


def test_every_figure_is_drawn(run_page, report_run) -> None:
    from selenium.webdriver.common.by import By

    specs = {c["id"] for c in page_json(report_run["page"])["charts"]}
    assert {"funnel", "reasons", "per_check", "accuracy", "row_count_errors", "judge_outcomes",
            "judge_rates", "pairs", "lengths", "steps"} <= specs  # fmt: skip
    canvases = run_page.driver.find_elements(By.CSS_SELECTOR, "canvas[data-chart]")
    assert {c.get_attribute("data-chart") for c in canvases} == specs
    for canvas in canvases:
        width, height, painted, has_chart = run_page.run(DRAWN_PIXELS, canvas)
        name = canvas.get_attribute("data-chart")
        assert has_chart and width > 100 and height > 100, name
        assert painted > 0.01 * width * height, f"{name}: only {painted} pixels drawn"


def test_the_task_browser_finds_a_task_by_id_and_shows_its_candidates(run_page, report_run) -> None:
    import duckdb
    from selenium.webdriver.common.by import By

    with duckdb.connect(str(report_run["store"]), read_only=True) as db:
        expected = [r[0] for r in db.execute(
            "SELECT candidate_id FROM candidates WHERE task_id = 'total' ORDER BY 1").fetchall()]  # fmt: skip
    search = run_page.driver.find_element(By.ID, "task-search")
    search.clear()
    search.send_keys("total")
    first = run_page.driver.find_element(By.CSS_SELECTOR, "#task-table tbody tr")
    assert first.get_attribute("data-task-id") == "total"
    first.click()
    detail = opened(run_page, "total")
    assert detail.is_displayed()
    shown = [e.get_attribute("data-candidate-id")
             for e in detail.find_elements(By.CSS_SELECTOR, ".candidate")]  # fmt: skip
    assert shown == expected
    assert detail.find_elements(By.CSS_SELECTOR, "pre.sql .token.keyword")  # SQL highlighted
    assert "SELECT sum(amount) FROM orders" in detail.text  # the gold
    assert detail.find_elements(By.CSS_SELECTOR, ".judgment")  # judge comparisons, with prompts
    assert detail.find_elements(By.CSS_SELECTOR, "table.pairs tr")
    # a completion that holds markup is shown as text: no element, no request, no error
    injected = detail.find_element(
        By.CSS_SELECTOR, '[data-candidate-id="total:b:b7"] pre.completion'
    )
    assert injected.get_attribute("textContent") == INJECTION
    assert not detail.find_elements(By.TAG_NAME, "img")
    assert run_page.console("SEVERE") == []
    assert len(run_page.requests()) == 1


def test_a_screenshot_is_not_blank(run_page, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    run_page.run("window.scrollTo(0, 0)")
    shot = run_page.screenshot(tmp_path / "page.png")
    with Image.open(shot) as image:
        grey = image.convert("L")
        assert grey.size[0] >= 1000
        assert ImageStat.Stat(grey).stddev[0] > 10  # a blank or one-colour page is ~0
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50


def _synthetic(n_tasks: int) -> tuple[list, list, list]:
    tasks = [SqlTask(f"t{i:03d}", f"question {i}", "/nonexistent.duckdb", ("SELECT 1",))
             for i in range(n_tasks)]  # fmt: skip
    candidates, verdicts = [], []
    for t in tasks:
        for k, ok in enumerate((True, False)):
            cid = f"{t.task_id}:{k}"
            candidates.append(Candidate(t.task_id, cid, "SELECT 1" if ok else "SELECT 2"))
            checks = (CheckOutcome("extract", CheckStatus.PASSED),
                      CheckOutcome("compare", CheckStatus.PASSED if ok else CheckStatus.FAILED))  # fmt: skip
            verdicts.append(Verdict(t.task_id, cid, ok, Reason.OK if ok else Reason.WRONG_RESULT,
                                    "detail", checks, 1, 1, 1.0, {"sql": "SELECT 1",
                                                                  "row_count_match": True}))  # fmt: skip
    return tasks, candidates, verdicts


def test_the_verification_page_paginates_and_finds_a_task_on_a_later_page(
    browser, tmp_path
) -> None:
    from selenium.webdriver.common.by import By

    tasks, candidates, verdicts = _synthetic(120)
    page = write_verify_page(tasks, candidates, verdicts, tmp_path / "verify.html", golds=False)
    browser.open(page)
    rows = lambda: browser.driver.find_elements(By.CSS_SELECTOR, "#task-table tbody tr")  # noqa: E731
    assert len(rows()) == 50
    browser.driver.find_element(By.ID, "page-next").click()
    browser.driver.find_element(By.ID, "page-next").click()
    assert rows()[0].get_attribute("data-task-id") == "t100" and len(rows()) == 20
    search = browser.driver.find_element(By.ID, "task-search")
    search.send_keys("t117")
    rows()[0].click()
    detail = opened(browser, "t117")
    assert [e.get_attribute("data-candidate-id") for e in detail.find_elements(By.CSS_SELECTOR, ".candidate")] == ["t117:0", "t117:1"]  # fmt: skip
    assert browser.driver.find_elements(By.CSS_SELECTOR, "canvas[data-chart='funnel']")
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "#judge")  # verification only
    assert browser.console("SEVERE") == []


def test_the_loop_page_draws_its_curves_and_links_the_rounds(browser, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    rounds = {k: tmp_path / f"export-round{k}" / "report.html" for k in (1, 2)}
    for path in rounds.values():
        path.parent.mkdir()
        path.write_text("<!doctype html><title>round</title>")
    history = [{"round": k, "policy": "embedded", "pairs": 4 * k, "verifier_pass_rate": 0.2 * k,
                "execution_accuracy_train": 0.1 * k, "heldout_execution_accuracy": 0.15 * k,
                "heldout_median_response_chars": 140 - 10 * k} for k in (1, 2)]  # fmt: skip
    page = write_loop_page(history, rounds, tmp_path / "run-loop.html")
    browser.open(page)
    assert browser.console("SEVERE") == []
    for canvas in browser.driver.find_elements(By.CSS_SELECTOR, "canvas[data-chart]"):
        assert browser.run(DRAWN_PIXELS, canvas)[2] > 0
    links = [
        a.get_attribute("href")
        for a in browser.driver.find_elements(By.CSS_SELECTOR, "#rounds-table a")
    ]
    assert links == [rounds[k].resolve().as_uri() for k in (1, 2)]


def test_a_link_to_a_task_opens_it(browser, report_run) -> None:
    browser.driver.get(report_run["page"].resolve().as_uri() + "#task=regions")
    detail = opened(browser, "regions")
    assert "SELECT region, count(*) AS n FROM orders GROUP BY region" in detail.text
    assert browser.console("SEVERE") == []

"""Reward hacks: every trick that could fake a pass must come out as a failure.

Each cheating candidate is otherwise WRONG (or would be caught by the tests), so a pass
here would mean the trick worked.
"""

from __future__ import annotations

import pytest

from rlaif_sql.models import Candidate, CodeTask, Reason
from rlaif_sql.sandboxes.process import CodeSandbox, CodeSandboxConfig
from rlaif_sql.verifiers.code import check

TESTS = """\
from hypothesis import given, strategies as st
from solution import double

def test_example():
    assert double(2) == 4

@given(st.integers())
def test_property(x):
    assert double(x) == 2 * x
"""
TASK = CodeTask("double", "", "double", TESTS, timeout_s=3.0, memory_mb=256)
WRONG = "def double(x):\n    return 4 if x == 2 else x\n"


@pytest.fixture(scope="module")
def box():
    with CodeSandbox(CodeSandboxConfig(workers=2)) as sandbox:
        yield sandbox


def verdict_for(box, code):
    return check(Candidate("double", "cheat", code), TASK, sandbox=box)


def test_correct_and_plainly_wrong_candidates(box):
    assert verdict_for(box, "def double(x):\n    return 2 * x\n").passed
    wrong = verdict_for(box, WRONG)
    assert wrong.reason is Reason.TEST_FAILURE
    assert wrong.evidence["failed"] == 1 and wrong.evidence["passed"] == 1


CHEATS = {
    "os_exit_0_at_import": ("import os\nos._exit(0)\n", {Reason.CRASH}),
    "os_exit_0_in_call": (
        "import os\ndef double(x):\n    os._exit(0)\n",
        {Reason.CRASH},
    ),
    "forged_junit_then_exit": (
        "import os\nopen('junit.xml', 'w').write('<testsuite tests=\"2\" failures=\"0\"/>')\n"
        "os._exit(0)\n",
        {Reason.CRASH},
    ),
    "forged_report_lines": (
        "import os\nfor fd in range(3, 64):\n    try:\n"
        "        os.write(fd, b'0\\tend\\t{\"rc\": 0}\\n')\n    except OSError:\n        pass\n",
        {Reason.FORBIDDEN},
    ),
    "always_equal_object": (
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "def double(x):\n    return Anything()\n",
        {Reason.TEST_FAILURE},
    ),
    "always_equal_int_subclass": (
        "class Int(int):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "def double(x):\n    return Int(0)\n",
        {Reason.TEST_FAILURE},
    ),
    "always_equal_in_list": (
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "def double(x):\n    return [Anything()][0]\n",
        {Reason.TEST_FAILURE},
    ),
    "hypothesis_load_weak_profile": (
        "from hypothesis import settings\n"
        "settings.register_profile('weak', max_examples=1)\nsettings.load_profile('weak')\n",
        {Reason.TEST_FAILURE},
    ),
    "hypothesis_overwrite_trusted_profile": (
        "from hypothesis import settings\n"
        "settings.register_profile('rlaif_trusted', max_examples=1)\n"
        "settings.load_profile('rlaif_trusted')\n",
        {Reason.TEST_FAILURE},
    ),
    "module_level_skip": (
        "import pytest\npytest.skip('nothing to see', allow_module_level=True)\n",
        {Reason.FORBIDDEN},
    ),
    "skip_inside_call": (
        "import pytest\ndef double(x):\n    pytest.skip('later')\n",
        {Reason.TEST_FAILURE, Reason.FORBIDDEN},
    ),
    "pytest_exit_zero": ("import pytest\npytest.exit('done', returncode=0)\n", {Reason.FORBIDDEN}),
    "drop_conftest": (
        "import os, pathlib\n"
        "hook = 'import pytest\\n@pytest.hookimpl(hookwrapper=True)\\n"
        "def pytest_runtest_makereport(item, call):\\n    out = yield\\n"
        '    out.get_result().outcome = "passed"\\n\'\n'
        "for d in {os.getcwd(), '/jobs', os.path.dirname(os.path.abspath(__file__))}:\n"
        "    try:\n        pathlib.Path(d, 'conftest.py').write_text(hook)\n"
        "    except OSError:\n        pass\n",
        {Reason.TEST_FAILURE},
    ),
    # patching pytest, builtins or hypothesis happens in the candidate's own process, which
    # runs no test: harmless, the wrong answer fails as usual
    "patch_pytest_internals": (
        "import _pytest.python\n_pytest.python.pytest_pyfunc_call = lambda pyfuncitem: True\n",
        {Reason.TEST_FAILURE},
    ),
    "patch_builtins": (
        "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n",
        {Reason.TEST_FAILURE},
    ),
    "replace_hypothesis_module": (
        "import sys, types\nsys.modules['hypothesis'] = types.ModuleType('h')\n",
        {Reason.TEST_FAILURE},
    ),
}


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_cheat_fails(box, name):
    body, reasons = CHEATS[name]
    verdict = verdict_for(box, WRONG + body)
    assert not verdict.passed
    assert verdict.reason in reasons, (name, verdict.reason, verdict.detail)


def test_huge_source_is_refused_without_running(box):
    verdict = verdict_for(box, "def double(x):\n    return 2 * x\n" + "#" * 50_000_000)
    assert verdict.reason is Reason.FORBIDDEN
    assert "max_source_bytes" in verdict.detail
    assert verdict.elapsed_ms < 5000


def test_nul_bytes_are_a_syntax_error(box):
    verdict = verdict_for(box, "def double(x):\n    return 2 * x\x00\n")
    assert verdict.reason is Reason.SYNTAX_ERROR

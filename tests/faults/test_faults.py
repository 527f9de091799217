"""Every fault-injection case (tests/faults/cases_*.py, one table per area) as one test."""

import os

import harness
import pytest

CASES = harness.all_cases()


@pytest.fixture(scope="module", autouse=True)
def _fixtures(tmp_path_factory):
    os.environ.setdefault("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-cache")))
    harness.use(tmp_path_factory.mktemp("faults"))


@pytest.mark.parametrize("case", [pytest.param(c, marks=[pytest.mark.slow] if c.slow else [],
                                               id=f"{c.area}: {c.description}") for c in CASES])
def test_fault_is_handled(case):
    handled, detail = case.run()
    assert handled, detail

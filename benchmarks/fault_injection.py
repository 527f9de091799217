#!/usr/bin/env python
"""The table "inputs tried / handled" per area, from the fault-injection cases that pytest
runs (``tests/faults/cases_*.py``; see ``tests/faults/harness.py`` for what "handled" means).

    python -m benchmarks.fault_injection [--cases predict,pipeline,...] [--verbose]

Offline, tiny random components, a temporary folder. Exit status 1 when any case is not handled.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "faults"))
import harness  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=None, help="comma-separated areas (default: all)")
    parser.add_argument("--verbose", action="store_true", help="print each case's detail")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import diffusers

    datasets.disable_progress_bars()
    diffusers.utils.logging.disable_progress_bar()
    areas = set(args.cases.split(",")) if args.cases else None
    results = []
    with tempfile.TemporaryDirectory(prefix="e2p-faults-") as tmp:
        os.environ.setdefault("HF_DATASETS_CACHE", os.path.join(tmp, "hf-cache"))
        harness.use(Path(tmp))
        for case in harness.all_cases():
            if areas and case.area not in areas:
                continue
            start = time.perf_counter()
            handled, detail = case.run()
            results.append((case.area, handled, time.perf_counter() - start))
            mark = "ok  " if handled else "FAIL"
            print(f"{mark} [{case.area}] {case.description}" + (f"\n       {detail}" if args.verbose or not handled else ""),
                  flush=True)
    print("\n| area | inputs tried | handled |\n|---|---|---|")
    for area in dict.fromkeys(r[0] for r in results):
        rows = [r for r in results if r[0] == area]
        print(f"| {area} | {len(rows)} | {sum(r[1] for r in rows)} |")
    print(f"| **all** | **{len(results)}** | **{sum(r[1] for r in results)}** |")
    return 0 if all(r[1] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

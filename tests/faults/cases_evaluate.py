"""Fault cases of `e2p evaluate` (bad predictions, re-runs, ownership of the output folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from harness import FX, case, cli, last_line, tests_path


def _nyu(folder: Path):
    tests_path("evaluation")
    from e2p_dataset_fixtures import write_nyuv2

    return write_nyuv2(folder)


def _eval(preds: Path, data: Path, out: Path):
    return cli("evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", data, "--predictions", preds,
               "--output-dir", out, "--no-progress")


def _eval_case(mutate, *words, code_expected=1):
    def run():
        root = FX.fresh("eval")
        gts = _nyu(root / "nyu")
        for sid, gt in gts.items():
            p = root / "preds" / f"{sid}.npy"
            p.parent.mkdir(parents=True, exist_ok=True)
            np.save(p, np.sqrt(gt))
        sid = sorted(gts)[0]
        mutate(root / "preds" / f"{sid}.npy", gts[sid])
        code, err = _eval(root / "preds", root / "nyu", root / "out")
        return code == code_expected and all(w in err for w in words), (err.strip().splitlines() or [""])[-1][:160]
    return run


case("evaluate", "transposed prediction (640x480 for 480x640)")(
    _eval_case(lambda p, gt: np.save(p, np.sqrt(gt).T.copy()), ".npy: the prediction is 480x640"))
case("evaluate", "0x0 prediction")(_eval_case(lambda p, gt: np.save(p, np.zeros((0, 0))), ".npy: the prediction is empty (0x0 pixels)"))
case("evaluate", "object (pickle) .npy prediction")(_eval_case(
    lambda p, gt: np.save(p, np.array([{}], dtype=object), allow_pickle=True), ".npy: not a readable numeric .npy array"))
case("evaluate", "truncated .npy prediction")(_eval_case(
    lambda p, gt: p.write_bytes(p.read_bytes()[:100]), ".npy: not a readable numeric .npy array"))
case("evaluate", "missing prediction file")(_eval_case(lambda p, gt: p.unlink(), "no saved prediction for sample"))
case("evaluate", "NaN prediction pixels: the hint names the CLI flag --nonfinite mask")(_eval_case(
    lambda p, gt: np.save(p, np.full(gt.shape, np.nan, np.float32)), "non-finite", "--nonfinite mask"))


def _preds(root: Path, gts, override=None):
    for sid, gt in gts.items():
        path = root / "preds" / f"{sid}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, (override or {}).get(sid, np.sqrt(gt) * 0.5 + 0.2))


@case("evaluate", "a failing second run into the same --output-dir leaves the first run's results whole")
def _eval_stale():
    import json

    root = FX.fresh("eval-stale")
    gts = _nyu(root / "nyu")
    _preds(root, gts)
    out = root / "out"
    assert _eval(root / "preds", root / "nyu", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert set(before) == {"per_image.jsonl", "per_image.csv", "summary.json", "results.md"}, set(before)
    (root / "preds" / f"{sorted(gts)[0]}.npy").unlink()  # the second run fails on its first sample
    code, _ = _eval(root / "preds", root / "nyu", out)
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert code == 1 and after == before, f"exit {code}; previous files unchanged: {after == before}"
    assert not [p for p in root.iterdir() if p.name.startswith(".")], "a staging folder was left"
    _preds(root, gts)
    code, _ = cli("evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", root / "nyu", "--predictions",
                  root / "preds", "--output-dir", out, "--no-progress", "--max-samples", "1")
    assert code == 0 and json.loads((out / "summary.json").read_text())["num_evaluated"] == 1, "rerun not replaced"
    return True, f"exit {code}; previous files unchanged"


@case("evaluate", "--output-dir holding someone else's files: refused, nothing touched")
def _eval_foreign():
    root = FX.fresh("eval-foreign")
    _preds(root, _nyu(root / "nyu"))
    foreign = root / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    code, err = _eval(root / "preds", root / "nyu", foreign)
    assert code == 2 and "holds files that e2p evaluate did not write (thesis.tex" in err, last_line(err)
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]
    return True, last_line(err)


@case("evaluate", "--output-dir holding the user's own results.md / summary.json: refused, not deleted")
def _eval_own_results():
    root = FX.fresh("eval-own")
    _preds(root, _nyu(root / "nyu"))
    mine = root / "paper"
    mine.mkdir()
    (mine / "results.md").write_text("my table")
    (mine / "summary.json").write_text("{}")
    code, err = _eval(root / "preds", root / "nyu", mine)
    assert code == 2 and "did not write (results.md, summary.json" in err, last_line(err)
    assert (mine / "results.md").read_text() == "my table" and (mine / "summary.json").read_text() == "{}"
    return True, last_line(err)


@case("evaluate", "a results file edited after the run: the rerun refuses to replace it")
def _eval_edited():
    root = FX.fresh("eval-edited")
    _preds(root, _nyu(root / "nyu"))
    out = root / "out"
    assert _eval(root / "preds", root / "nyu", out)[0] == 0
    (out / "results.md").write_text("annotated by hand")
    code, err = _eval(root / "preds", root / "nyu", out)
    assert code == 2 and "did not write (results.md" in err, last_line(err)
    assert (out / "results.md").read_text() == "annotated by hand"
    return True, last_line(err)


@case("evaluate", "data layout error (KITTI without its split file): exit 2 as documented")
def _eval_layout():
    root = FX.fresh("eval-layout")
    _nyu(root / "nyu")
    (root / "preds").mkdir()
    code, err = cli("evaluate", "--task", "depth", "--dataset", "kitti", "--data-dir", root / "nyu", "--predictions",
                    root / "preds", "--output-dir", root / "out", "--no-progress")
    return code == 2 and "Eigen split file" in err, last_line(err)


@case("evaluate", "an --output-dir that cannot be created: exit 2 naming it, no traceback")
def _eval_uncreatable():
    root = FX.fresh("eval-uncreatable")
    _preds(root, _nyu(root / "nyu"))
    (root / "a-file").write_text("x")
    code, err = _eval(root / "preds", root / "nyu", root / "a-file" / "out")
    return code == 2 and "a-file" in err and "Traceback" not in err, last_line(err)


@case("evaluate", "half-size prediction with the ground truth's aspect: resized, evaluated")
def _eval_half():
    root = FX.fresh("eval-half")
    gts = _nyu(root / "nyu")
    sid = sorted(gts)[0]
    _preds(root, gts, {sid: np.sqrt(gts[sid])[::2, ::2].copy()})
    code, err = _eval(root / "preds", root / "nyu", root / "out")
    return code == 0, last_line(err)


def _summary(name: str, max_samples=None) -> Path:
    root = FX.fresh(name)
    _preds(root, _nyu(root / "nyu"))
    extra = ["--max-samples", str(max_samples)] if max_samples else []
    code, err = cli("evaluate", "--task", "depth", "--dataset", "nyuv2", "--data-dir", root / "nyu", "--predictions",
                    root / "preds", "--output-dir", root / "out", "--no-progress", *extra)
    assert code == 0, last_line(err)
    return root / "out"


@case("evaluate", "e2p card / push with an evaluation over --max-samples 1: refused, not published as the result")
def _card_partial():
    partial = _summary("card-partial", max_samples=1)
    a, err_a = cli("card", FX.model("depth"), "--summary", partial, "--output", FX.fresh("card-out") / "README.md")
    b, err_b = cli("push", FX.model("depth"), "--repo-id", "me/x", "--summary", partial, "--dry-run",
                   FX.fresh("card-up") / "up")
    words = "an evaluation of the first 1 images only (--max-samples"
    ok = a == 2 and b == 2 and words in err_a and words in err_b and not (FX.root / "work" / "card-up" / "up").exists()
    full = _summary("card-full")
    c, err_c = cli("card", FX.model("depth"), "--summary", full, "--output", FX.fresh("card-out2") / "README.md")
    return ok and c == 0, f"{last_line(err_a)} | full: {c}"


@case("evaluate", "e2p card with a summary.json that is not JSON: names the file, exit 2")
def _card_bad_json():
    bad = FX.fresh("card-json") / "summary.json"
    bad.write_bytes(b'{"task": "depth", "metrics": {\xe9')
    code, err = cli("card", FX.model("depth"), "--summary", bad, "--output", FX.fresh("card-out3") / "README.md")
    return code == 2 and f"{bad}: not an e2p evaluate summary.json" in err, last_line(err)


@case("evaluate", "e2p metrics table with a latin-1 summary file: names the file, exit 2")
def _table_bad_json():
    bad = FX.fresh("table-json") / "summary.json"
    bad.write_bytes('{"task": "depth", "method": "caf\xe9"}'.encode("latin-1"))
    code, err = cli("metrics", "table", bad)
    return code == 2 and f"{bad}: not a readable summary.json" in err, last_line(err)

"""The runner with injected fake predictors on fixture datasets: numbers checked against
independent expectations, edge-case outcomes, output files and tables."""

import json
import math

import numpy as np
import pytest
from e2p_dataset_fixtures import write_diode, write_matting, write_normals, write_nyuv2, write_scannet

from edit2perceive.evaluation import evaluate_benchmark, paper_table


def _sqrt_encoded_predictor(gts):
    """Predicts an affine map of sqrt(depth) (a perfect sqrt-encoded model)."""

    class P:
        depth_encoding = "sqrt"

        def predict(self, sample, points):
            return (0.3 * np.sqrt(np.maximum(gts[sample.sample_id], 0)) - 0.1)[None]  # batch axis of 1

        def describe(self):
            return {"kind": "fake", "name": "sqrt-oracle"}

    return P()


def test_depth_perfect_sqrt_model_scores_zero_and_files_are_written(tmp_path):
    gts = write_nyuv2(tmp_path / "nyu")
    res = evaluate_benchmark("depth", "nyuv2", tmp_path / "nyu", _sqrt_encoded_predictor(gts),
                             output_dir=tmp_path / "out", progress=False)
    s = res.summary
    assert s["protocol"]["alignment"] == "least_squares_sqrt" and s["protocol"]["alignment_requested"] == "auto"
    assert s["metrics"]["abs_rel"] == pytest.approx(0.0, abs=1e-6) and s["metrics"]["delta1"] == 1.0
    assert (s["num_listed"], s["num_evaluated"], s["num_skipped"], s["num_nan"]) == (2, 2, 0, 0)
    assert s["protocol"]["eval_crop"] == "nyu_eigen" and s["protocol"]["name"] == "marigold"
    out = tmp_path / "out"
    rows = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    assert [r["sample_id"] for r in rows] == [line.split()[0][:-4] for line in (tmp_path / "nyu" / "filename_list_test.txt").read_text().splitlines()]
    assert all(r["status"] == "ok" for r in rows)
    csv_lines = (out / "per_image.csv").read_text().splitlines()
    assert csv_lines[0].startswith("sample_id,status,valid_pixels,nonfinite_pixels,abs_rel") and len(csv_lines) == 3
    assert json.loads((out / "summary.json").read_text())["dataset_name"] == "NYUv2"
    md = (out / "results.md").read_text()
    assert "| Method | NYUv2 AbsRel↓ | NYUv2 δ1↑ |" in md and "| sqrt-oracle | 0.0 | 100.0 |" in md


def test_depth_metrics_match_direct_per_image_mean(tmp_path):
    gts = write_scannet(tmp_path)
    rng = np.random.default_rng(0)
    noise = {k: rng.normal(scale=0.2, size=v.shape) for k, v in gts.items()}

    class Noisy:
        depth_encoding = None

        def predict(self, sample, points):
            return gts[sample.sample_id] * 2.0 + noise[sample.sample_id]

        def describe(self):
            return {"kind": "fake"}

    res = evaluate_benchmark("depth", "scannet", tmp_path, Noisy(), progress=False)
    assert res.summary["protocol"]["alignment"] == "least_squares"  # unknown encoding
    # independent expectation: straightforward per-image LS fit with numpy.linalg.lstsq
    per_image = []
    for k, g in gts.items():
        p = g * 2.0 + noise[k]
        m = (g > 1e-3) & (g < 10)
        A = np.stack([p[m], np.ones(m.sum())], axis=1)
        s, t = np.linalg.lstsq(A, g[m], rcond=None)[0]
        d = np.clip(s * p[m] + t, 1e-3, 10)
        per_image.append(np.mean(np.abs(d - g[m]) / g[m]))
    assert res.summary["metrics"]["abs_rel"] == pytest.approx(np.mean(per_image), rel=1e-6)  # GT read as float32


def test_empty_mask_nan_row_vs_edit2perceive_skip(tmp_path):
    data = write_diode(tmp_path)

    class Const:
        depth_encoding = "uniform"

        def predict(self, sample, points):
            return np.ones(sample.target.shape)

        def describe(self):
            return {"kind": "fake"}

    # remove every valid pixel of one image
    stem = next(iter(data))
    np.save(tmp_path / f"{stem}_depth_mask.npy", np.zeros(data[stem][1].shape, np.float32))
    m = evaluate_benchmark("depth", "diode", tmp_path, Const(), progress=False).summary
    assert (m["num_nan"], m["num_evaluated"], m["num_skipped"]) == (1, 1, 0)
    assert not math.isnan(m["metrics"]["abs_rel"])  # the NaN image is left out, not averaged as 0
    e = evaluate_benchmark("depth", "diode", tmp_path, Const(), protocol="edit2perceive", progress=False).summary
    assert (e["num_nan"], e["num_evaluated"], e["num_skipped"]) == (0, 1, 1)


def test_nonfinite_prediction_error_names_sample_or_is_masked(tmp_path):
    write_scannet(tmp_path)

    def nan_pred(rgb, points):
        out = np.ones(rgb.shape[:2])
        out[0, 0] = np.nan
        out[1:, :] = np.linspace(1, 2, out.shape[1])
        return out

    with pytest.raises(ValueError, match=r"sample scene0011_00/color/000000: prediction has 1 non-finite"):
        evaluate_benchmark("depth", "scannet", tmp_path, nan_pred, progress=False)
    res = evaluate_benchmark("depth", "scannet", tmp_path, nan_pred, overrides={"nonfinite": "mask"}, progress=False)
    assert res.summary["num_nonfinite_pixels"] == 2 and res.summary["num_evaluated"] == 2
    assert res.summary["predictor"]["kind"] == "function"  # a plain callable is wrapped
    with pytest.raises(ValueError, match="expected H x W"):
        evaluate_benchmark("depth", "scannet", tmp_path, lambda rgb, p: np.ones((2, 3, 4, 5)), progress=False)


def test_normals_frames_and_aggregations(tmp_path):
    gts = write_normals(tmp_path, "nyuv2_test.txt")

    class Oracle:
        depth_encoding = None

        def __init__(self, flip):
            self.flip = flip

        def predict(self, sample, points):
            n = gts[sample.sample_id].copy()
            if self.flip:
                n[..., 0] *= -1
            return n * 3.0  # length does not matter

        def describe(self):
            return {"kind": "fake", "name": "flip" if self.flip else "oracle"}

    m = evaluate_benchmark("normal", "nyuv2", tmp_path, Oracle(False), progress=False).summary
    assert m["protocol"]["aggregation"] == "pooled" and m["metrics"]["mean"] < 1e-3
    assert m["metrics_per_image"]["a11_25"] == pytest.approx(100.0)
    # edit2perceive protocol: GT converted to the x-left frame, so an x-left model scores 0 ...
    e = evaluate_benchmark("normal", "nyuv2", tmp_path, Oracle(True), protocol="edit2perceive", progress=False).summary
    assert e["protocol"]["flip_gt_x"] and e["metrics"]["mean"] < 1e-3 and e["protocol"]["aggregation"] == "per_image"
    # ... and an x-right model does not
    bad = evaluate_benchmark("normal", "nyuv2", tmp_path, Oracle(False), protocol="edit2perceive",
                             progress=False).summary
    assert bad["metrics"]["mean"] > 10
    # the tiny-norm GT pixel is valid for Marigold (> 0) and not for Edit2Perceive (> 1e-3)
    assert m["num_pixels"] == e["num_pixels"] + 2


def test_matting_oracle_points_recorded_and_used(tmp_path):
    alphas = write_matting(tmp_path, "aim500")
    seen = {}

    class Checker:
        depth_encoding = None

        def predict(self, sample, points):
            assert len(points) == 10 and all(sample.target[y, x] > 0.8 for x, y in points)
            seen[sample.sample_id] = points
            return sample.target * 0.5

        def describe(self):
            return {"kind": "fake", "name": "half"}

    res = evaluate_benchmark("matting", "aim-500", tmp_path, Checker(), output_dir=tmp_path / "o", progress=False)
    s = res.summary
    assert "10 points" in s["protocol"]["points"] and "default_rng(42)" in s["protocol"]["points"]
    expected_mad = np.mean([np.mean(np.abs(a * 0.5 - a)) for a in alphas.values()])
    assert s["metrics"]["mad"] == pytest.approx(expected_mad, rel=1e-6)
    assert [r["points"] for r in res.rows] == [[list(p) for p in seen[r["sample_id"]]] for r in res.rows]
    unknown = evaluate_benchmark("matting", "aim500", tmp_path, Checker(), overrides={"region": "unknown"},
                                 progress=False).summary
    assert unknown["metrics"]["mad"] > s["metrics"]["mad"]  # errors concentrate in the unknown band
    md = (tmp_path / "o" / "results.md").read_text()
    assert "| Method | AIM-500 MSE↓ | AIM-500 MAD↓ | AIM-500 SAD↓ | AIM-500 Grad↓ | AIM-500 Conn↓ |" in md


def test_paper_table_combines_datasets_in_paper_order():
    def mk(d, a, b):
        return {"task": "depth", "dataset": d, "method": "ours", "metrics": {"abs_rel": a, "delta1": b}}
    table = paper_table([mk("kitti", 0.079, 0.945), mk("nyuv2", 0.044, 0.976)])
    assert table.splitlines()[0] == "| Method | NYUv2 AbsRel↓ | NYUv2 δ1↑ | KITTI AbsRel↓ | KITTI δ1↑ |"
    assert table.splitlines()[2] == "| ours | 4.4 | 97.6 | 7.9 | 94.5 |"
    with pytest.raises(ValueError, match="mix tasks"):
        paper_table([mk("kitti", 1, 1), {**mk("nyuv2", 1, 1), "task": "normal"}])


DIST_RUN = """
import json, sys
import numpy as np
from accelerate import Accelerator
from edit2perceive.evaluation import evaluate_benchmark

acc = Accelerator(cpu=True)
def predict(rgb, points):  # a deterministic function of the image
    return rgb.mean(axis=-1) / 255.0 + 0.1
res = evaluate_benchmark("depth", "scannet", sys.argv[1], predict, accelerator=acc, progress=False,
                         output_dir=sys.argv[2] if acc.is_main_process else None)
if acc.is_main_process:
    json.dump({"world": acc.num_processes, "summary": res.summary, "rows": res.rows}, open(sys.argv[3], "w"))
# tear gloo down explicitly: left to interpreter exit it can abort ("terminate called ...")
import torch.distributed as dist
dist.barrier()
dist.destroy_process_group()
"""


def test_runner_across_two_processes_equals_one(tmp_path):
    import os
    import subprocess
    import sys

    write_scannet(tmp_path / "data")
    (tmp_path / "run.py").write_text(DIST_RUN)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    # --standalone: a free rendezvous port, so concurrent runs cannot collide
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(tmp_path / "run.py"),
                           str(tmp_path / "data"), str(tmp_path / "out"), str(tmp_path / "res.json")],
                          capture_output=True, text=True, timeout=180, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "res.json").read_text())
    single = evaluate_benchmark("depth", "scannet", tmp_path / "data",
                                lambda rgb, points: rgb.mean(axis=-1) / 255.0 + 0.1, progress=False).summary
    assert got["world"] == 2 and got["summary"]["num_evaluated"] == single["num_evaluated"] == 2
    assert got["summary"]["metrics"] == pytest.approx(single["metrics"])
    assert sorted(r["sample_id"] for r in got["rows"]) == sorted(
        line.split()[0][:-4] for line in (tmp_path / "data" / "scannet_val_sampled_list_800_1.txt").read_text().splitlines())
    assert len((tmp_path / "out" / "per_image.jsonl").read_text().splitlines()) == 2

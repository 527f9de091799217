"""Accumulators: per-image means with NaN counting, pooled vs per-image normals, merging
and summing across processes (a fake reducer and a real 2-process accelerate run)."""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edit2perceive.metrics import (
    DEPTH_METRIC_NAMES,
    NORMAL_METRIC_NAMES,
    MeanAccumulator,
    NormalAccumulator,
    depth_metrics,
    normal_metrics,
)
from edit2perceive.metrics.normal import angular_error_deg


def test_mean_accumulator_counts_nan_images_separately():
    acc = MeanAccumulator(["a", "b"])
    acc.add({"a": 1.0, "b": 2.0})
    acc.add({"a": 3.0, "b": float("nan")})
    acc.add({"a": float("nan"), "b": float("nan")})
    assert acc.result() == {"a": 2.0, "b": 2.0}
    assert acc.num_images == 3 and acc.num_nan() == 2
    with pytest.raises(KeyError, match="lacks"):
        acc.add({"a": 1.0})
    assert math.isnan(MeanAccumulator(["a"]).result()["a"])


def test_depth_per_image_mean_matches_direct_mean():
    rng = np.random.default_rng(0)
    acc, rows = MeanAccumulator(DEPTH_METRIC_NAMES), []
    for _ in range(5):
        gt = rng.uniform(1, 5, size=(6, 7))
        m = depth_metrics(gt + rng.normal(scale=0.3, size=gt.shape), gt, max_depth=10)
        acc.add(m)
        rows.append(m)
    for k in DEPTH_METRIC_NAMES:
        assert acc.result()[k] == pytest.approx(np.mean([r[k] for r in rows]))


def _random_normal_images(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        gt = rng.normal(size=(5 + i, 6, 3))
        pred = gt + rng.normal(scale=0.5, size=gt.shape)
        mask = rng.uniform(size=gt.shape[:2]) > 0.3
        out.append((pred, gt, mask))
    return out


def test_normal_pooled_and_per_image_match_straightforward_computation():
    images = _random_normal_images(4)
    acc = NormalAccumulator()
    for pred, gt, mask in images:
        acc.add(pred, gt, mask)
    all_errors = np.concatenate([angular_error_deg(p[m], g[m]) for p, g, m in images])
    res = acc.result()
    pooled = res["pooled"]
    assert pooled["mean"] == pytest.approx(all_errors.mean())
    assert pooled["rmse"] == pytest.approx(np.sqrt(np.mean(all_errors**2)))
    assert pooled["median"] == pytest.approx(np.median(all_errors), abs=5e-4)  # 0.001-degree bins
    assert pooled["a11_25"] == pytest.approx(100 * np.mean(all_errors < 11.25))
    per_image = [normal_metrics(p, g, m) for p, g, m in images]
    for k in NORMAL_METRIC_NAMES:
        assert res["per_image"][k] == pytest.approx(np.mean([r[k] for r in per_image])), k
    assert res["num_images"] == 4 and res["num_pixels"] == all_errors.size and res["num_empty"] == 0


def test_normal_empty_image_counted():
    acc = NormalAccumulator()
    acc.add(np.ones((2, 2, 3)), np.zeros((2, 2, 3)))
    res = acc.result()
    assert res["num_empty"] == 1 and math.isnan(res["pooled"]["mean"]) and math.isnan(res["per_image"]["mean"])


class _FakeAccelerator:
    """Stands in for accelerate: reduce() sums the states that every 'process' contributed."""

    def __init__(self, states):
        self.states = states

    def reduce(self, tensor, reduction="sum"):
        import torch

        assert reduction == "sum"
        return torch.from_numpy(np.sum(self.states, axis=0))


def test_gather_sums_states_like_one_big_accumulator():
    images = _random_normal_images(6, seed=1)
    single, parts = NormalAccumulator(), [NormalAccumulator(), NormalAccumulator()]
    for i, (p, g, m) in enumerate(images):
        single.add(p, g, m)
        parts[i % 2].add(p, g, m)
    fake = _FakeAccelerator([a.state() for a in parts])
    expected = single.result()
    gathered = parts[0].gather(fake).result()
    merged = NormalAccumulator().merge(parts[0]).merge(parts[1]).result()
    for res in (gathered, merged):
        assert res["pooled"] == pytest.approx(expected["pooled"])
        assert res["per_image"] == pytest.approx(expected["per_image"])
        assert (res["num_images"], res["num_pixels"]) == (expected["num_images"], expected["num_pixels"])


DIST_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from accelerate import Accelerator
    from edit2perceive.metrics import MeanAccumulator, NormalAccumulator, depth_metrics, DEPTH_METRIC_NAMES

    acc = Accelerator(cpu=True)
    rng = np.random.default_rng(0)
    depth, normal = MeanAccumulator(DEPTH_METRIC_NAMES), NormalAccumulator()
    for i in range(6):
        gt = rng.uniform(1, 5, size=(8, 8)); pred = gt + rng.normal(scale=0.3, size=gt.shape)
        n_gt = rng.normal(size=(8, 8, 3)); n_pred = n_gt + rng.normal(scale=0.5, size=n_gt.shape)
        if i % acc.num_processes != acc.process_index:
            continue
        depth.add(depth_metrics(pred, gt, max_depth=10)); normal.add(n_pred, n_gt)
    d, n = depth.gather(acc), normal.gather(acc)
    if acc.is_main_process:
        json.dump({"processes": acc.num_processes, "depth": d.result(), "images": d.num_images,
                   "normal": n.result()}, open(sys.argv[1], "w"))
    # tear gloo down explicitly: left to interpreter exit it can abort ("terminate called ...")
    import torch.distributed as dist
    dist.barrier()
    dist.destroy_process_group()
    """
)


def test_gather_across_two_real_processes(tmp_path):
    script, out = tmp_path / "dist.py", tmp_path / "out.json"
    script.write_text(DIST_SCRIPT)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --standalone: a free rendezvous port, so concurrent runs cannot collide
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(script), str(out)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    got = json.loads(out.read_text())
    assert got["processes"] == 2 and got["images"] == 6
    # reference: the same six images in one process
    rng = np.random.default_rng(0)
    depth, normal = MeanAccumulator(DEPTH_METRIC_NAMES), NormalAccumulator()
    for _ in range(6):
        gt = rng.uniform(1, 5, size=(8, 8))
        pred = gt + rng.normal(scale=0.3, size=gt.shape)
        n_gt = rng.normal(size=(8, 8, 3))
        n_pred = n_gt + rng.normal(scale=0.5, size=n_gt.shape)
        depth.add(depth_metrics(pred, gt, max_depth=10))
        normal.add(n_pred, n_gt)
    assert got["depth"] == pytest.approx(depth.result())
    assert got["normal"]["pooled"] == pytest.approx(normal.result()["pooled"])
    assert got["normal"]["per_image"] == pytest.approx(normal.result()["per_image"])

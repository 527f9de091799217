"""``e2p evaluate`` under the real ``accelerate launch`` with 2 CPU processes (gloo) prints
the one-process numbers, and writes the same per-image rows in the same order."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from e2p_dataset_fixtures import _save_rgb, _save_u16, depth_field

SCENES = 5  # odd: the processes get 3 and 2 samples


def _scannet(root: Path) -> dict:
    """ScanNet layout (<scene>/color/*.jpg, <scene>/depth/*.png in mm, the sampled list)."""
    gts, lines = {}, []
    for i in range(SCENES):
        scene = f"scene{i:04d}_00"
        _save_rgb(root / scene / "color" / "000000.jpg", 48, 64, seed=i)
        mm = np.round(depth_field(48, 64, 0.5, 4.0, seed=i) * 1000).astype(np.uint16)
        _save_u16(root / scene / "depth" / "000000.png", mm)
        gts[f"{scene}/color/000000"] = mm / 1000.0
        lines.append(f"{scene}/color/000000.jpg {scene}/depth/000000.png")
    (root / "scannet_val_sampled_list_800_1.txt").write_text("\n".join(reversed(lines)) + "\n")  # not sorted
    return gts


def _env(tmp):
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp / "hf"), "ACCELERATE_USE_CPU": "true",
            "PYTHONWARNINGS": "ignore"}


def test_two_processes_print_exactly_the_one_process_numbers(tmp_path):
    gts = _scannet(tmp_path / "scannet")
    rng = np.random.default_rng(0)
    for sid, gt in gts.items():  # a noisy sqrt-encoded "model"
        path = tmp_path / "preds" / f"{sid}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, (0.4 * np.sqrt(gt) + 0.1 + rng.uniform(0, 0.08, gt.shape)).astype(np.float32))
    args = ["evaluate", "--task", "depth", "--dataset", "scannet", "--data-dir", str(tmp_path / "scannet"),
            "--predictions", str(tmp_path / "preds"), "--depth-encoding", "sqrt", "--method", "m", "--no-progress"]
    one = subprocess.run([sys.executable, "-m", "edit2perceive.cli", *args, "--output-dir", str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=300, env=_env(tmp_path))
    assert one.returncode == 0, one.stderr[-3000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    two = subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--main_process_port", port, "--mixed_precision", "no", "--dynamo_backend", "no",
                          "-m", "edit2perceive.cli", *args, "--output-dir", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300, env=_env(tmp_path))
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout == one.stdout and "| m |" in one.stdout  # the main process prints, once
    s1, s2 = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two"))
    assert s1["num_evaluated"] == s2["num_evaluated"] == SCENES
    for k, v in s1["metrics"].items():
        assert abs(s2["metrics"][k] - v) <= 1e-12 * max(1.0, abs(v)), k  # float64 sums in another order
    # the per-image files: same rows, same (listed) order
    assert (tmp_path / "two" / "per_image.csv").read_text() == (tmp_path / "one" / "per_image.csv").read_text()
    listed = [line.split()[0][:-4] for line in
              (tmp_path / "scannet" / "scannet_val_sampled_list_800_1.txt").read_text().splitlines()]
    rows = [json.loads(line) for line in (tmp_path / "two" / "per_image.jsonl").read_text().splitlines()]
    assert [r["sample_id"] for r in rows] == listed

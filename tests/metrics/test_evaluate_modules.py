"""The evaluate modules in metrics/: same numbers as the package functions, only scalars
stored, `e2p metrics install` -> evaluate.load("e2p/<name>") offline, push dry run.

evaluate caches modules under HF_HOME: every test here uses one session-wide temporary
cache (evaluate keeps a package named `evaluate_modules` in sys.modules, so one process
must not switch caches), and the install test runs in a fresh process with its own cache."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edit2perceive.metrics import depth_metrics, matting_metrics, normal_metrics

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    """Point evaluate's caches at a temporary folder (env and the already-read config)."""
    home = tmp_path_factory.mktemp("hf_home")
    mp = pytest.MonkeyPatch()
    env = {"HF_HOME": home, "HF_MODULES_CACHE": home / "modules", "HF_EVALUATE_CACHE": home / "evaluate",
           "HF_DATASETS_CACHE": home / "datasets", "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}
    for k, v in env.items():
        mp.setenv(k, str(v))
    import evaluate.config

    for attr in ("HF_MODULES_CACHE", "HF_EVALUATE_CACHE", "HF_METRICS_CACHE"):
        if hasattr(evaluate.config, attr):
            mp.setattr(evaluate.config, attr, home / attr.lower())
    mp.chdir(REPO)
    yield home
    mp.undo()


def _load(path):
    import evaluate

    return evaluate.load(path)


def _depth_pairs(n=3, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        gt = rng.uniform(0.5, 9.0, size=(12, 16))
        mask = rng.uniform(size=gt.shape) > 0.2
        out.append((np.sqrt(gt) * 0.4 + rng.normal(scale=0.05, size=gt.shape), gt, mask))
    return out


def test_depth_modules_match_functions(hf_cache):
    pairs = _depth_pairs()
    direct = [depth_metrics(p, g, m, alignment="least_squares_sqrt") for p, g, m in pairs]
    res = _load("metrics/depth_metrics").compute(predictions=[p for p, _, _ in pairs], references=[g for _, g, _ in pairs],
                                                 valid_masks=[m for _, _, m in pairs], alignment="least_squares_sqrt")
    for k in direct[0]:
        assert res[k] == pytest.approx(np.mean([d[k] for d in direct])), k
    assert res["num_images"] == 3 and res["num_nan"] == 0
    absrel, delta1 = _load("metrics/absrel"), _load("metrics/delta1")
    for p, g, m in pairs:  # one image at a time
        absrel.add(prediction=p, reference=g, valid_mask=m, alignment="least_squares_sqrt")
        delta1.add(prediction=p, reference=g, valid_mask=m, alignment="least_squares_sqrt")
    assert absrel.compute() == {"abs_rel": pytest.approx(res["abs_rel"]), "num_images": 3, "num_nan": 0}
    assert delta1.compute()["delta1"] == pytest.approx(res["delta1"])


def test_modules_store_scalars_only(hf_cache):
    metric = _load("metrics/absrel")
    p, g, m = _depth_pairs(1)[0]
    metric.add(prediction=p, reference=g, valid_mask=m)
    assert list(metric.info.features) == ["abs_rel"]
    assert list(metric.selected_feature_format) == ["abs_rel"]


def test_empty_image_counted_not_averaged(hf_cache):
    g = np.full((4, 4), 2.0)
    res = _load("metrics/absrel").compute(predictions=[g, g * 0 + 1], references=[g, g],
                                          valid_masks=[np.ones((4, 4), bool), np.zeros((4, 4), bool)])
    assert res == {"abs_rel": pytest.approx(0.0, abs=1e-12), "num_images": 2, "num_nan": 1}
    with pytest.raises(ValueError, match="unknown options"):
        _load("metrics/absrel").compute(predictions=[g], references=[g], clip=True)


def test_normal_module_pooled_and_per_image(hf_cache):
    rng = np.random.default_rng(1)
    pairs = [(rng.normal(size=(6 + i, 5, 3)), rng.normal(size=(6 + i, 5, 3))) for i in range(3)]
    metric = _load("metrics/normal_metrics")
    pooled = metric.compute(predictions=[p for p, _ in pairs], references=[g for _, g in pairs])
    from edit2perceive.metrics.normal import angular_error_deg

    e = np.concatenate([angular_error_deg(p, g).ravel() for p, g in pairs])
    assert pooled["mean"] == pytest.approx(e.mean()) and pooled["a30"] == pytest.approx(100 * np.mean(e < 30))
    assert pooled["num_pixels"] == e.size
    per = _load("metrics/normal_metrics").compute(predictions=[p for p, _ in pairs],
                                                  references=[g for _, g in pairs], aggregation="per_image")
    direct = [normal_metrics(p, g) for p, g in pairs]
    assert per["median"] == pytest.approx(np.mean([d["median"] for d in direct]))
    assert pooled["median_per_image"] == pytest.approx(per["median"])


def test_matting_module(hf_cache):
    rng = np.random.default_rng(2)
    pairs = [(rng.uniform(size=(9, 11)), rng.uniform(size=(9, 11))) for _ in range(2)]
    tri = np.full((9, 11), 128, np.uint8)
    tri[:3] = 0
    res = _load("metrics/matting_metrics").compute(predictions=[p for p, _ in pairs], references=[g for _, g in pairs],
                                                   trimaps=[tri, tri], conn_mode="python_port")
    direct = [matting_metrics(p, g, tri, conn_mode="python_port") for p, g in pairs]
    for k in direct[0]:
        assert res[k] == pytest.approx(np.mean([d[k] for d in direct])), k


def test_push_dry_run_folder_loads(hf_cache, tmp_path):
    from edit2perceive.evaluation.metric_modules import METRIC_MODULES, push_metric_modules

    folders = push_metric_modules("someone", dry_run_dir=tmp_path / "spaces")
    assert [Path(f).name for f in folders] == list(METRIC_MODULES)
    folder = Path(folders[0])
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "absrel.py", "app.py", "requirements.txt"]
    assert 'evaluate.load("someone/absrel")' in (folder / "app.py").read_text()
    assert (folder / "README.md").read_text().startswith("---\ntitle: AbsRel")
    g = np.full((3, 3), 2.0)
    assert _load(str(folder)).compute(predictions=[g], references=[g])["abs_rel"] == pytest.approx(0.0, abs=1e-12)


INSTALL_CHECK = """
import numpy as np, evaluate
from edit2perceive.cli import main
assert main(["metrics", "install"]) == 0
g = np.array([[1.0, 2.0], [4.0, 8.0]])
for name in ["absrel", "delta1", "depth_metrics", "normal_metrics", "matting_metrics"]:
    module = evaluate.load("e2p/" + name)
    assert type(module).__module__.startswith("evaluate_modules.metrics.e2p--" + name), type(module).__module__
print(evaluate.load("e2p/absrel").compute(predictions=[g * 3 + 1], references=[g])["abs_rel"])
"""


def test_install_makes_e2p_names_load_offline(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}
    env.pop("HF_MODULES_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", INSTALL_CHECK], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert abs(float(proc.stdout.strip().splitlines()[-1])) < 1e-9
    cached = list((tmp_path / "home" / "modules" / "evaluate_modules" / "metrics").glob("e2p--*/*/*.py"))
    assert sorted(p.name for p in cached if p.name != "__init__.py") == sorted(
        f"{n}.py" for n in ["absrel", "delta1", "depth_metrics", "normal_metrics", "matting_metrics"])


WHEEL_CHECK = """
import numpy as np, evaluate, edit2perceive
from edit2perceive.cli import main
assert "site" in edit2perceive.__file__ or "unpacked" in edit2perceive.__file__, edit2perceive.__file__
assert main(["metrics", "install"]) == 0
module = evaluate.load("e2p/absrel")
print(module.info.homepage)
print(module.compute(predictions=[np.array([[1.0, 2.0], [4.0, 8.0]])], references=[np.array([[1.0, 2.0], [4.0, 10.0]])],
                     alignment=None)["abs_rel"])
"""


def test_install_works_from_an_installed_wheel(tmp_path):
    """`pip wheel` the project, unpack the wheel (what pip install puts in site-packages) and run
    `e2p metrics install` from it, far from any checkout: the module scripts ship as package data."""
    build = tmp_path / "build"
    build.mkdir()
    for name in ("setup.py", "README.md"):
        (build / name).write_bytes((REPO / name).read_bytes())
    import shutil
    import zipfile

    for name in ("src", "metrics"):
        shutil.copytree(REPO / name, build / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(build),
                           "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("edit2perceive-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path / "unpacked")
    assert (tmp_path / "unpacked" / "edit2perceive" / "metrics_modules" / "absrel" / "absrel.py").is_file()
    env = {**os.environ, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
           "PYTHONPATH": str(tmp_path / "unpacked")}
    env.pop("HF_MODULES_CACHE", None)
    run = tmp_path / "elsewhere"
    run.mkdir()
    proc = subprocess.run([sys.executable, "-c", WHEEL_CHECK], cwd=run, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    homepage, abs_rel = proc.stdout.strip().splitlines()[-2:]
    assert homepage == "https://github.com/showlab/Edit2Perceive"
    assert float(abs_rel) == pytest.approx(0.2 / 4)  # |8 - 10| / 10 on one of four pixels, no alignment

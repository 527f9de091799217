"""Ship the ``evaluate`` modules in ``metrics/<name>/`` (installed with the package as
``edit2perceive/metrics_modules/<name>/``): install offline, or publish as Spaces.

- :func:`install_metric_modules` seeds evaluate's module cache (``$HF_MODULES_CACHE``, by
  default ``$HF_HOME/modules``) so ``evaluate.load("e2p/<name>")`` works offline: evaluate
  tries the Hub, fails, and falls back to the newest cached copy of ``e2p--<name>``.
- :func:`space_folder` builds the folder a Hub metric Space holds (``<name>.py``,
  ``README.md`` with the Space header, ``app.py``, ``requirements.txt``).
- :func:`push_metric_modules` uploads those folders as Spaces ``<namespace>/<name>``;
  ``dry_run_dir`` only writes the folders (no network), e.g. to check them with
  ``evaluate.load(folder)``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

METRIC_MODULES = ("absrel", "delta1", "depth_metrics", "normal_metrics", "matting_metrics")
DEFAULT_NAMESPACE = "e2p"

APP_PY = '''import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load("{repo_id}")
launch_gradio_widget(module)
'''


def find_metric_sources(source: str | os.PathLike | None = None) -> Path:
    """The module scripts: ``source``, else those installed with the package
    (``edit2perceive/metrics_modules/``, the repository's ``metrics/`` shipped as package
    data), else a checkout's ``metrics/`` (running from ``src/``), else ``./metrics``."""
    here = Path(__file__).resolve()
    candidates = [Path(source)] if source else [here.parents[1] / "metrics_modules", here.parents[3] / "metrics",
                                                Path.cwd() / "metrics"]
    for c in candidates:
        if all((c / name / f"{name}.py").is_file() for name in METRIC_MODULES):
            return c
    raise FileNotFoundError(
        f"no metric modules found in {[str(c) for c in candidates]} (expected metrics/<name>/<name>.py for "
        f"{METRIC_MODULES}); pass --source pointing at the repository's metrics/ folder"
    )


def _modules_cache(modules_cache: str | os.PathLike | None) -> Path:
    if modules_cache is not None:
        return Path(modules_cache)
    import evaluate.config

    return Path(os.environ.get("HF_MODULES_CACHE") or evaluate.config.HF_MODULES_CACHE)


def install_metric_modules(*, source=None, namespace: str = DEFAULT_NAMESPACE, modules_cache=None,
                           names=METRIC_MODULES) -> list[Path]:
    """Copy each module into ``<cache>/evaluate_modules/metrics/<namespace>--<name>/<sha256>/``."""
    from evaluate.loading import init_dynamic_modules

    src = find_metric_sources(source)
    cache = _modules_cache(modules_cache)
    dynamic = Path(init_dynamic_modules(hf_modules_cache=str(cache)))
    installed = []
    for name in names:
        script = src / name / f"{name}.py"
        if not script.is_file():
            raise FileNotFoundError(f"{script}: metric module not found")
        digest = hashlib.sha256(script.read_bytes()).hexdigest()
        folder = dynamic / "metrics" / f"{namespace}--{name}" / digest
        folder.mkdir(parents=True, exist_ok=True)
        for init in (dynamic / "metrics" / "__init__.py", folder.parent / "__init__.py", folder / "__init__.py"):
            init.touch(exist_ok=True)
        shutil.copyfile(script, folder / f"{name}.py")
        if (src / name / "README.md").is_file():
            shutil.copyfile(src / name / "README.md", folder / "README.md")
        os.utime(folder / f"{name}.py")  # newest copy wins in evaluate's cache lookup
        installed.append(folder / f"{name}.py")
    return installed


def space_folder(name: str, out_dir: str | os.PathLike, *, source=None, namespace: str = DEFAULT_NAMESPACE) -> Path:
    """Write the Space folder for one module into ``out_dir/<name>`` and return it."""
    src = find_metric_sources(source) / name
    if not (src / f"{name}.py").is_file():
        raise FileNotFoundError(f"{src / (name + '.py')}: metric module not found")
    dest = Path(out_dir) / name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / f"{name}.py", dest / f"{name}.py")
    shutil.copyfile(src / "README.md", dest / "README.md")
    (dest / "app.py").write_text(APP_PY.format(repo_id=f"{namespace}/{name}"))
    from edit2perceive import __version__

    (dest / "requirements.txt").write_text(f"evaluate>=0.4\nedit2perceive[eval]>={__version__.split('.dev')[0]}\n")
    return dest


def push_metric_modules(namespace: str, *, source=None, dry_run_dir=None, token: str | None = None,
                        private: bool = False, names=METRIC_MODULES) -> list[str]:
    """Publish each module as the Space ``<namespace>/<name>`` (gradio SDK, like evaluate's
    own metric Spaces). With ``dry_run_dir`` the folders are written there and nothing is
    uploaded. Returns the Space ids (or folder paths in a dry run)."""
    if dry_run_dir is not None:
        return [str(space_folder(name, dry_run_dir, source=source, namespace=namespace)) for name in names]
    import tempfile

    from huggingface_hub import HfApi

    api = HfApi(token=token)
    pushed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            folder = space_folder(name, tmp, source=source, namespace=namespace)
            repo_id = f"{namespace}/{name}"
            api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
            api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=str(folder),
                              commit_message=f"Upload {name} metric from edit2perceive")
            pushed.append(repo_id)
    return pushed

"""Dataset prediction throughput: ``predict_dataset`` on 1 and 2 processes (``accelerate
launch``, CPU, one torch thread each) against the plain pipeline in a loop over the same
images, tiny model.

    python -m benchmarks.bench_dataset_predict [--images 128] [--size 64] [--batch-size 4] [--shard-size 16] [--rounds 3]

One process (plain ``python``) times the loop and ``predict_dataset`` in alternating
rounds, so background load hits both alike; two processes run under ``accelerate launch``
(gloo). A round of ``predict_dataset`` starts after a barrier (every process has its
model loaded and warmed up) and ends when it returns: after the last shard, the manifest
and the card (a barrier, so the slowest process counts). The loop reads the same image
files and calls the pipeline with the same batch size, writing nothing. Start-up (imports,
model load, process group) is not timed. Overhead = dataset run (1 process) / loop - 1; as
separate runs are hit by other load differently, the run also times its own pipeline calls:
overhead within the run = time outside them (decoding, encoding, parquet, manifest, card)
/ time in them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def prepare(folder: Path, n: int, size: int) -> None:
    import numpy as np
    from PIL import Image

    from edit2perceive import Edit2PerceivePipeline
    from edit2perceive.testing import tiny_kontext_components

    Edit2PerceivePipeline(**tiny_kontext_components(seed=0), task="depth").save_pretrained(folder / "model")
    rng = np.random.default_rng(0)
    (folder / "images").mkdir()
    for i in range(n):
        Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)).save(folder / "images" / f"{i:05d}.png")


def child(cfg: dict) -> None:
    """One configuration inside its process(es): ``cfg["rounds"]`` timed rounds; rank 0
    writes ``{"loop": [s, ...], "dataset": [s, ...]}`` to cfg["result"]. With one process
    the loop and the dataset run alternate, so background load hits both alike."""
    import shutil

    import torch
    from PIL import Image

    torch.set_num_threads(1)
    from edit2perceive.inference_at_scale import end_processes, load_source, predict_dataset, process_state
    from edit2perceive.pipelines.loading import load_pipeline

    folder = Path(cfg["folder"])
    state = process_state()
    pipe = load_pipeline(str(folder / "model"), task="depth", device="cpu")
    source = load_source(str(folder / "images"))
    files = sorted((folder / "images").iterdir())
    kwargs = {"processing_resolution": cfg["size"]}  # load_pipeline turns progress bars off
    pipe([Image.open(files[0]).convert("RGB")], **kwargs)  # warm-up

    def loop():
        for i in range(0, len(files), cfg["batch_size"]):
            out = pipe([Image.open(f).convert("RGB") for f in files[i:i + cfg["batch_size"]]],
                       batch_size=cfg["batch_size"], **kwargs)
            _ = [p.copy() for p in out.prediction]

    class Timed:  # the pipeline, timing its calls (everything else is the dataset machinery)
        seconds = 0.0

        def __getattr__(self, name):
            return getattr(pipe, name)

        def __call__(self, *args, **kw):
            start = time.perf_counter()
            try:
                return pipe(*args, **kw)
            finally:
                Timed.seconds += time.perf_counter() - start

    def dataset(out):
        predict_dataset(Timed(), source, out, settings={"task": "depth"}, shard_size=cfg["shard_size"],
                        batch_size=cfg["batch_size"], call_kwargs={"processing_resolution": cfg["size"]},
                        state=state, progress=False)

    times = {"loop": [], "dataset": [], "in_pipeline": []}
    for r in range(cfg["rounds"]):
        if state.num_processes == 1:
            start = time.perf_counter()
            loop()
            times["loop"].append(time.perf_counter() - start)
        out = folder / f"out{state.num_processes}-{r}"
        state.wait_for_everyone()
        start, Timed.seconds = time.perf_counter(), 0.0
        dataset(out)  # returns after a barrier: the slowest process
        times["dataset"].append(time.perf_counter() - start)
        times["in_pipeline"].append(Timed.seconds)
        if state.is_main_process:
            shutil.rmtree(out)
    if state.is_main_process:
        Path(cfg["result"]).write_text(json.dumps(times))
    end_processes(state)


def _port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def run(cfg: dict, processes: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", ACCELERATE_USE_CPU="true")
    me = [sys.executable, "-m", "benchmarks.bench_dataset_predict", "--child", json.dumps(cfg)]
    if processes > 1:
        accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
        me = [accelerate, "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
              "--main_process_port", _port(), "--mixed_precision", "no", "--dynamo_backend", "no", *me[1:]]
    proc = subprocess.run(me, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{processes} process(es) failed:\n{proc.stderr[-3000:]}")
    return json.loads(Path(cfg["result"]).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--size", type=int, default=64, help="image side and processing resolution (px)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--shard-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder, args.images, args.size)
        base = {"folder": tmp, "size": args.size, "batch_size": args.batch_size, "shard_size": args.shard_size,
                "rounds": args.rounds}
        single = run({**base, "result": str(folder / "one.json")}, 1)
        double = run({**base, "result": str(folder / "two.json")}, 2)
    loop, one, two = (statistics.median(t) for t in (single["loop"], single["dataset"], double["dataset"]))
    inside = statistics.median(d / p - 1 for d, p in zip(single["dataset"], single["in_pipeline"]))
    rows = [{"run": name, "images/s": args.images / t, "seconds (median)": t, "vs loop": t / loop}
            for name, t in (("pipeline loop, 1 process", loop), ("predict_dataset, 1 process", one),
                            ("predict_dataset, 2 processes", two))]
    print(f"{args.images} images of {args.size} x {args.size} px, batch {args.batch_size}, shards of "
          f"{args.shard_size}, tiny depth model, CPU, 1 torch thread per process, median of {args.rounds} rounds")
    print(markdown_table(rows, ["run", "images/s", "seconds (median)", "vs loop"]))
    print(f"overhead of predict_dataset vs the loop (1 process): {100 * (one / loop - 1):+.1f} %")
    print(f"overhead within the run (time outside pipeline calls / time in them, 1 process): {100 * inside:.1f} %")
    print(f"2 processes / 1 process: {one / two:.2f}x")


if __name__ == "__main__":
    main()

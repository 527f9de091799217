"""Peak memory of converting a released-format checkpoint, relative to its file size.

    python -m benchmarks.bench_convert_memory [--layers 2 --single-layers 4 --heads 8]

Writes a random mid-size FLUX-architecture DiT (bf16, default about 290 MB) in the
reference's DiffSynth key layout, then measures, each in a fresh process:
``save_reference_transformer`` (streaming, 64 MB shards; ``e2p convert``),
``load_reference_transformer`` (into memory; ``from_reference_checkpoint``) and, for
comparison, the naive way (``safetensors.torch.load_file`` + rename/split into a new dict).
Memory: peak RSS above the RSS before the call (``VmHWM`` after resetting it through
``/proc/self/clear_refs``), and the peak of anonymous memory (``RssAnon`` sampled every 5 ms from /proc/self/status; the file's
mmap'd pages are file-backed, shared and reclaimable, and counted in RSS only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, threading, time
import torch

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB

mode, path, out, config = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
from edit2perceive.reference import convert as C  # imports first: they are not the conversion's memory
from edit2perceive.reference.formats import transformer_pieces
import diffusers, safetensors.torch  # noqa
peak_anon, stop = [status("RssAnon")], threading.Event()
def sample():
    while not stop.is_set():
        peak_anon.append(status("RssAnon")); time.sleep(0.005)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
start_rss, start_anon = status("VmRSS"), status("RssAnon")
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
if mode == "stream":
    C.save_reference_transformer(path, out, config=config, max_shard_bytes=64 * 1024**2, progress=False)
elif mode == "load":
    model = C.load_reference_transformer(path, config=config)
else:  # naive: whole file in memory, then a converted copy
    sd = safetensors.torch.load_file(path)
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    new = {p.target: (sd[p.source] if p.rows is None else sd[p.source][p.rows[0]:p.rows[1]]).clone()
           for p in transformer_pieces(shapes)}
    safetensors.torch.save_file(new, out + ".safetensors")
seconds = time.perf_counter() - t0
stop.set()
peak_anon.append(status("RssAnon"))
print(json.dumps({"rss_kb": status("VmHWM") - start_rss,
                  "anon_kb": max(peak_anon) - start_anon, "seconds": seconds}))
"""


def write_checkpoint(path: str, args) -> dict:
    import torch
    from diffusers import FluxTransformer2DModel

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from reference_fixtures import diffsynth_state_dict, write

    config = {"patch_size": 1, "in_channels": 64, "out_channels": None, "num_layers": args.layers,
              "num_single_layers": args.single_layers, "attention_head_dim": 128,
              "num_attention_heads": args.heads, "joint_attention_dim": 4096, "pooled_projection_dim": 768,
              "guidance_embeds": True, "axes_dims_rope": [16, 56, 56]}
    torch.manual_seed(0)
    model = FluxTransformer2DModel(**config).to(torch.bfloat16)
    write(path, diffsynth_state_dict(model.state_dict()))
    return config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--single-layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "depth.safetensors")
        config = write_checkpoint(path, args)
        size_mb = os.path.getsize(path) / 2**20
        rows = []
        for mode, label in (("stream", "save_reference_transformer (e2p convert, 64 MB shards)"),
                            ("load", "load_reference_transformer (from_reference_checkpoint)"),
                            ("naive", "naive: load_file + converted copy + save_file")):
            out = os.path.join(tmp, f"out-{mode}")
            res = subprocess.run([sys.executable, "-c", CHILD, mode, path, out, json.dumps(config)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append((label, r["rss_kb"] / 1024, r["anon_kb"] / 1024, r["seconds"]))
    print(f"checkpoint: {size_mb:.0f} MiB bf16 ({args.layers} double + {args.single_layers} single blocks, "
          f"{args.heads} heads x 128)\n")
    print("| operation | peak RSS above start (MiB) | x file | peak anonymous above start (MiB) | x file | seconds |")
    print("|---|---|---|---|---|---|")
    for label, rss, anon, sec in rows:
        print(f"| {label} | {rss:.0f} | {rss / size_mb:.2f} | {anon:.0f} | {anon / size_mb:.2f} | {sec:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

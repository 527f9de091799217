"""Fault cases of model folders and security: no code from a model folder, no pickle."""

from __future__ import annotations

import shutil

from harness import (
    FX,
    ROOT,
    case,
    cli,
)


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@case("security", "crafted training_args.bin in a model folder: e2p card / push --dry-run run no code")
def _pickle():
    import torch

    model = FX.root / "models" / "crafted"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(FX.model("depth"), model)
    marker = FX.root / "pwned"
    torch.save(_Payload(marker), model / "training_args.bin")
    a, _ = cli("card", model, "--output", FX.root / "card.md")
    b, _ = cli("push", model, "--repo-id", "me/x", "--dry-run", FX.fresh("upload") / "up")
    return a == 0 and b == 0 and not marker.exists(), f"card {a}, push {b}, code ran: {marker.exists()}"


@case("security", "no torch.load / pickle / allow_pickle=True / trust_remote_code in the sources")
def _grep():
    root = ROOT
    hits = []
    for path in sorted((root / "src").rglob("*.py")) + sorted((root / "dataset_scripts").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if any(k in line for k in ("torch.load", "import pickle", "pickle.load", "allow_pickle=True",
                                       "trust_remote_code", "weights_only=False")):
                hits.append(f"{path.relative_to(root)}:{n}")
    return not hits, ", ".join(hits) or "none"

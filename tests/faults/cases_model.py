"""Fault cases of model folders and security: no code from a model folder, no pickle."""

from __future__ import annotations

import shutil

from harness import FX, ROOT, case, cli, expect_raises, expect_refused, predict, tests_path


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


# -- hostile or damaged model folders: refused before diffusers loads anything ---------------
def _pickle_beside(folder, sub, name):
    import torch

    torch.save(_Payload(FX.root / f"pwned-{sub}"), folder / sub / name)


def _drop_key(folder, sub):
    from safetensors.torch import load_file, save_file

    path = folder / sub / "diffusion_pytorch_model.safetensors"
    state = load_file(path)
    state.pop("norm_out.linear.weight" if sub == "transformer" else sorted(state)[0])
    save_file(state, path)


def _text_encoder_pickle_only(folder):
    import torch

    (folder / "text_encoder" / "model.safetensors").unlink()
    torch.save(_Payload(FX.root / "pwned-te"), folder / "text_encoder" / "pytorch_model.bin")


MODEL_FOLDERS = [  # (description, damage(folder), words of the refusal)
    ("pickle diffusion_pytorch_model.bin beside the transformer's safetensors",
     lambda m: _pickle_beside(m, "transformer", "diffusion_pytorch_model.bin"),
     ("transformer/diffusion_pytorch_model.bin: pickle weights", "never loaded")),
    ("pickle pytorch_model.bin beside a text encoder's safetensors",
     lambda m: _pickle_beside(m, "text_encoder_2", "pytorch_model.bin"),
     ("text_encoder_2/pytorch_model.bin: pickle weights",)),
    ("a text encoder with only pickle weights", _text_encoder_pickle_only,
     ("text_encoder: only pickle weights (pytorch_model.bin), which are never loaded",)),
    ("a transformer weight key missing", lambda m: _drop_key(m, "transformer"),
     ("transformer: the weights (diffusion_pytorch_model.safetensors) lack 1 of", "norm_out.linear.weight")),
    ("a prompt-cache weight key missing", lambda m: _drop_key(m, "prompt_cache"), ("prompt_cache: the weights",)),
    ("model_index.json is a JSON list", lambda m: (m / "model_index.json").write_text("[]"),
     ("model_index.json: not a pipeline index",)),
    ("model_index.json entry that is not [library, class]",
     lambda m: (m / "model_index.json").write_text((m / "model_index.json").read_text().replace(
         '"vae": [\n    "diffusers",\n    "AutoencoderKL"\n  ]', '"vae": "AutoencoderKL"')),
     ("model_index.json: entry 'vae' is 'AutoencoderKL'; expected [library, class name]",)),
    ("model_index.json in latin-1 with a stray byte", lambda m: (m / "model_index.json").write_bytes(b'{"a": "\xe9"}'),
     ("model_index.json: not valid JSON",)),
]


def _model_folder_case(damage, words):
    def run():
        model = FX.model_copy("damaged")
        damage(model)
        code, err = predict("depth", FX.image("dm/a.png"), out=FX.fresh("dm"), model=model)
        pwned = sorted(p.name for p in FX.root.glob("pwned-*"))
        ok, detail = expect_refused(code, err, *words)
        return ok and not pwned and "Traceback" not in err, detail + (f"; code ran: {pwned}" if pwned else "")
    return run


for _desc, _damage, _words in MODEL_FOLDERS:
    case("model folder", _desc)(_model_folder_case(_damage, _words))


@case("model folder", "every from_pretrained call is told use_safetensors=True (pipeline, base parts)")
def _use_safetensors():
    from unittest import mock

    from diffusers import DiffusionPipeline, ModelMixin

    from edit2perceive import Edit2PerceivePipeline

    seen = []
    real_pipe, real_model = DiffusionPipeline.from_pretrained.__func__, ModelMixin.from_pretrained.__func__

    def spy_pipe(cls, *a, **k):
        seen.append(("pipeline", k.get("use_safetensors")))
        return real_pipe(cls, *a, **k)

    def spy_model(cls, *a, **k):
        seen.append((cls.__name__, k.get("use_safetensors")))
        return real_model(cls, *a, **k)

    base = FX.model_copy("as-base")
    shared = FX.model_copy("shared")
    shutil.rmtree(shared / "vae")
    index = (shared / "model_index.json").read_text()
    (shared / "model_index.json").write_text(index.replace('"vae": [\n    "diffusers",\n    "AutoencoderKL"\n  ]',
                                                           '"vae": [\n    null,\n    null\n  ]'))
    with mock.patch.object(DiffusionPipeline, "from_pretrained", classmethod(spy_pipe)), \
            mock.patch.object(ModelMixin, "from_pretrained", classmethod(spy_model)):
        Edit2PerceivePipeline.from_pretrained(shared, base_model=str(base))
    refused = expect_raises(lambda: Edit2PerceivePipeline.from_pretrained(base, use_safetensors=False), ValueError,
                            "use_safetensors must be True")
    return all(v is True for _, v in seen) and ("AutoencoderKL", True) in seen and refused[0], f"{seen}; {refused[1]}"


@case("model folder", "a run of e2p predict emits no torch_dtype FutureWarning")
def _no_dtype_warning():
    import contextlib
    import io
    import warnings

    from edit2perceive.cli import main

    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("always")
        code = main(["predict", "--task", "depth", "--model", str(FX.model("depth")), str(FX.image("w/a.png")),
                     "--output-dir", str(FX.fresh("warn")), "--processing-resolution", "32"])
    noisy = [str(w.message)[:80] for w in caught if "torch_dtype" in str(w.message)]
    return code == 0 and not noisy, f"exit {code}; {noisy or 'no torch_dtype warning'}"


# -- e2p convert: released checkpoints that are not weights -----------------------------------
def _released(name: str, change):
    import torch

    from edit2perceive.testing import tiny_kontext_components

    tests_path("")
    from reference_fixtures import diffsynth_state_dict, write
    sd = {k: v.clone() for k, v in diffsynth_state_dict(tiny_kontext_components(seed=0)["transformer"].state_dict()).items()}
    key = "blocks.0.ff_a.0.weight"
    sd[key] = change(sd[key], torch)
    return write(FX.fresh(f"released-{name}") / "depth.safetensors", sd)


def _kontext_base():
    path = FX.root / "models" / "kontext-base"
    if not path.is_dir():
        from diffusers import FluxKontextPipeline

        from edit2perceive.testing import tiny_kontext_components

        FluxKontextPipeline(**tiny_kontext_components(seed=0)).save_pretrained(path)
    return path


RELEASED = [  # (description, change(tensor, torch), words of the refusal)
    ("BOOL 'weights'", lambda t, torch: t > 0, ("tensor blocks.0.ff_a.0.weight is BOOL, not floating-point weights",)),
    ("INT8 'weights'", lambda t, torch: t.to(torch.int8), ("blocks.0.ff_a.0.weight is I8",)),
    ("NaN weights", lambda t, torch: torch.where(torch.arange(t.numel()).view(t.shape) < 3, float("nan"), t),
     ("blocks.0.ff_a.0.weight holds 3 non-finite values",)),
]


def _convert_case(name, change, words):
    def run():
        ckpt = _released(name, change)
        out = FX.root / "work" / f"converted-{name}"
        code, err = cli("convert", "--task", "depth", "--reference-checkpoint", ckpt, "--base-model", _kontext_base(),
                        "--output-dir", out)
        ok, detail = expect_refused(code, err, *words)
        return ok and not out.exists(), detail
    return run


for _i, (_desc, _change, _words) in enumerate(RELEASED):
    case("model folder", f"e2p convert of a released checkpoint with {_desc}: refused, nothing written")(
        _convert_case(f"c{_i}", _change, _words))


@case("model folder", "e2p card on a folder whose model_index.json is not JSON: names the file, exit 2")
def _card_bad_index():
    model = FX.model_copy("card-bad-index")
    (model / "model_index.json").write_bytes(b"{\xe9")
    code, err = cli("card", model, "--output", FX.fresh("card-bad-index") / "README.md")
    return code == 2 and f"{model / 'model_index.json'}: not a model index" in err, (err.strip() or "-")[-160:]

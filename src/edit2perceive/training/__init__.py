"""Training: arguments, collator and the Trainer subclass (see trainer.py for the objective).

The names load lazily (transformers' Trainer is a heavy import), so ``examples/train_*.py`` can
say what it chose before anything heavy is imported."""

import importlib

_LAZY = {
    "Edit2PerceiveCollator": ".collator",
    "Edit2PerceiveTrainer": ".trainer",
    "Edit2PerceiveTrainingArguments": ".args",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)

"""Training: arguments, collator and the Trainer subclass (see trainer.py for the objective).

The names load lazily (transformers' Trainer is a heavy import), so ``examples/train_*.py`` can
say what it chose before anything heavy is imported."""

from ..core.lazy import lazy_exports

_LAZY = {
    "Edit2PerceiveCollator": ".collator",
    "Edit2PerceiveTrainer": ".trainer",
    "Edit2PerceiveTrainingArguments": ".args",
}

__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = sorted(_LAZY)

"""Training: arguments, collator and the Trainer subclass (see trainer.py for the objective)."""

from .args import Edit2PerceiveTrainingArguments
from .collator import Edit2PerceiveCollator
from .trainer import Edit2PerceiveTrainer

__all__ = ["Edit2PerceiveCollator", "Edit2PerceiveTrainer", "Edit2PerceiveTrainingArguments"]

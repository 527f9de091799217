"""Training data: one reader per dataset, synthetic scenes, transforms, streaming mixtures.

Every reader and the synthetic scenes yield the same example dict (see :mod:`.example`).
Readers import lazily-needed libraries (h5py, OpenEXR) only when reading those formats;
the streaming helpers import ``datasets`` on first use.
"""

from .am2k import AM2kReader
from .coco_matting import CocoMattingReader
from .composition1k import Composition1kReader
from .distinctions646 import Distinctions646Reader
from .example import BadDataLog, BadSampleError, make_example
from .hypersim import HypersimReader
from .interiorverse import InteriorVerseReader
from .sintel import SintelReader
from .synthetic import SyntheticScenes, render_scene, synthetic_scenes
from .transforms import TrainTransform
from .vkitti import VirtualKitti2Reader

READERS = {
    "hypersim": HypersimReader,
    "vkitti2": VirtualKitti2Reader,
    "interiorverse": InteriorVerseReader,
    "sintel": SintelReader,
    "composition1k": Composition1kReader,
    "distinctions646": Distinctions646Reader,
    "am2k": AM2kReader,
    "coco_matting": CocoMattingReader,
}

_STREAMING = {"MIXTURES", "source_dataset", "converted_dataset", "task_mixture", "split_by_node", "ConvertedRows",
              "BadRows", "TooMuchBadData"}


def __getattr__(name):
    if name in _STREAMING:  # keeps `import edit2perceive.data` free of the `datasets` import cost
        from . import streaming

        return getattr(streaming, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AM2kReader", "BadDataLog", "BadSampleError", "CocoMattingReader", "Composition1kReader",
    "Distinctions646Reader", "HypersimReader", "InteriorVerseReader", "READERS", "SintelReader",
    "SyntheticScenes", "TrainTransform", "VirtualKitti2Reader", "make_example", "render_scene",
    "synthetic_scenes", *sorted(_STREAMING),
]

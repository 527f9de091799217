"""Which reader serves which (task, dataset): ``BENCHMARK_READERS`` (training-data readers are
``edit2perceive.data.READERS``)."""

from __future__ import annotations

from .depth_diode import DIODEDepth
from .depth_eth3d import ETH3DDepth
from .depth_kitti import KITTIDepth
from .depth_nyuv2 import NYUv2Depth
from .depth_scannet import ScanNetDepth
from .io import BenchmarkReader
from .matting import MattingReader
from .normals import NormalsReader
from .protocols import DATASETS, Protocol

BENCHMARK_READERS = {
    ("depth", "nyuv2"): NYUv2Depth,
    ("depth", "kitti"): KITTIDepth,
    ("depth", "eth3d"): ETH3DDepth,
    ("depth", "scannet"): ScanNetDepth,
    ("depth", "diode"): DIODEDepth,
    **{("normal", d): NormalsReader for d in DATASETS["normal"]},
    **{("matting", d): MattingReader for d in DATASETS["matting"]},
}


def get_reader(protocol: Protocol, data_dir, split_file=None) -> BenchmarkReader:
    """The reader for the protocol's (task, dataset), listing ``data_dir``."""
    return BENCHMARK_READERS[(protocol.task, protocol.dataset)](data_dir, protocol, split_file)

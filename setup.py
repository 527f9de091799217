"""edit2perceive: FLUX.1 Kontext as a single-step dense perceiver (depth, normals, matting)."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

extras = {
    "train": [
        "accelerate>=1.0",
        "peft>=0.13",
        "bitsandbytes>=0.45",
        "datasets>=3.0",
        "h5py>=3.8",  # Hypersim raw HDF5
        "OpenEXR>=3.2",  # InteriorVerse EXR
    ],
    "eval": ["evaluate>=0.4", "scipy>=1.10", "datasets>=3.0", "scikit-image>=0.22"],
    "hub": ["huggingface_hub>=0.30"],
    "demo": ["gradio>=5", "scikit-image>=0.22"],
    # 3D export (PLY / GLB point clouds: trimesh writes and reads both) and video in/out
    "io": ["trimesh>=4", "imageio>=2.30", "imageio-ffmpeg>=0.5"],
    "dev": ["pytest>=8", "pytest-timeout", "ruff", "pyyaml", "gradio>=5", "playwright>=1.40"],
}
extras["deepspeed"] = ["deepspeed>=0.15"]  # ZeRO-2/3 (examples/configs/deepspeed_zero*.yaml); builds as pure Python
extras["all"] = sorted({req for reqs in extras.values() for req in reqs})

setup(
    name="edit2perceive",
    version="0.1.0.dev0",
    description="Image-editing diffusion transformers (FLUX.1 Kontext) as single-step dense perceivers.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    # the evaluate module scripts in metrics/<name>/ ship inside the package as
    # edit2perceive/metrics_modules/<name>/ (``e2p metrics install`` reads them from there)
    package_dir={"": "src", "edit2perceive.metrics_modules": "metrics"},
    packages=[*find_packages("src"), "edit2perceive.metrics_modules"],
    package_data={"edit2perceive.metrics_modules": ["*/*.py", "*/README.md"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4",
        "diffusers>=0.35",
        "transformers>=4.50",
        "tokenizers>=0.20",
        "safetensors>=0.4",
        "sentencepiece",
        "protobuf",
        "numpy>=1.24",
        "pillow>=10",
        "tqdm",
        "scipy>=1.10",  # depth ensembling (diffusers' ensemble_depth) and robust metric-depth fits
    ],
    extras_require=extras,
    entry_points={"console_scripts": ["e2p=edit2perceive.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)

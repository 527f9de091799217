"""A small web demo: upload an image, choose the task, click foreground points for matting,
see the result and download the outputs.

    python examples/app.py --depth out/depth --normal out/normal --matting out/matting
    python examples/app.py --demo-report demo_report     # the models `make demo` trained
    python examples/app.py                               # tiny random models (wiring check only)
    python examples/app.py --reference-checkpoint Seq2Tri/Edit2Perceive/depth.safetensors \
        --base-model black-forest-labs/FLUX.1-Kontext-dev  # the authors' released models

Needs `pip install gradio`. (No `from __future__ import annotations` here: gradio reads the
`gr.SelectData` annotation at run time.)
"""


import argparse
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image

from edit2perceive.tasks import TASKS


def load_pipelines(paths: dict[str, str | None], base_model: str | None = None) -> dict:
    """``{task: Edit2PerceivePipeline}``; tasks without a path get tiny random components.
    A path ending in ``.safetensors`` is a released reference checkpoint; ``base_model`` fills
    what a model leaves out (VAE, base transformer under a LoRA, text encoders)."""
    from edit2perceive import Edit2PerceivePipeline
    from edit2perceive.pipelines.loading import load_pipeline
    from edit2perceive.testing import tiny_kontext_components

    pipes = {}
    for task in TASKS:
        if paths.get(task):
            reference = str(paths[task]).endswith(".safetensors")
            pipe = load_pipeline(None if reference else paths[task], task=task, base_model=base_model,
                                 reference_checkpoint=paths[task] if reference else None)
        else:
            pipe = Edit2PerceivePipeline(**tiny_kontext_components(seed=0), task=task)
        pipe.set_progress_bar_config(disable=True)
        pipes[task] = pipe
    return pipes


def predict(pipes: dict, image: np.ndarray, task: str, points: list, resolution: int, out_dir: str):
    """One prediction: ``(panel image, [output files])``; raises ``gr.Error`` on bad input."""
    import gradio as gr

    from edit2perceive.outputs.visualize import render_outputs, write_outputs

    if image is None:
        raise gr.Error("Upload an image first.")
    if task == "matting" and not points:
        raise gr.Error("Matting needs foreground points: click on the object in the image.")
    rgb = PIL.Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    try:
        out = pipes[task](rgb, points=[points] if task == "matting" else None, processing_resolution=int(resolution))
    except ValueError as err:
        raise gr.Error(str(err)) from err
    outputs = render_outputs(task, rgb, out.prediction[0], points=points if task == "matting" else None)
    files = write_outputs(outputs, out_dir, f"{task}")
    return outputs["panel.png"], [str(f) for f in files]


def build_app(pipes: dict, *, default_resolution: int = 256):
    import gradio as gr

    out_dir = tempfile.mkdtemp(prefix="e2p-app-")
    with gr.Blocks(title="Edit2Perceive") as app:
        gr.Markdown("# Edit2Perceive\nDepth, surface normals and point-prompted matting in one step. "
                    "For matting, click foreground points on the image.")
        points = gr.State([])
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Input image", type="numpy", elem_id="input-image")
                task = gr.Radio(list(TASKS), value="depth", label="Task", elem_id="task")
                resolution = gr.Slider(64, 1024, value=default_resolution, step=16, label="Processing resolution")
                point_text = gr.Textbox(label="Foreground points (x, y)", interactive=False, elem_id="points")
                with gr.Row():
                    clear = gr.Button("Clear points")
                    run = gr.Button("Run", variant="primary", elem_id="run")
            with gr.Column():
                result = gr.Image(label="Result (input | prediction)", elem_id="result")
                downloads = gr.File(label="Download outputs", file_count="multiple", elem_id="downloads")

        def add_point(pts, evt: gr.SelectData):
            pts = [*pts, (int(evt.index[0]), int(evt.index[1]))]
            return pts, ", ".join(f"({x}, {y})" for x, y in pts)

        image.select(add_point, inputs=[points], outputs=[points, point_text])
        image.upload(lambda: ([], ""), outputs=[points, point_text])
        clear.click(lambda: ([], ""), outputs=[points, point_text])
        run.click(lambda img, t, pts, res: predict(pipes, img, t, pts, res, out_dir),
                  inputs=[image, task, points, resolution], outputs=[result, downloads])
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for task in TASKS:
        parser.add_argument(f"--{task}", default=None, help=f"{task} model folder or Hub id")
    parser.add_argument("--demo-report", type=Path, default=None, help="use the models of a `make demo` report")
    parser.add_argument("--reference-checkpoint", nargs="+", default=[], metavar="FILE",
                        help="released checkpoints (local or Hub files); the task comes from each file name")
    parser.add_argument("--base-model", default=None, metavar="DIR_OR_ID",
                        help="FLUX.1 Kontext base for what the models leave out "
                             "(default for released checkpoints: black-forest-labs/FLUX.1-Kontext-dev)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true")
    args = parser.parse_args(argv)
    paths = {t: getattr(args, t) for t in TASKS}
    if args.demo_report:
        paths = {t: paths[t] or str(args.demo_report / "models" / t) for t in TASKS}
    from edit2perceive.reference.loading import task_from_filename

    for file in args.reference_checkpoint:
        paths[task_from_filename(file)] = file
    build_app(load_pipelines(paths, base_model=args.base_model)).launch(server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()

"""The node pack in a real ComfyUI, headless: opt-in, as ComfyUI itself is not a package on
the registries. Set ``E2P_COMFYUI_DIR`` to a ComfyUI checkout whose requirements are installed
for ``E2P_COMFYUI_PYTHON`` (default: this Python). The server starts on the CPU with a
temporary base directory (``custom_nodes/`` linking this repository's ``comfyui/``), the
example workflow is queued over HTTP with the tiny saved models in place of the released
checkpoints, and the saved PNGs are compared with the pipeline's own prediction. With Debian's
chromium and Playwright, ComfyUI's own frontend also loads the UI-format workflow and turns it
into the API prompt, which must equal the API-format file."""

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from edit2perceive import Edit2PerceivePipeline

ROOT = Path(__file__).resolve().parents[2]
COMFYUI = os.environ.get("E2P_COMFYUI_DIR")
pytestmark = pytest.mark.skipif(not COMFYUI, reason="set E2P_COMFYUI_DIR to a ComfyUI checkout to run")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, base: Path):
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        self.log = open(base / "server.log", "w")
        self.process = subprocess.Popen(
            [os.environ.get("E2P_COMFYUI_PYTHON", sys.executable), "main.py", "--cpu", "--listen", "127.0.0.1",
             "--port", self.url.rsplit(":", 1)[1], "--base-directory", str(base), "--disable-auto-launch",
             "--database-url", "sqlite:///:memory:"],
            cwd=COMFYUI, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def request(self, path, data=None):
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            return {"http_error": err.code, "body": json.loads(err.read())}

    def wait_ready(self, timeout=300):
        end = time.time() + timeout
        while time.time() < end:
            assert self.process.poll() is None, "ComfyUI exited: see server.log"
            try:
                return self.request("/object_info")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(1)
        raise TimeoutError("ComfyUI did not start")

    def run(self, prompt, timeout=300):
        queued = self.request("/prompt", {"prompt": prompt, "client_id": str(uuid.uuid4())})
        assert "prompt_id" in queued, queued
        pid, end = queued["prompt_id"], time.time() + timeout
        while time.time() < end:
            status = self.request(f"/history/{pid}").get(pid, {}).get("status", {})
            if status.get("completed") or status.get("status_str") == "error":
                return self.request(f"/history/{pid}")[pid]
            time.sleep(0.5)
        raise TimeoutError(pid)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def test_example_workflow_in_a_real_comfyui(tiny_components, tmp_path):
    base = tmp_path / "comfy"
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "edit2perceive").symlink_to(ROOT / "comfyui", target_is_directory=True)
    (base / "input").mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (36, 52, 3)).astype(np.uint8)
    PIL.Image.fromarray(rgb).save(base / "input" / "example.png")
    prompts = {}
    for name in ("depth_normals_api.json", "matting_api.json"):
        prompt = copy.deepcopy(json.loads((ROOT / "examples" / "comfyui" / name).read_text()))
        for node in prompt.values():
            if node["class_type"] == "Edit2PerceiveModelLoader":
                task = node["inputs"]["task"]
                Edit2PerceivePipeline(**tiny_components, task=task).save_pretrained(tmp_path / task)
                node["inputs"].update(model=str(tmp_path / task), base_model="", device="cpu", dtype="float32")
            if "processing_resolution" in node["inputs"]:
                node["inputs"]["processing_resolution"] = 32
        prompts[name] = prompt
    prompt = prompts["depth_normals_api.json"]

    server = Server(base)
    try:
        info = server.wait_ready()
        assert {"Edit2PerceiveModelLoader", "Edit2PerceiveDepth", "Edit2PerceiveNormals",
                "Edit2PerceiveMatting"} <= set(info)
        assert info["Edit2PerceiveDepth"]["display_name"] == "Edit2Perceive depth"
        result = server.run(prompt)
        assert result["status"]["status_str"] == "success", result["status"]
        matting = server.run(prompts["matting_api.json"])
        assert matting["status"]["status_str"] == "success", matting["status"]

        wrong = copy.deepcopy(prompt)
        wrong["4"]["inputs"]["e2p_pipe"] = ["3", 0]  # the normal model into the depth node
        errors = [m[1] for m in server.run(wrong)["status"]["messages"] if m[0] == "execution_error"]
        assert errors and "use the 'Edit2Perceive normals' node" in errors[0]["exception_message"]
    finally:
        server.stop()

    files = {node: result["outputs"][node]["images"][0] for node in ("6", "7")}
    depth = np.asarray(PIL.Image.open(base / "output" / files["6"]["subfolder"] / files["6"]["filename"]))
    normals = np.asarray(PIL.Image.open(base / "output" / files["7"]["subfolder"] / files["7"]["filename"]))
    assert depth.shape == normals.shape == (36, 52, 3)
    pipe = Edit2PerceivePipeline.from_pretrained(tmp_path / "depth")
    image = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()
    ref = 255.0 * (1.0 - pipe(image, processing_resolution=32).prediction[0])
    assert np.abs(depth[..., 0] - ref).max() <= 1.0 + 1e-3  # Save Image truncates to 8 bits

    saved = matting["outputs"]["5"]["images"][0]  # the alpha, through Convert Mask to Image
    alpha = np.asarray(PIL.Image.open(base / "output" / saved["subfolder"] / saved["filename"]))
    pipe = Edit2PerceivePipeline.from_pretrained(tmp_path / "matting")
    ref = 255.0 * pipe(image, processing_resolution=32, points=[[(26.0, 18.0)]]).prediction[0]
    assert np.abs(alpha[..., 0] - ref).max() <= 1.0 + 1e-3
    saved = matting["outputs"]["6"]["images"][0]
    assert PIL.Image.open(base / "output" / saved["subfolder"] / saved["filename"]).mode == "RGBA"  # the cut-out


def test_frontend_turns_the_ui_workflow_into_the_api_workflow(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    base = tmp_path / "comfy"
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "edit2perceive").symlink_to(ROOT / "comfyui", target_is_directory=True)
    pairs = [("depth_normals_workflow.json", "depth_normals_api.json"), ("matting_workflow.json", "matting_api.json")]
    prompts = []
    server = Server(base)
    try:
        server.wait_ready()
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph && "
                                   "LiteGraph.registered_node_types['Edit2PerceiveDepth']", timeout=120_000)
            fresh = page.evaluate("() => { const n = LiteGraph.createNode('Edit2PerceiveDepth'); "
                                  "app.graph.add(n); return n.widgets.map(w => [w.name, w.value]); }")
            for ui_name, _ in pairs:
                ui = json.loads((ROOT / "examples" / "comfyui" / ui_name).read_text())
                prompts.append(page.evaluate("async (wf) => { await window.app.loadGraphData(wf); "
                                             "return (await window.app.graphToPrompt()).output; }", ui))
            browser.close()
    finally:
        server.stop()

    def strip(prompt):
        return {key: {"class_type": node["class_type"], "inputs": node["inputs"]} for key, node in prompt.items()}

    # a new node's widgets: the defaults, and no control-after-generate beside the seed
    assert fresh == [["steps", 1], ["processing_resolution", 768], ["ensemble_size", 1], ["seed", 0],
                     ["output_uncertainty", False]]
    for (_, api_name), prompt in zip(pairs, prompts):
        assert strip(prompt) == strip(json.loads((ROOT / "examples" / "comfyui" / api_name).read_text())), api_name


def test_progress_bar_and_cancel_in_a_real_comfyui(tiny_components, tmp_path):
    """ComfyUI's progress messages (websocket) count the batch's images, and Cancel (``POST
    /interrupt``) stops the node between two images."""
    aiohttp = pytest.importorskip("aiohttp")
    import asyncio

    base = tmp_path / "comfy"
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "edit2perceive").symlink_to(ROOT / "comfyui", target_is_directory=True)
    (base / "input").mkdir()
    PIL.Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(base / "input" / "example.png")
    Edit2PerceivePipeline(**tiny_components, task="depth").save_pretrained(tmp_path / "depth")
    api = json.loads((ROOT / "examples" / "comfyui" / "depth_normals_api.json").read_text())

    def batch_prompt(amount):
        prompt = {key: copy.deepcopy(api[key]) for key in ("1", "2", "4", "6")}
        prompt["2"]["inputs"].update(model=str(tmp_path / "depth"), base_model="", device="cpu", dtype="float32")
        prompt["4"]["inputs"].update(image=["8", 0], processing_resolution=32)
        prompt["8"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": amount}}
        return prompt

    async def watch(url, prompt, interrupt_at=None):
        client_id, progress = str(uuid.uuid4()), []
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url.replace("http", "ws") + f"/ws?clientId={client_id}") as ws:
                async with session.post(url + "/prompt", json={"prompt": prompt, "client_id": client_id}) as r:
                    prompt_id = (await r.json())["prompt_id"]
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue  # binary preview frames
                    event = json.loads(message.data)
                    data = event.get("data", {})
                    if event["type"] == "progress" and data.get("node") == "4":
                        progress.append((data["value"], data["max"]))
                        if interrupt_at is not None and data["value"] == interrupt_at:
                            await session.post(url + "/interrupt", json={})
                    if event["type"] in ("execution_success", "execution_error", "execution_interrupted") and \
                            data.get("prompt_id") == prompt_id:
                        return event["type"], progress

    server = Server(base)
    try:
        server.wait_ready()
        done, progress = asyncio.run(asyncio.wait_for(watch(server.url, batch_prompt(4)), 300))
        assert done == "execution_success" and progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
        done, progress = asyncio.run(asyncio.wait_for(watch(server.url, batch_prompt(200), interrupt_at=2), 300))
    finally:
        server.stop()
    assert done == "execution_interrupted"
    assert 2 <= len(progress) < 10 and progress[-1][1] == 200  # stopped between images, far before the end

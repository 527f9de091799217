"""The Gradio demo, clicked through in a real headless browser (Debian chromium + Playwright)."""

import importlib.util
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")

APP = Path(__file__).resolve().parents[1] / "examples" / "app.py"


def _load_app_module():
    spec = importlib.util.spec_from_file_location("e2p_app", APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules["e2p_app"] = module
    spec.loader.exec_module(module)
    return module


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    app_module = _load_app_module()
    app = app_module.build_app(app_module.load_pipelines({}), default_resolution=64)
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}"
    app.close()


def test_matting_click_through(server, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)).save(photo)
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page()
        page.goto(server)
        page.locator("#input-image input[type=file]").set_input_files(str(photo))
        uploaded = page.locator("#input-image img").first
        uploaded.wait_for(timeout=30_000)
        page.get_by_label("matting").check()
        box = uploaded.bounding_box()
        uploaded.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.5})
        page.wait_for_function("document.querySelector('#points textarea, #points input').value.includes('(')",
                               timeout=30_000)
        page.locator("#run").click()
        page.locator("#result img").first.wait_for(timeout=60_000)
        page.locator('#downloads [aria-label="matting_alpha.png"]').wait_for(timeout=30_000)
        names = page.locator("#downloads td.filename").evaluate_all("cells => cells.map(c => c.getAttribute('aria-label'))")
        link = page.locator('#downloads tr:has([aria-label="matting_alpha.npy"]) a[data-testid="download-link"]')
        downloaded = page.request.get(link.get_attribute("href")).body()
        page.screenshot(path=str(tmp_path / "app.png"))
        points_text = page.locator("#points textarea, #points input").first.input_value()
        browser.close()
    x, y = (int(v) for v in points_text.strip("()").split(", ")[:2])
    assert 40 <= x <= 88 and 28 <= y <= 68  # the click landed near the centre of the 128x96 image
    assert sorted(names) == ["matting_alpha.npy", "matting_alpha.png", "matting_cutout.png", "matting_panel.png"]
    (tmp_path / "alpha.npy").write_bytes(downloaded)
    alpha = np.load(tmp_path / "alpha.npy")  # the real prediction came back through the browser
    assert alpha.shape == (96, 128) and 0 <= alpha.min() <= alpha.max() <= 1

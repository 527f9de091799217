"""The offline examples of the README and of docs/*.md run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(doc, b) for doc in DOCS for b in re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
          if "tiny_kontext_components" in b]


@pytest.mark.parametrize(("doc", "block"), BLOCKS,
                         ids=[f"{doc.relative_to(ROOT)}:block{i}" for i, (doc, _) in enumerate(BLOCKS)])
def test_readme_example_runs(doc, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(doc), "exec"), {})


def test_every_link_between_the_docs_resolves():
    for doc in [*DOCS, ROOT / "benchmarks" / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to missing {target}"

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


def _anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", doc.read_text(), re.M)}


def test_every_link_between_the_docs_resolves():
    for doc in [*DOCS, ROOT / "benchmarks" / "README.md"]:
        for target, anchor in re.findall(r"\]\(([^)#:]*)(?:#([^)]*))?\)", doc.read_text()):
            path = doc.parent / target if target else doc
            assert path.exists(), f"{doc.relative_to(ROOT)} links to missing {target}"
            if anchor and path.suffix == ".md":
                assert anchor in _anchors(path), f"{doc.relative_to(ROOT)} links to {target}#{anchor}: no such heading"

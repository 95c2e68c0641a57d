"""Every Python example in the README and the documentation site runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "docs" / "index.md"  # the README, as the site's home page
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if p != INDEX)]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _examples(page: Path) -> str:
    """The page's Python blocks, in order, as one script."""
    return "\n".join(_BLOCK.findall(page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", [p for p in PAGES if _examples(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page's Python blocks run top to bottom in an empty folder, as a reader pastes them
    (in this process, with its own namespace: a fresh interpreter per page costs seconds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    code = compile(_examples(page), str(page.relative_to(ROOT)), "exec")
    try:
        exec(code, {"__name__": "__main__"})
    finally:
        plt.close("all")


@pytest.mark.hardening  # .ci/run builds the site --strict before the tests, too
def test_the_site_builds_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict` builds the site, the API reference included, without a warning."""
    pytest.importorskip("mkdocstrings", reason="the docs extra: pip install -e '.[docs]'")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                          "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "site" / "api" / "analytics" / "index.html").is_file()


def site_home(readme: str) -> str:
    """The README as the site's home page: links into docs/ made relative to it."""
    return (readme.replace("](docs/", "](")
            .replace("[SECURITY.md](SECURITY.md)", "the repository's `SECURITY.md`")
            .replace("The documentation site (`mkdocs serve`, or the Markdown under `docs/`):",
                     "The pages of this site:")
            .replace("[Data dictionary](data-dictionary.md), API reference |",
                     "[Data dictionary](data-dictionary.md), [API reference](api/ingest.md) |"))


def test_the_site_home_is_the_readme() -> None:
    """docs/index.md is the README with its links made relative to docs/ (copy it again,
    through ``site_home``, whenever the README changes)."""
    assert INDEX.read_text(encoding="utf-8") == site_home(
        (ROOT / "README.md").read_text(encoding="utf-8"))

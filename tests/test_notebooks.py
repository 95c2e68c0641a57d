"""The notebooks: each runs top to bottom on the bundled sample without an error, a warning or a
write into the repository, and the committed files stay stripped of outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

from shadeanalytics.testing.fakeapi import DEFAULT_SECRETS

NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_fleet_overview.ipynb",
    "02_costs.ipynb",
    "03_gpu_inventory.ipynb",
    "04_status_timelines.ipynb",
    "05_live_collection.ipynb",
]
CELL_TIMEOUT_S = 120
#: cells whose printed text is pinned: (notebook, cell id) -> stdout
PRINTED = {
    ("01_fleet_overview.ipynb", "cell-04"): (
        "17 polls from 2026-11-16 00:00 to 2026-11-20 00:00 UTC\n"  # one poll count only
        "every poll: 265 cluster rows, 1,958 instance rows\n"
        "latest:     28 clusters, 202 instances\n"),
}
# what the notebooks must leave as they found it (names, sizes and mtimes of every file)
WATCHED = (NOTEBOOK_DIR, ROOT / "data")


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(ROOT)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_the_five_notebooks() -> None:
    """The notebooks folder holds exactly the five expected notebooks."""
    assert [p.name for p in NOTEBOOKS] == EXPECTED


#: The fast tier executes the first notebook; the hardening tier the other four (5-10 s each),
#: so every notebook runs top to bottom in .ci/run and the README's command stays short.
_RUNS = [pytest.param(p, marks=() if p.name.startswith("01_") else pytest.mark.hardening)
         for p in NOTEBOOKS]


@pytest.mark.parametrize("path", _RUNS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executed as Jupyter would (kernel python3, cwd notebooks/): no error, nothing on stderr
    (a warning there is what a new user would see first), no secret of the sample or the fake
    API in any output, and no file written in the repo."""
    # the kernel inherits the environment: no real key or server may leak into the demo
    for name in ("SHADEFORM_API_KEY", "SHADEFORM_BASE_URL", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    nb = nbformat.read(path, as_version=4)
    top_level = {p.name for p in ROOT.iterdir()}
    before = {str(folder): _files(folder) for folder in WATCHED}
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    pinned = set()
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        stderr = "".join(out.get("text", "") for out in cell.outputs
                         if out.output_type == "stream" and out.name == "stderr")
        assert not stderr, f"{path.name}, cell {number} wrote to stderr:\n{stderr}"
        if (path.name, cell.get("id")) in PRINTED:
            stdout = "".join(out.get("text", "") for out in cell.outputs
                             if out.output_type == "stream" and out.name == "stdout")
            assert stdout == PRINTED[path.name, cell.get("id")], (path.name, cell.get("id"))
            pinned.add(cell.get("id"))
    assert pinned == {cell for name, cell in PRINTED if name == path.name}
    shown = nbformat.writes(nb)
    leaked = [s for s in (*DEFAULT_SECRETS, "sa-fake-secret-") if s in shown]
    assert not leaked, f"{path.name} shows a secret"
    images = sum("image/png" in out.get("data", {}) for cell in nb.cells
                 if cell.cell_type == "code" for out in cell.outputs)
    if path.name != "05_live_collection.ipynb":
        assert images, f"{path.name} rendered no chart"
    assert {p.name for p in ROOT.iterdir()} == top_level, "a notebook wrote into the repo root"
    for folder in WATCHED:
        assert _files(folder) == before[str(folder)], f"a notebook changed files in {folder}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(path: Path) -> None:
    """Committed without outputs, execution counts or per-machine metadata (run them, then
    clear all outputs before committing; `jupyter nbconvert --clear-output --inplace`)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert set(nb.metadata) <= {"kernelspec", "language_info"}
    assert set(nb.metadata.get("language_info", {})) <= {"name"}
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], f"{path.name}: a cell has outputs"
        assert cell.execution_count is None, f"{path.name}: a cell has an execution count"
    for cell in nb.cells:
        assert not cell.metadata, f"{path.name}: a cell has metadata {dict(cell.metadata)}"
    assert 8 <= len(nb.cells) <= 20, f"{path.name}: {len(nb.cells)} cells"


def test_notebooks_use_no_network_or_real_key() -> None:
    """The demo notebooks talk to nothing but the fake API on 127.0.0.1."""
    for path in NOTEBOOKS:
        sources = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells
                            if cell.cell_type == "code")
        assert "api.shadeform.ai" not in sources, path.name
        assert "SHADEFORM_API_KEY" not in sources, path.name

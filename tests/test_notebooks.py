"""Execute the walk-through notebooks at a small size (``JACC_NOTEBOOK_SMALL=1``)."""

import os
import pathlib

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
# what each notebook's outputs must say once run: a converged match and LOCO, sampled
# posteriors; the IPI pipeline's port check and its gradients against finite differences
CONCLUSIONS = {
    "iota_matching_loco.ipynb": ("match: converged", "LOCO: converged", "max R-hat",
                                 "inside their 90% credible interval"),
    "ipi_pipeline.ipynb": ("cannot feed input", "central difference",
                           "identical after a JSON round trip: True"),
    "iota_nonlinear.ipynb": ("invariant spread ratio", "frequency map:", "dynamic aperture per ray",
                             "detuning agrees within"),
}


# a notebook compiles its programs in a fresh kernel (IOTA's LOCO walk-through: about 5
# minutes): the second step of `make test`
@pytest.mark.slow
@pytest.mark.parametrize("name", ["iota_matching_loco.ipynb", "ipi_pipeline.ipynb", "iota_nonlinear.ipynb"])
def test_notebook_runs(name, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("JACC_NOTEBOOK_SMALL", "1")  # inherited by the kernel
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    # the walk-through reached its conclusions
    for phrase in CONCLUSIONS[name]:
        assert phrase in text, f"{name}: no output says {phrase!r}"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors

"""The example notebook runs top to bottom in a Jupyter kernel (nbclient), showing live HTML
progress, inline pictures, an accuracy above chance and a prediction."""

import os
import re

import nbformat
from nbclient import NotebookClient

from conftest import REPO


def test_the_example_notebook_runs_and_shows_its_results(tmp_path):
    nb = nbformat.read(os.path.join(REPO, "examples", "fastvision.ipynb"), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = [k for o in outputs for k in o.get("data", {})]
    assert kinds.count("image/png") >= 5, "show_batch, lr_find, show_results and two plots inline"
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("<progress" in h and "accuracy" in h for h in html), "the live bar and epoch table"
    text = "".join(o.get("text", "") for o in outputs)
    accuracy = float(re.search(r"accuracy (\d\.\d+)", text).group(1))
    assert accuracy > 0.5, f"accuracy {accuracy} (chance 0.1)"
    assert re.search(r"predicted \S+ \(\d\.\d\d\), actually \S+", text)

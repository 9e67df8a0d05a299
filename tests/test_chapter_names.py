"""Every ``fwd.<name>``, ``mnist.<name>``, ``inc.<name>``, ``noise.<name>`` and ``smoothness.<name>``
a chapter calls exists: chapters 02, 04, 05, 07 and 08 reach their experiment packages through
names re-exported by the packages' ``__init__``."""

import json
import re
from pathlib import Path

import pytest

from bn_utils.experiments import (
    ch02_forward_pass as forward_pass, ch05_cifar_inception as inception, ch04_mnist as mnist,
    ch07_santurkar_noise as noise, ch08_santurkar_smoothness as smoothness)

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
PACKAGES = {"02_forward_pass.ipynb": ("fwd", forward_pass), "04_mnist.ipynb": ("mnist", mnist),
            "05_cifar_inception.ipynb": ("inc", inception), "07_santurkar_noise.ipynb": ("noise", noise),
            "08_santurkar_smoothness.ipynb": ("smoothness", smoothness)}


@pytest.mark.parametrize("notebook", sorted(PACKAGES))
def test_every_name_the_chapter_calls_is_exported(notebook):
    alias, package = PACKAGES[notebook]
    cells = json.loads((CHAPTERS / notebook).read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    names = set(re.findall(rf"\b{alias}\.([A-Za-z_][A-Za-z_0-9]*)", code))
    assert names, f"{notebook} calls nothing through {alias}"
    assert not sorted(n for n in names if not hasattr(package, n))

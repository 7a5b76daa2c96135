"""The docs: every command they show composes with the current configs, and every page is reachable from the README.

The rules for placeholders, synopses and sweeps are in :mod:`tests.helpers.doc_commands`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.helpers.doc_commands import composition_errors, doc_commands

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]
# Pages another branch writes: checked once they exist.
PENDING = {REPO / "docs" / "install.md"}


def test_every_command_in_the_docs_composes_with_the_current_configs():
    commands = [command for page in DOCS for command in doc_commands(page, REPO)]
    kinds = Counter(command.config for command in commands)
    assert {"train", "eval", "predict", "export", "report"} <= set(kinds) and len(commands) >= 60, kinds
    errors = composition_errors(commands)
    assert not errors, "doc commands that no longer compose:\n" + "\n".join(errors)


BAD = """\
```bash
python train.py model/backbone=resnet7             # not an option
python train.py -m optimizer.lrr=0.01,0.001        # a misspelt key in a sweep
```

Evaluate with `python eval.py ckpt_path=<ckpt> model.center_treshold=0.0`, sweep with
`python train.py optimizer.lr=0.01,0.001` (no -m), export with `python -m seglab.commands.export ckpt_path=<ckpt>`,
report with `seglab-report input_size=[512,1024] erf_sample=2`.

```bash
python train.py -m model=deeplabv3,deeplabv3plus optimizer.lr=0.01,0.001   # fine
python eval.py ckpt_path=<run dir>/best.ckpt model.center_threshold=0.0 eval.split=val|test   # fine
torchrun --nproc_per_node=4 train.py trainer=ddp hydra.run.dir=$RUN_DIR && seglab-predict ckpt_path=<ckpt> \\
    input='photos/*.jpg' [output_dir=<dir>]   # fine
```
"""


def test_a_doc_command_that_no_longer_composes_is_reported_by_file_and_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(BAD)
    commands = doc_commands(page, tmp_path)
    assert sorted((c.where, c.config) for c in commands) == [
        ("page.md:11", "train"), ("page.md:12", "eval"), ("page.md:13", "predict"), ("page.md:13", "train"),
        ("page.md:2", "train"), ("page.md:3", "train"), ("page.md:6", "eval"), ("page.md:7", ""), ("page.md:7", "train"),
        ("page.md:8", "report"),
    ]  # fmt: skip
    errors = dict(error.split(" -> ", 1) for error in composition_errors(commands))
    assert {where.split(": ")[0] for where in errors} == {"page.md:2", "page.md:3", "page.md:6", "page.md:7", "page.md:8"}
    assert len(errors) == 6, errors  # both commands of line 7; none of the fine ones
    messages = " | ".join(errors.values())
    for fragment in ("resnet7", "optimizer.lrr", "model.center_treshold=0.0 fits no model preset", "optimizer.lr=0.01,0.001",
                     "seglab.commands.export is an outdated module path", "erf_sample"):
        assert fragment in messages, (fragment, messages)


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_doc_page_is_linked_from_the_readme():
    linked = {(REPO / link.split("#")[0]).resolve() for link in _links(REPO / "README.md") if not link.startswith("http")}
    assert set(DOCS[1:]) - linked == set()


@pytest.mark.parametrize("page", DOCS, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_reaches_a_file_and_its_heading(page):
    for link in _links(page):
        if re.match(r"\w+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if target in PENDING and not target.exists():
            continue
        assert target.exists(), f"{page.relative_to(REPO)}: {link} does not exist"
        if anchor:
            assert anchor in _anchors(target), f"{page.relative_to(REPO)}: {link} has no heading #{anchor}"

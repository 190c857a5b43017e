"""Every Python block of README.md runs as written, in order, in one fresh interpreter
started outside the checkout (so the installed lmm is the one used), with lmm's own
warnings left on: a block that fails, or a name a block uses before any block defines
it, fails here."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    text = README.read_text()
    return [b for lang, b in re.findall(r"```(\w*)\n(.*?)```", text, re.S) if lang == "python"]


def test_readme_python_blocks_run_in_order(tmp_path):
    blocks = python_blocks()
    assert len(blocks) >= 8
    script = "import matplotlib\nmatplotlib.use('Agg')\n" + "\n".join(
        f"print('--- block {i}', flush=True)\n{b}" for i, b in enumerate(blocks))
    path = tmp_path / "readme_blocks.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    last = [line for line in proc.stdout.splitlines() if line.startswith("--- block")]
    assert proc.returncode == 0, (last[-1:], proc.stderr[-3000:])


def docs_blocks():
    """The literal blocks (``::``) of the documentation's pages, page by page."""
    out = []
    for page in sorted((README.parent / "docs").glob("*.rst")):
        text = page.read_text()
        for match in re.finditer(r"::\n\n((?:    .*\n|\n)+)", text):
            lines = [line[4:] for line in match.group(1).splitlines()]
            out.append((page.name, "\n".join(lines).strip() + "\n"))
    return out


def test_docs_code_blocks_run(tmp_path):
    blocks = docs_blocks()
    assert blocks, "the docs have code blocks"
    for name, code in blocks:
        path = tmp_path / "block.py"
        path.write_text(code)
        proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)
        assert proc.returncode == 0, (name, code, proc.stderr[-2000:])

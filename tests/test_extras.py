"""A command that needs an extra that is not installed says so in one line, naming the
extra (exit 2); the core commands never import what an extra brings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

# Runs the console script with the extra's modules made unimportable (as in an install
# without the extra), then lists the modules the command imported.
_RUN = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # `import name` raises ImportError
sys.argv = ["vbridge", *{argv!r}]
from vbridge.entry_point import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print("IMPORTED", sorted(m for m in {watched!r} if sys.modules.get(m) is not None))
sys.exit(code)
"""


def _vbridge(
    argv: list[str], blocked: list[str], watched: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    code = _RUN.format(blocked=blocked, argv=argv, watched=watched)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_inventory_without_its_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    prefix = FIXTURES / "conda" / "py36-osx-whl"
    result = _vbridge(
        ["scan", "--db", str(tmp_path / "inv.db"), str(prefix)], ["sqlite_utils"], [], tmp_path
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "pip install 'vbridge[inventory]'" in lines[0]
    assert lines[0].startswith("vbridge: ")


def test_core_commands_import_no_extra_and_no_rattler(tmp_path: Path) -> None:
    prefix = FIXTURES / "conda" / "py36-osx-whl"
    for argv in (["scan", "--json", str(prefix)], ["check", str(prefix)]):
        result = _vbridge(argv, ["sqlite_utils", "rattler"], ["sqlite_utils", "rattler"], tmp_path)
        assert result.returncode in (0, 1), result.stderr
        assert "IMPORTED []" in result.stdout

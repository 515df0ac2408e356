"""The pip gate: check what pip would install, then install exactly that, or refuse.

``vbridge pip install ARGS...`` runs, against the target environment's interpreter:

1. ``pip install --dry-run --report R --quiet ARGS``: pip resolves with every user
   argument and reports what it would install (name, version, URL, hash);
2. ``pip download --no-deps`` of each reported URL into a temporary directory (an
   artifact that is not a wheel is built once with ``pip wheel --no-deps``), each file
   checked against the report's sha256;
3. the checker (vbridge/decide/checker.py) reads those wheels and decides against a scan of
   the environment;
4. ``pip install --no-deps [where-to-install options] FILES``: the files checked, with
   no second resolution. On a refusal nothing is installed and the exit status is 1.

Which pip options matter for which step is data: ``data/pip.toml``.

``vbridge pip uninstall ARGS...`` checks the distributions named (and those of
``-r FILE``) against the scan first: pip would remove the copy Python imports, and when
conda, apt or Spack owns it the removal is refused (``ownership.remove``); otherwise
``pip uninstall ARGS`` runs as typed.

>>> uninstall_names(["-y", "NumPy>=1", "six"])
['numpy', 'six']
>>> split_pip_args(["numpy>=2", "--target", "/t", "-i", "https://x/simple", "--user"])
(['--target', '/t', '--user'], ['-i', 'https://x/simple'])
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlparse

from vbridge.decide.checker import Candidate, Verdict, check_candidates, check_removals
from vbridge.errors import VbridgeError
from vbridge.interpreters import python_argv, run_python
from vbridge.model import Environment
from vbridge.rules import load_data

__all__ = [
    "GATED_PIP_COMMANDS",
    "Artifact",
    "PipFailed",
    "PipTarget",
    "candidates_for",
    "gate_install",
    "gate_uninstall",
    "run_pip_unchanged",
    "split_pip_args",
    "target_python",
    "uninstall_names",
]


class PipFailed(VbridgeError):
    """pip itself failed (resolution, download, build): its own output was shown."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class GateUsageError(VbridgeError):
    """Arguments the gate cannot honour (an editable install, ``--report``)."""


def _options() -> dict[str, list[str]]:
    return cast("dict[str, list[str]]", load_data("pip").get("options", {}))


def _option_groups(args: Sequence[str]) -> list[list[str]]:
    """Arguments grouped as pip reads them: ``["--target", "/t"]``, ``["numpy"]``."""
    with_value = set(_options().get("with_value", []))
    groups: list[list[str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0]
        if arg.startswith("-") and "=" not in arg and name in with_value and i + 1 < len(args):
            groups.append([arg, args[i + 1]])
            i += 2
        else:
            groups.append([arg])
            i += 1
    return groups


def split_pip_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The user's options to keep for the final install, and for fetching artifacts."""
    options = _options()
    install_opts, fetch_opts = set(options.get("install", [])), set(options.get("fetch", []))
    install: list[str] = []
    fetch: list[str] = []
    for group in _option_groups(args):
        name = group[0].split("=", 1)[0]
        if not name.startswith("-"):
            continue
        if name in install_opts:
            install.extend(group)
        if name in fetch_opts:
            fetch.extend(group)
    return install, fetch


def _option_value(args: Sequence[str], *names: str) -> str | None:
    for group in _option_groups(args):
        head, _, inline = group[0].partition("=")
        if head in names:
            return inline or (group[1] if len(group) > 1 else None)
    return None


def _quiet_env() -> dict[str, str]:
    """pip runs that must leave the environment untouched write no bytecode."""
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class PipTarget:
    """The interpreter pip acts on, how to run pip for it, and where it installs."""

    python: str
    pip: tuple[str, ...]
    layer: Path

    @classmethod
    def for_python(cls, python: str, args: Sequence[str] = ()) -> PipTarget:
        """Find pip for ``python`` (its own, else this one's ``--python``) and its layer."""
        # -I: pip's own modules come from the environment, nothing from the working
        # directory or PYTHON* variables; -B: no bytecode written by these runs (pip
        # still compiles what it installs).
        own = python_argv(python, "-B", "-m", "pip")
        probe = run_python(
            python, ["-B", "-m", "pip", "--version"], env=_quiet_env(), timeout=120,
            what="run pip",
        )
        pip = own if probe.returncode == 0 else python_argv(
            sys.executable, "-B", "-m", "pip", "--python", python
        )
        return cls(python, tuple(pip), _install_layer(python, args))


def _install_layer(python: str, args: Sequence[str]) -> Path:
    """The site-packages directory pip installs into, given the user's options."""
    target = _option_value(args, "-t", "--target")
    if target:
        return Path(target).absolute()
    prefix = _option_value(args, "--prefix")
    root = _option_value(args, "--root")
    user = any(g[0] == "--user" for g in _option_groups(args))
    code = (
        "import json, site, sys, sysconfig\n"
        f"prefix = {prefix!r}\n"
        f"user = {user!r}\n"
        "if user:\n"
        "    path = site.getusersitepackages()\n"
        "elif prefix:\n"
        "    path = sysconfig.get_paths(vars={'base': prefix, 'platbase': prefix})['purelib']\n"
        "else:\n"
        "    path = sysconfig.get_paths()['purelib']\n"
        "print(json.dumps(path))\n"
    )
    result = run_python(
        python, ["-c", code], env=_quiet_env(), timeout=120, what="say where pip installs"
    )
    try:
        if result.returncode != 0:
            raise ValueError(result.stderr.strip())
        layer = Path(json.loads(result.stdout))
    except (ValueError, TypeError) as exc:
        raise VbridgeError(f"{python}: cannot ask it where pip installs ({exc})") from exc
    if root:
        layer = Path(root) / layer.relative_to(layer.anchor)
    return layer


@dataclass(frozen=True)
class Artifact:
    """One thing pip's report says it would install."""

    name: str
    version: str
    url: str
    sha256: str | None
    requested: bool
    build_spec: str | None  # what `pip wheel` builds when the artifact is not a wheel

    @classmethod
    def from_report(cls, item: dict[str, Any]) -> Artifact:
        info = item.get("download_info", {})
        url = str(info.get("url", ""))
        meta = item.get("metadata", {})
        hashes = info.get("archive_info", {}).get("hashes", {})
        build_spec: str | None = None
        if "dir_info" in info:
            if info["dir_info"].get("editable"):
                raise GateUsageError(
                    f"{url}: editable installs change no wheel the gate could check; "
                    "run pip directly for -e (python -m pip install -e ...)"
                )
            build_spec = unquote(urlparse(url).path)
        elif "vcs_info" in info:
            vcs = info["vcs_info"]
            build_spec = f"{vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}"
        elif not urlparse(url).path.endswith(".whl"):
            build_spec = url
        return cls(
            name=str(meta.get("name", "?")),
            version=str(meta.get("version", "?")),
            url=url,
            sha256=hashes.get("sha256"),
            requested=bool(item.get("requested")),
            build_spec=build_spec,
        )


def plan(target: PipTarget, args: Sequence[str], workdir: Path) -> list[Artifact]:
    """What pip would install: its dry-run report, with the user's arguments."""
    refused = set(_options().get("refused", []))
    for group in _option_groups(args):
        if group[0].split("=", 1)[0] in refused:
            raise GateUsageError(
                f"{group[0]}: the gate cannot install exactly what it checked with this "
                "option; run pip directly (python -m pip install ...), or leave it out"
            )
    report = workdir / "report.json"
    cmd = [*target.pip, "install", "--dry-run", "--report", str(report), "--quiet", *args]
    result = subprocess.run(cmd, env=_quiet_env(), stdout=subprocess.DEVNULL)
    if result.returncode != 0:
        raise PipFailed("pip could not resolve the requirements (see above)", result.returncode)
    data = json.loads(report.read_text(encoding="utf-8"))
    return [Artifact.from_report(item) for item in data.get("install", [])]


def fetch(
    target: PipTarget, artifacts: Sequence[Artifact], dest: Path, fetch_args: Sequence[str]
) -> list[Path]:
    """Each artifact as a wheel file in ``dest``, checked against the report's hash."""
    wheels: list[Path] = []
    direct = [a for a in artifacts if a.build_spec is None]
    if direct:
        downloads = dest / "downloads"
        cmd = [
            *target.pip,
            "download",
            "--no-deps",
            "--quiet",
            "--dest",
            str(downloads),
            *fetch_args,
            *(a.url for a in direct),
        ]
        result = subprocess.run(cmd, env=_quiet_env(), stdout=subprocess.DEVNULL)
        if result.returncode != 0:
            raise PipFailed("pip could not download what it planned (see above)", result.returncode)
        for artifact in direct:
            path = downloads / unquote(Path(urlparse(artifact.url).path).name)
            _check_hash(path, artifact)
            wheels.append(path)
    for i, artifact in enumerate(a for a in artifacts if a.build_spec is not None):
        assert artifact.build_spec is not None
        out = dest / f"built-{i}"
        cmd = [
            *target.pip,
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(out),
            *fetch_args,
            artifact.build_spec,
        ]
        result = subprocess.run(cmd, env=_quiet_env(), stdout=subprocess.DEVNULL)
        built = sorted(out.glob("*.whl"))
        if result.returncode != 0 or len(built) != 1:
            raise PipFailed(
                f"pip could not build a wheel of {artifact.name} {artifact.version}",
                result.returncode or 1,
            )
        wheels.append(built[0])
    return wheels


def _check_hash(path: Path, artifact: Artifact) -> None:
    if not path.is_file():
        raise PipFailed(f"{path}: pip download did not write the planned file", 1)
    if artifact.sha256 is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != artifact.sha256:
        raise PipFailed(
            f"{path}: sha256 differs from what pip resolved ({artifact.url}); not installing",
            1,
        )


def scan_target(target: PipTarget) -> Environment:
    """The environment pip would change: every layer the interpreter imports from."""
    from vbridge.decide.assess import assess_environment
    from vbridge.scan import interpreter_layers, scan_environment

    prefix, layers = interpreter_layers(target.python)
    if target.layer not in layers and target.layer.is_dir():
        layers.insert(0, target.layer)
    return assess_environment(scan_environment(prefix, layers=layers))


def candidates_for(
    target: PipTarget, args: Sequence[str], workdir: Path
) -> tuple[list[Candidate], list[Path]]:
    """Resolve, fetch and read what ``pip install ARGS`` would install."""
    artifacts = plan(target, args, workdir)
    if not artifacts:
        return [], []
    _, fetch_args = split_pip_args(args)
    wheels = fetch(target, artifacts, workdir, fetch_args)
    candidates = [
        Candidate.from_wheel(wheel, target.layer, artifact.url)
        for wheel, artifact in zip(wheels, _in_fetch_order(artifacts), strict=True)
    ]
    return candidates, wheels


def _in_fetch_order(artifacts: Sequence[Artifact]) -> list[Artifact]:
    return [a for a in artifacts if a.build_spec is None] + [
        a for a in artifacts if a.build_spec is not None
    ]


def gate_install(
    python: str,
    args: Sequence[str],
    force: bool = False,
    warn_only: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """``vbridge pip install``: check, then install exactly what was checked.

    Returns the exit status: 1 on a refusal, pip's own status otherwise.
    """
    dry_run = any(g[0] == "--dry-run" for g in _option_groups(args))
    pip_args = [a for a in args if a != "--dry-run"]
    target = PipTarget.for_python(python, pip_args)
    with tempfile.TemporaryDirectory(prefix="vbridge-pip-") as tmp:
        candidates, wheels = candidates_for(target, pip_args, Path(tmp))
        if not candidates:
            echo("vbridge: nothing to install: pip reports every requirement satisfied")
            return 0
        verdict: Verdict = check_candidates(scan_target(target), candidates, target.layer)
        if warn_only:
            verdict = verdict.softened()
        for line in verdict.lines(forced=force):
            echo(line)
        if verdict.decision == "refuse" and not force:
            return 1
        if dry_run:
            names = ", ".join(f"{c.dist.name} {c.dist.version}" for c in candidates)
            echo(f"vbridge: would install {names}")
            return verdict.exit_code if not force else 0
        install_args, _ = split_pip_args(pip_args)
        cmd = [*target.pip, "install", "--no-deps", *install_args, *(str(w) for w in wheels)]
        return subprocess.run(cmd).returncode


def uninstall_names(args: Sequence[str]) -> list[str]:
    """The distributions ``pip uninstall ARGS`` names, normalised: its positional
    requirements and the lines of each ``-r FILE``. What does not parse is left to pip,
    which reports it."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    texts: list[str] = []
    for group in _option_groups(args):
        head = group[0]
        name = head.split("=", 1)[0]
        if name in ("-r", "--requirement"):
            path = group[1] if len(group) == 2 else head.partition("=")[2]
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # pip says what is wrong with the file
            texts.extend(_requirement_lines(text))
        elif not head.startswith("-"):
            texts.append(head)
    names: list[str] = []
    for text in texts:
        if not text or text.startswith(("#", "-")):
            continue
        try:
            names.append(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            continue
    return list(dict.fromkeys(names))


def _requirement_lines(text: str) -> list[str]:
    r"""The requirements of a requirements file: continuation lines joined, comments and
    per-requirement options (``--hash=...``) dropped.

    >>> _requirement_lines("numpy==1.26.4 \\\n    --hash=sha256:ab  # pinned\n-e .\n")
    ['numpy==1.26.4', '-e .']
    """
    joined = re.sub(r"\\\r?\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        if not line.startswith("-"):
            line = re.split(r"\s--?[A-Za-z]", line, maxsplit=1)[0].strip()
        if line:
            out.append(line)
    return out


def gate_uninstall(
    python: str, args: Sequence[str], force: bool = False, echo: Callable[[str], None] = print
) -> int:
    """``vbridge pip uninstall``: refuse to remove what another manager owns, else run
    ``pip uninstall ARGS``. Returns the exit status: 1 on a refusal, else pip's."""
    target = PipTarget.for_python(python, args)
    names = uninstall_names(args)
    if names:
        verdict = check_removals(scan_target(target), names, target.layer)
        for line in verdict.lines(forced=force):
            echo(line)
        if verdict.decision == "refuse" and not force:
            return 1
    return subprocess.run([*target.pip, "uninstall", *args]).returncode


# pip commands that change an environment: behind the gate. Every other pip command
# (list, show, freeze, download, wheel, cache, config, ...) runs unchanged, so that
# `alias pip="vbridge pip"` is safe.
GATED_PIP_COMMANDS = frozenset({"install", "uninstall"})


def target_python(python: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The interpreter pip acts on: ``python``, the active venv or conda environment
    (``$VIRTUAL_ENV``, ``$CONDA_PREFIX``), else the one running vbridge."""
    if python:
        return python
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        root = environ.get(var)
        if root:
            for rel in ("bin/python", "Scripts/python.exe", "python.exe"):
                if (Path(root) / rel).exists():
                    return str(Path(root) / rel)
    return sys.executable


def run_pip_unchanged(args: Sequence[str], python: str | None = None) -> int:
    """``vbridge pip COMMAND ARGS`` for a command that changes nothing: pip itself, for
    the same interpreter the gated commands act on. Returns pip's exit status."""
    target = PipTarget.for_python(target_python(python))
    return subprocess.run([*target.pip, *args]).returncode

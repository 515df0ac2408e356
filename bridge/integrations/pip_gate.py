"""``vbridge pip``: pip itself, with a check before it changes an environment.

``vbridge pip ARGS...`` means what ``pip ARGS...`` means. The arguments are read by
pip's own option definitions, in the interpreter whose pip would run them
(:func:`parse_pip_args`: isolated, a neutral working directory, a minimal environment,
a timeout), so abbreviations (``--targ``), ``-tDIR``, ``--opt=value`` and general
options before the command (``-q``, ``-v``, ``--python X``) are what pip takes them to
be. vbridge's own options carry its prefix: ``--vbridge-force`` (install or remove even
when the policy refuses) and ``--vbridge-warn-only`` (refusals become warnings).
``--version``, ``--help`` and every command other than ``install`` and ``uninstall``
run pip unchanged.

``install``:

1. ``pip install --dry-run --report R ARGS``: pip resolves with every user argument
   (its output shown on stderr) and reports what it would install;
2. ``pip download --no-deps`` of each planned artifact into a temporary directory
   (pip's progress shown; a wheel already on disk is read where it is; an artifact that
   is not a wheel is built once with ``pip wheel --no-deps``), checked against the
   report's sha256;
3. the checker (``vbridge.decide.checker``) reads those wheels and decides against a
   scan of the environment; a refusal stops here with exit status 1;
4. ``pip install ARGS`` as typed, its index options replaced by ``--no-index
   --find-links DIR`` and ``-c PINS`` (``name==version`` of every planned artifact):
   pip installs the files checked and writes what plain pip writes (``REQUESTED`` on
   what was named, no ``direct_url.json`` for an index artifact). pip's exit status
   is returned.

``uninstall``: the distributions named (and those of ``-r FILE``) are checked against
the scan first: pip would remove the copy Python imports, and when conda, apt or Spack
owns it the removal is refused (``ownership.remove``); otherwise pip runs as typed.

>>> uninstall_names(["-y", "NumPy>=1", "six"])
['numpy', 'six']
>>> vbridge_options(["--vbridge-force", "install", "six"])
(['install', 'six'], True, False)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from vbridge.decide.checker import Candidate, Verdict, check_candidates, check_removals
from vbridge.errors import VbridgeError
from vbridge.model import Environment

__all__ = [
    "GATED_PIP_COMMANDS",
    "VBRIDGE_OPTIONS",
    "Artifact",
    "ParsedPip",
    "PipFailed",
    "PipTarget",
    "candidates_for",
    "gate_install",
    "gate_uninstall",
    "parse_pip_args",
    "pip_on_path",
    "run_vbridge_pip",
    "scan_target",
    "target_python",
    "uninstall_names",
    "vbridge_options",
]

# pip commands that change an environment: behind the gate. Every other pip command
# (list, show, freeze, download, wheel, cache, config, ...) runs unchanged, so that
# `alias pip="vbridge pip"` is safe.
GATED_PIP_COMMANDS = frozenset({"install", "uninstall"})
VBRIDGE_OPTIONS = {"--vbridge-force": "force", "--vbridge-warn-only": "warn_only"}

# pip's option destinations (``optparse`` ``dest``), by what the gate does with them.
_INDEX_DESTS = frozenset({"index_url", "extra_index_urls", "no_index", "find_links"})
_FETCH_DESTS = _INDEX_DESTS | {
    "trusted_hosts", "cert", "client_cert", "proxy", "retries", "timeout", "cache_dir",
    "isolated_mode", "no_input", "keyring_provider", "disable_pip_version_check",
    "build_isolation", "config_settings", "build_options", "global_options",
    "format_control", "prefer_binary", "pre", "use_pep517", "check_build_deps",
}
_NOT_FOR_THE_DRY_RUN = frozenset({"json_report_file", "dry_run"})
_ENV_INDEX = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX")
_PARSE_TIMEOUT = 120.0


class PipFailed(VbridgeError):
    """pip itself failed (resolution, download, build): its own output was shown."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class GateUsageError(VbridgeError):
    """Arguments the gate cannot honour (an editable install)."""


def vbridge_options(args: Sequence[str]) -> tuple[list[str], bool, bool]:
    """``args`` without vbridge's own options, and whether ``--vbridge-force`` and
    ``--vbridge-warn-only`` were given (anywhere before a ``--``)."""
    out: list[str] = []
    found = {"force": False, "warn_only": False}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            out += [arg, *rest]
            break
        if arg in VBRIDGE_OPTIONS:
            found[VBRIDGE_OPTIONS[arg]] = True
        else:
            out.append(arg)
    return out, found["force"], found["warn_only"]


# --------------------------------------------------------------------------------------
# Which pip, for which interpreter


def _is_python(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _shebang_python(script: Path) -> str | None:
    """The interpreter a console script names (``#!/env/bin/python``, or pip's
    ``/bin/sh`` launcher for long paths), if it names one."""
    try:
        with open(script, "rb") as fh:
            head = fh.read(4096).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    if not head or not head[0].startswith("#!"):
        return None
    words = head[0][2:].split()
    if words and Path(words[0]).name == "env" and len(words) > 1:
        words = [shutil.which(words[1]) or words[1], *words[2:]]
    if words and words[0] == "/bin/sh" and len(head) > 1:
        m = re.match(r"'''exec' '?([^' ]+)'? ", head[1])
        words = [m.group(1)] if m else []
    if words and re.match(r"python[0-9.]*(\.exe)?$", Path(words[0]).name):
        return words[0]
    return None


def _pip_executable(script: Path, environ: Mapping[str, str]) -> str | None:
    """``sys.executable`` as ``pip debug`` reports it: for a pip that is a wrapper
    (pyenv's shims), which only running it can tell."""
    try:
        proc = subprocess.run(
            [str(script), "debug"],
            capture_output=True,
            text=True,
            env={**environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            cwd=os.path.abspath(os.sep),
            timeout=_PARSE_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^sys\.executable: (.+)$", proc.stdout, re.MULTILINE)
    return m.group(1).strip() if m else None


def pip_on_path(environ: Mapping[str, str] = os.environ) -> str | None:
    """The interpreter of the first ``pip`` on ``PATH`` that is not beside vbridge."""
    ours = {Path(sys.argv[0]).absolute().parent, Path(sys.executable).absolute().parent}
    for entry in environ.get("PATH", "").split(os.pathsep):
        if not entry or Path(entry).absolute() in ours:
            continue
        for name in ("pip", "pip3"):
            script = Path(entry) / name
            if _is_python(script):
                python = _shebang_python(script) or _pip_executable(script, environ)
                if python:
                    return python
    return None


def target_python(python: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """The interpreter pip acts on: ``python``, the active venv or conda environment
    (``$VIRTUAL_ENV``, ``$CONDA_PREFIX``), the one of the ``pip`` on ``PATH`` after
    vbridge's own, else the one running vbridge."""
    if python:
        return _identify_python(python)
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        root = environ.get(var)
        if root:
            for rel in ("bin/python", "Scripts/python.exe", "python.exe"):
                if (Path(root) / rel).exists():
                    return str(Path(root) / rel)
    return pip_on_path(environ) or sys.executable


def _identify_python(python: str) -> str:
    """What pip's ``--python`` accepts: an interpreter, or an environment directory."""
    path = Path(python)
    if path.is_dir():
        for rel in ("bin/python", "Scripts/python.exe"):
            if (path / rel).exists():
                return str(path / rel)
    return python


def _question_env() -> dict[str, str]:
    """A question's minimal environment, with pip's configuration left out (what the
    user typed is asked about, not what configuration files add)."""
    from vbridge.interpreters import minimal_env

    return {
        **minimal_env(),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
    }


def _ask(python: str, code: str, *args: str, what: str) -> Any:
    """Run ``code`` in ``python`` (isolated: ``-I``, an empty working directory, a
    minimal environment, a timeout) and return the JSON it prints last on stdout."""
    from vbridge.interpreters import run_python

    proc = run_python(
        python, ["-c", code, *args], env=_question_env(), timeout=_PARSE_TIMEOUT, what=what
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise VbridgeError(f"{python}: could not {what} ({tail})")
    return json.loads(lines[-1])


# Runs in the target interpreter: pip's own parsers read the arguments, and every
# option pip processes is recorded with the arguments it consumed. Nothing runs: help
# and version actions, and parse errors, stop the parse (pip itself will answer them).
_PARSE_CODE = r"""
import json, optparse, sys
args = json.loads(sys.argv[1])
out = {"stop": None}
real = sys.stdout
sys.stdout = sys.stderr
records = []
state = {"total": 0, "phase": "general"}
class Stop(Exception):
    pass
def spans(orig):
    def run(self, rargs, values):
        start = state["total"] - len(rargs)
        before = len(records)
        orig(self, rargs, values)
        for r in records[before:]:
            r["span"] = [start, state["total"] - len(rargs)]
    return run
optparse.OptionParser._process_long_opt = spans(optparse.OptionParser._process_long_opt)
optparse.OptionParser._process_short_opts = spans(optparse.OptionParser._process_short_opts)
process = optparse.Option.process
def record(self, opt, value, values, parser):
    records.append({"opt": opt, "name": self.get_opt_string(), "dest": self.dest,
                    "value": value, "phase": state["phase"]})
    if self.action in ("help", "version"):
        raise Stop(self.action)
    return process(self, opt, value, values, parser)
optparse.Option.process = record
try:
    import pip
    from pip._internal.cli.main_parser import create_main_parser
    from pip._internal.commands import commands_dict, create_command
    out["pip"] = pip.__version__
    state["total"] = len(args)
    general, rest = create_main_parser().parse_args(list(args))
    out["general_count"] = len(args) - len(rest)
    out["python"] = getattr(general, "python", None)
    out["command"] = rest[0] if rest and rest[0] in commands_dict else None
    if out["command"] is not None:
        state["phase"], state["total"] = "command", len(rest) - 1
        command = create_command(rest[0], isolated="--isolated" in rest)
        _, positional = command.parser.parse_args(rest[1:])
        out["positional"] = positional
except Stop as exc:
    out["stop"] = str(exc)
except SystemExit:
    out["stop"] = "error"
except ImportError as exc:
    out["stop"] = "no-pip"
    out["error"] = str(exc)
out["options"] = records
print(json.dumps(out), file=real)
"""


@dataclass(frozen=True)
class PipOption:
    """One option as pip read it: the option (``--target`` for ``--targ``), its
    destination, its value and the arguments it took (``span``, in its part)."""

    name: str
    dest: str
    value: str | None
    span: tuple[int, int]
    general: bool


@dataclass
class ParsedPip:
    """``pip ARGS`` as pip reads them: general options, the command, its arguments."""

    general: list[str]  # the arguments before the command
    command: str | None
    args: list[str]  # the arguments after the command
    options: list[PipOption] = field(default_factory=list)
    positional: list[str] = field(default_factory=list)
    python: str | None = None
    stop: str | None = None  # "help", "version", "error": pip answers by itself
    pip_version: str = ""

    def command_options(self, *dests: str) -> list[PipOption]:
        return [o for o in self.options if not o.general and (not dests or o.dest in dests)]

    def value(self, dest: str) -> str | None:
        found = [o for o in self.options if o.dest == dest]
        return found[-1].value if found else None

    def given(self, dest: str) -> bool:
        return any(o.dest == dest for o in self.options)

    def values(self, dest: str) -> list[str]:
        return [o.value for o in self.options if o.dest == dest and o.value is not None]

    def args_without(self, dests: Sequence[str] | frozenset[str]) -> list[str]:
        """The command's arguments with every option of ``dests`` (and its value)
        left out; a cluster of short options (``-qU``) that holds one is kept whole
        unless all of it goes."""
        drop: set[int] = set()
        by_span: dict[tuple[int, int], list[PipOption]] = {}
        for option in self.command_options():
            by_span.setdefault(option.span, []).append(option)
        for span, options in by_span.items():
            if all(o.dest in dests for o in options):
                drop.update(range(*span))
        return [a for i, a in enumerate(self.args) if i not in drop]

    def args_only(self, dests: Sequence[str] | frozenset[str]) -> list[str]:
        """The command's options of ``dests``, with their values, as typed."""
        keep: list[str] = []
        seen: set[tuple[int, int]] = set()
        for option in self.command_options(*dests):
            if option.span not in seen:
                seen.add(option.span)
                keep += self.args[option.span[0] : option.span[1]]
        return keep


def parse_pip_args(python: str, args: Sequence[str]) -> ParsedPip:
    """Read ``pip ARGS`` with the option definitions of ``python``'s pip.

    ``--python`` given after the command (``vbridge pip install --python X``, the
    older spelling) is moved before it, where pip wants it.
    """
    data = _ask(python, _PARSE_CODE, json.dumps(list(args)), what="read pip's options")
    if data.get("stop") == "no-pip":
        raise _NoPip(str(data.get("error", "")))
    count = int(data.get("general_count", 0))
    command = data.get("command")
    general = list(args[:count])
    rest = list(args[count + 1 :]) if command else list(args[count:])
    parsed = ParsedPip(
        general,
        command,
        rest,
        positional=[str(p) for p in data.get("positional", [])],
        python=data.get("python"),
        stop=data.get("stop"),
        pip_version=str(data.get("pip", "")),
    )
    for item in data.get("options", []):
        value = item.get("value")
        parsed.options.append(
            PipOption(
                name=str(item.get("name") or item["opt"]),
                dest=str(item.get("dest")),
                value=None if value is None else str(value),
                span=(int(item["span"][0]), int(item["span"][1])) if "span" in item else (0, 0),
                general=item.get("phase") == "general",
            )
        )
    late = parsed.command_options("python")
    if late and command:
        # Moved before the command: the other options' spans change, so read again.
        moved = parsed.args_only(["python"])
        return parse_pip_args(python, [*general, *moved, command, *parsed.args_without(["python"])])
    return parsed


class _NoPip(Exception):
    pass


@dataclass(frozen=True)
class PipTarget:
    """The interpreter pip acts on, how to run pip for it, and where it installs."""

    python: str
    pip: tuple[str, ...]
    layer: Path

    @classmethod
    def for_python(cls, python: str, parsed: ParsedPip | None = None) -> PipTarget:
        """Find pip for ``python`` (its own, else this one's ``--python``) and its layer."""
        pip = _pip_command(python)
        return cls(python, pip, _install_layer(python, parsed))


def _pip_command(python: str) -> tuple[str, ...]:
    """``python -I -m pip`` when it has pip, else vbridge's own pip with ``--python``."""
    from vbridge.interpreters import python_argv

    try:
        _ask(python, "import json, pip; print(json.dumps(pip.__version__))", what="find pip")
    except VbridgeError:
        return tuple(python_argv(sys.executable, "-m", "pip", "--python", python))
    return tuple(python_argv(python, "-m", "pip"))


def _install_layer(python: str, parsed: ParsedPip | None) -> Path:
    """The site-packages directory pip installs into, given the user's options."""
    target = parsed.value("target_dir") if parsed else None
    if target:
        return Path(target).absolute()
    prefix = parsed.value("prefix_path") if parsed else None
    root = parsed.value("root_path") if parsed else None
    user = bool(parsed and parsed.given("use_user_site"))
    code = (
        "import json, site, sys, sysconfig\n"
        "user, prefix = json.loads(sys.argv[1])\n"
        "if user:\n"
        "    path = site.getusersitepackages()\n"
        "elif prefix:\n"
        "    path = sysconfig.get_paths(vars={'base': prefix, 'platbase': prefix})['purelib']\n"
        "else:\n"
        "    path = sysconfig.get_paths()['purelib']\n"
        "print(json.dumps(path))\n"
    )
    found = _ask(
        python, code, json.dumps([user, prefix]), what="ask it where pip installs"
    )
    layer = Path(str(found))
    if root:
        layer = Path(root) / layer.relative_to(layer.anchor)
    return layer


# --------------------------------------------------------------------------------------
# What pip would install


@dataclass(frozen=True)
class Artifact:
    """One thing pip's report says it would install."""

    name: str
    version: str
    url: str
    sha256: str | None
    requested: bool
    build_spec: str | None  # what `pip wheel` builds when the artifact is not a wheel
    direct: bool = False  # the user named this URL or path (pip writes direct_url.json)

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
            direct=bool(item.get("is_direct")),
        )

    @property
    def local_wheel(self) -> Path | None:
        """The wheel file itself, when pip found it on this machine (``file:`` URL)."""
        parsed = urlparse(self.url)
        if parsed.scheme == "file" and parsed.path.endswith(".whl"):
            path = Path(unquote(parsed.path))
            return path if path.is_file() else None
        return None


def _pip_base(target: PipTarget, parsed: ParsedPip) -> list[str]:
    return [*target.pip, *parsed.general]


def _run_pip(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """pip for the user: its output on stderr (vbridge's stdout stays the final
    install's), the user's working directory (relative requirement paths)."""
    return subprocess.run(list(cmd), stdout=sys.stderr.fileno(), env=env).returncode


def plan(target: PipTarget, parsed: ParsedPip, workdir: Path) -> list[Artifact]:
    """What pip would install: its dry-run report, with the user's arguments."""
    report = workdir / "report.json"
    cmd = [
        *_pip_base(target, parsed),
        "install",
        "--dry-run",
        "--report",
        str(report),
        *parsed.args_without(_NOT_FOR_THE_DRY_RUN),
    ]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    code = _run_pip(cmd, env)
    if code != 0:
        raise PipFailed("pip stopped before installing anything (see above)", code)
    data = json.loads(report.read_text(encoding="utf-8"))
    return [Artifact.from_report(item) for item in data.get("install", [])]


def fetch(
    target: PipTarget, parsed: ParsedPip, artifacts: Sequence[Artifact], dest: Path
) -> list[Path]:
    """Each artifact as a wheel file, checked against the report's hash: a wheel on
    this machine where it is, others downloaded (or built) once into ``dest``."""
    fetch_args = parsed.args_only(_FETCH_DESTS)
    wheels: dict[Artifact, Path] = {}
    remote = [a for a in artifacts if a.build_spec is None and a.local_wheel is None]
    for artifact in artifacts:
        if artifact.local_wheel is not None:
            wheels[artifact] = artifact.local_wheel
    if remote:
        cmd = [
            *_pip_base(target, parsed),
            "download",
            "--no-deps",
            "--dest",
            str(dest),
            *fetch_args,
            *(a.url for a in remote),
        ]
        code = _run_pip(cmd)
        if code != 0:
            raise PipFailed("pip could not download what it planned (see above)", code)
        for artifact in remote:
            wheels[artifact] = dest / unquote(Path(urlparse(artifact.url).path).name)
    for i, artifact in enumerate(a for a in artifacts if a.build_spec is not None):
        assert artifact.build_spec is not None
        out = dest / f"built-{i}"
        cmd = [
            *_pip_base(target, parsed),
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(out),
            *fetch_args,
            artifact.build_spec,
        ]
        code = _run_pip(cmd)
        built = sorted(out.glob("*.whl"))
        if code != 0 or len(built) != 1:
            raise PipFailed(
                f"pip could not build a wheel of {artifact.name} {artifact.version}",
                code or 1,
            )
        wheels[artifact] = built[0]
    for artifact, path in wheels.items():
        if artifact.build_spec is None:
            _check_hash(path, artifact)
    return [wheels[a] for a in artifacts]


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
    target: PipTarget, requirements: Sequence[str], workdir: Path
) -> tuple[list[Candidate], list[Path]]:
    """Resolve, fetch and read what ``pip install REQUIREMENTS`` would install
    (``vbridge check --candidate``)."""
    parsed = ParsedPip([], "install", ["--quiet", *requirements], positional=list(requirements))
    artifacts = plan(target, parsed, workdir)
    wheels = fetch(target, parsed, artifacts, workdir) if artifacts else []
    return _candidates(target, artifacts, wheels), wheels


def _candidates(
    target: PipTarget, artifacts: Sequence[Artifact], wheels: Sequence[Path]
) -> list[Candidate]:
    return [
        Candidate.from_wheel(wheel, target.layer, artifact.url)
        for wheel, artifact in zip(wheels, artifacts, strict=True)
    ]


def _pins_text(artifacts: Sequence[Artifact]) -> str:
    """``name==version`` of every artifact from an index or a link (a URL or path the
    user named stays as typed and pins nothing)."""
    lines = [f"{a.name}=={a.version}" for a in artifacts if not a.direct]
    return "".join(f"{line}\n" for line in lines)


def gate_install(
    target: PipTarget,
    parsed: ParsedPip,
    force: bool = False,
    warn_only: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """``vbridge pip install``: check, then let pip install exactly what was checked.

    Returns the exit status: 1 on a refusal, pip's own status otherwise.
    """
    dry_run = parsed.given("dry_run")
    with tempfile.TemporaryDirectory(prefix="vbridge-pip-") as tmp:
        work = Path(tmp)
        artifacts = plan(target, parsed, work)
        if not artifacts:
            return 0  # pip said so: every requirement already satisfied
        downloads = work / "wheels"
        downloads.mkdir()
        wheels = fetch(target, parsed, artifacts, downloads)
        candidates = _candidates(target, artifacts, wheels)
        verdict: Verdict = check_candidates(scan_target(target), candidates, target.layer)
        if warn_only:
            verdict = verdict.softened()
        for line in verdict.lines(forced=force):
            echo(line)
        if verdict.decision == "refuse" and not force:
            return 1
        if dry_run:
            return 0
        # The checked wheels, found where they are: links to those already on disk.
        for artifact, wheel in zip(artifacts, wheels, strict=True):
            if wheel.parent != downloads and not artifact.direct:
                link = downloads / wheel.name
                if not link.exists():
                    os.symlink(wheel, link)
        pins = work / "pins.txt"
        pins.write_text(_pins_text(artifacts), encoding="utf-8")
        cmd = [
            *_pip_base(target, parsed),
            "install",
            *parsed.args_without(_INDEX_DESTS),
            "--no-index",
            "--find-links",
            str(downloads),
            "--constraint",
            str(pins),
        ]
        env = {k: v for k, v in os.environ.items() if k not in _ENV_INDEX}
        return subprocess.run(cmd, env=env).returncode


def uninstall_names(args: Sequence[str], parsed: ParsedPip | None = None) -> list[str]:
    """The distributions ``pip uninstall ARGS`` names, normalised: its positional
    requirements and the lines of each ``-r FILE``. What does not parse is left to pip,
    which reports it."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    texts: list[str] = []
    if parsed is None:
        texts = [a for a in args if not a.startswith("-")]
    else:
        texts = list(parsed.positional)
        for path in parsed.values("requirements"):
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # pip says what is wrong with the file
            texts.extend(_requirement_lines(text))
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
    target: PipTarget,
    parsed: ParsedPip,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """``vbridge pip uninstall``: refuse to remove what another manager owns, else run
    ``pip uninstall ARGS``. Returns the exit status: 1 on a refusal, else pip's."""
    names = uninstall_names(parsed.args, parsed)
    if names:
        verdict = check_removals(scan_target(target), names, target.layer)
        for line in verdict.lines(forced=force):
            echo(line)
        if verdict.decision == "refuse" and not force:
            return 1
    return subprocess.run([*_pip_base(target, parsed), "uninstall", *parsed.args]).returncode


def run_vbridge_pip(
    args: Sequence[str],
    environ: Mapping[str, str] = os.environ,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> int:
    """``vbridge pip ARGS``: pip's exit status, or 1 when the gate refuses."""
    args, force, warn_only = vbridge_options(args)
    base = target_python(None, environ)
    from vbridge.interpreters import python_argv

    try:
        parsed = parse_pip_args(base, args)
        pip = tuple(python_argv(base, "-m", "pip"))
    except _NoPip:
        # No pip of its own: vbridge's pip acts on it (pip's --python), as it would.
        parsed = parse_pip_args(sys.executable, args)
        pip = tuple(python_argv(sys.executable, "-m", "pip", "--python", base))
    if parsed.stop is not None or parsed.command not in GATED_PIP_COMMANDS:
        return subprocess.run([*pip, *args]).returncode
    if parsed.given("use_user_site"):
        # -I leaves the user site out, and pip refuses --user where it is disabled.
        pip = tuple(a for a in pip if a != "-I")
    python = _identify_python(parsed.python) if parsed.python else base
    target = PipTarget(python, pip, _install_layer(python, parsed))
    if parsed.command == "uninstall":
        return gate_uninstall(target, parsed, force=force, echo=echo)
    return gate_install(target, parsed, force=force, warn_only=warn_only, echo=echo)

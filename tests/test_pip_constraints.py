"""Plain pip, protected: the constraints file and the site pip.conf (issue 14, point 1).

Real pip (the prefix's own, from ensurepip) in a conda prefix installed by py-rattler
with a real interpreter laid over it, and in a venv over Debian's python3-numpy; real
wheels from the package index. A refusal by pip's resolver must leave the prefix as it
was (a listing of every path: size, mode, mtime).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import conda_standin
import condaenv
import gateenv
import pytest
from conftest import run_vbridge
from debian_root import debian_installed
from vbridge.destinations.pip_constraints import (
    inherited_constraints,
    pip_conf_with,
    pip_conf_without,
)

BLAS_SPECS = ["numpy", "scipy", "libblas=*=*mkl"]


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Plain pip, as a user types it (no vbridge in sight), in a neutral environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_CONSTRAINT")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [str(python), "-m", "pip", *args], capture_output=True, text=True, env=env, timeout=600
    )


def _with_pip(python: Path) -> Path:
    subprocess.run([str(python), "-m", "ensurepip"], check=True, capture_output=True)
    return python


@pytest.fixture(scope="module")
def blas_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conda-forge-shaped stack with MKL and OpenBLAS libblas builds, runnable."""
    openblas_libs = [
        p
        for p in condaenv.science_packages(blas="openblas")
        if p.name in {"libblas", "libcblas", "liblapack"}
    ]
    packages = gateenv.metadata_only_python([*condaenv.science_packages("mkl"), *openblas_libs])
    return condaenv.build_channel(tmp_path_factory.mktemp("channels") / "both", packages)


def _site(prefix: Path) -> Path:
    return next(prefix.glob("lib/python3*/site-packages"))


def _lines(prefix: Path) -> list[str]:
    text = (prefix / ".vbridge" / "constraints.txt").read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


# --- pip.conf, key by key ----------------------------------------------------------------


def test_pip_conf_is_merged_key_by_key_and_undone_exactly() -> None:
    original = (
        b"; site settings\n[global]\nindex-url = https://example.org/simple\n\n"
        b"[install]\nno-compile = true\n"
    )
    merged = pip_conf_with(original, "/env/.vbridge/constraints.txt")
    assert merged.startswith(original.split(b"no-compile")[0])
    assert b"no-compile = true\n" in merged and b"index-url = https://example.org/simple" in merged
    assert b"constraint = /env/.vbridge/constraints.txt\n" in merged
    assert merged.count(b"[install]") == 1
    assert pip_conf_without(merged, None, "/env/.vbridge/constraints.txt") == original
    # A constraint the user set: replaced, and put back as it was.
    own = b"[install]\nconstraint =\n    /etc/caps.txt\n"
    merged = pip_conf_with(own, "/env/c.txt")
    assert b"/etc/caps.txt" not in merged
    restored = pip_conf_without(merged, "/etc/caps.txt", "/env/c.txt")
    assert restored == b"[install]\nconstraint = /etc/caps.txt\n"
    # A key naming another file is not vbridge's: left alone.
    assert pip_conf_without(own, None, "/env/c.txt") == own


def test_constraints_set_elsewhere_are_found_as_pip_orders_them(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "pip").mkdir(parents=True)
    (xdg / "pip" / "pip.conf").write_text("[global]\nconstraint = /etc/caps.txt\n")
    home = tmp_path / "home"
    (home / ".config" / "pip").mkdir(parents=True)
    environ = {"XDG_CONFIG_DIRS": str(xdg), "HOME": str(home)}
    site = tmp_path / "env" / "pip.conf"
    found = inherited_constraints(site, None, environ)
    assert found == [("/etc/caps.txt", f"[global] constraint of {xdg}/pip/pip.conf (global)")]
    # The user's [install] wins over the global [global]; several files in one value.
    (home / ".config" / "pip" / "pip.conf").write_text("[install]\nconstraint = /a.txt /b.txt\n")
    assert [v for v, _ in inherited_constraints(site, None, environ)] == ["/a.txt", "/b.txt"]
    # The site file as it was before vbridge wins over both.
    site_before = b"[install]\nconstraint = /site.txt\n"
    assert [v for v, _ in inherited_constraints(site, site_before, environ)] == ["/site.txt"]
    # PIP_CONFIG_FILE=/dev/null: pip reads no file but the site one.
    quiet = {**environ, "PIP_CONFIG_FILE": os.devnull}
    assert inherited_constraints(site, None, quiet) == []


# --- a conda prefix (py-rattler) with a real interpreter and real pip ----------------------


@pytest.mark.network
def test_plain_pip_keeps_conda_numpy_and_clean_gives_it_back(
    tmp_path: Path, blas_channel: Path, conda_cache: Path
) -> None:
    prefix = tmp_path / "env"
    python = _with_pip(
        gateenv.conda_prefix_with_python(blas_channel, BLAS_SPECS, prefix, conda_cache)
    )
    user_conf = b"# the user's\n[global]\ntimeout = 90\n"
    (prefix / "pip.conf").write_bytes(user_conf)

    annotated = run_vbridge("annotate", str(prefix))
    assert annotated.returncode == 0, annotated.stdout + annotated.stderr
    assert f"create {prefix}/.vbridge/constraints.txt" in annotated.stdout
    assert f"update {prefix}/pip.conf" in annotated.stdout
    conf = (prefix / "pip.conf").read_bytes()
    assert conf.startswith(user_conf)  # merged, not overwritten
    assert f"constraint = {prefix}/.vbridge/constraints.txt".encode() in conf
    lines = _lines(prefix)
    (numpy_pin,) = [x for x in lines if x.startswith("numpy==")]
    assert numpy_pin.startswith("numpy==1.26.4  # conda numpy 1.26.4 py311h64a7726_0 (")
    assert "blas_lapack :: provider :: mkl" in numpy_pin
    assert "pip must not replace it (ownership.replace = refuse)" in numpy_pin
    assert any(x.startswith("scipy==1.11.4  # conda scipy") for x in lines)
    # The bound conda's scipy needs (vbridge.decide.dependents), a line of its own.
    assert "numpy>=1.23.5,<2.0a0  # conda scipy 1.11.4 py311h64a7726_0 needs numpy " \
        ">=1.23.5,<2.0a0 (dependents.broken = refuse)" in lines
    # Running annotate again changes nothing.
    again = run_vbridge("annotate", str(prefix))
    assert "constraints.txt" not in again.stdout and "pip.conf" not in again.stdout

    before = gateenv.listing(prefix)
    upgrade = _pip(python, "install", "--no-compile", "-U", "numpy")
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert "Requirement already satisfied: numpy" in upgrade.stdout
    refused = _pip(python, "install", "--no-compile", "numpy>=2")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = refused.stdout + refused.stderr
    assert "The user requested (constraint) numpy" in said and "==1.26.4" in said
    assert gateenv.listing(prefix) == before  # nothing changed
    ok = _pip(python, "install", "--no-compile", "iniconfig==2.0.0")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert list(_site(prefix).glob("iniconfig-2.0.0.dist-info"))

    cleaned = run_vbridge("clean", str(prefix))
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert (prefix / "pip.conf").read_bytes() == user_conf  # byte for byte
    assert not (prefix / ".vbridge").exists()
    # pip behaves as before: numpy 2 is installable again (a dry run proves it).
    free = _pip(python, "install", "--dry-run", "numpy>=2")
    assert free.returncode == 0, free.stdout + free.stderr
    assert "Would install numpy-2" in free.stdout


def test_a_constraint_configured_before_is_chained(
    tmp_path: Path, blas_channel: Path, conda_cache: Path
) -> None:
    prefix = tmp_path / "env"
    gateenv.conda_prefix_with_python(blas_channel, BLAS_SPECS, prefix, conda_cache)
    caps = tmp_path / "caps.txt"
    caps.write_text("six<1.10\n")
    original = f"[install]\nconstraint = {caps}\nno-compile = yes\n".encode()
    (prefix / "pip.conf").write_bytes(original)
    assert run_vbridge("annotate", str(prefix)).returncode == 0
    text = (prefix / ".vbridge" / "constraints.txt").read_text()
    assert f"-c {caps}  # chained: [install] constraint of {prefix}/pip.conf (site)" in text
    conf = (prefix / "pip.conf").read_text()
    assert str(caps) not in conf and "no-compile = yes" in conf
    # The user edits pip.conf afterwards: clean keeps the edit, puts their value back.
    (prefix / "pip.conf").write_text(conf + "[global]\ntimeout = 5\n")
    cleaned = run_vbridge("clean", str(prefix))
    assert cleaned.returncode == 0, cleaned.stderr
    assert "edited since vbridge wrote it" in cleaned.stdout
    assert (prefix / "pip.conf").read_text() == original.decode() + "[global]\ntimeout = 5\n"


def _clone_vbridge_files(source: Path, clone: Path) -> None:
    """What ``conda create --clone`` does with what vbridge wrote, before the clone has a
    record (conda/misc.py, ``clone_env``): every file no record lists is copied, the old
    prefix replaced by the new in its text. (The interpreter laid over these prefixes
    is left out: no record lists it either, and it is not vbridge's.)"""
    for path in [source / "pip.conf", *(source / ".vbridge").rglob("*")]:
        if not path.is_file():
            continue
        data = path.read_bytes()
        with contextlib.suppress(UnicodeDecodeError):
            data = data.decode("utf-8").replace(str(source), str(clone)).encode("utf-8")
        target = clone / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@pytest.mark.parametrize("own_conf", [False, True])
def test_a_cloned_prefix_gets_its_pip_conf_back_when_its_copied_state_goes(
    tmp_path: Path, blas_channel: Path, conda_cache: Path, own_conf: bool
) -> None:
    """A clone's ``pip.conf`` names the clone's constraints file (conda rewrote the
    prefix in it), in the copied state the conda plugin drops: the user's constraint
    comes back (as the copied backup holds it), a pip.conf vbridge created goes. Left
    as it was, pip refuses to run ("Could not open constraint file")."""
    from vbridge.integrations.conda.plugin import drop_copied_state

    prefix = tmp_path / "env"
    gateenv.conda_prefix_with_python(blas_channel, BLAS_SPECS, prefix, conda_cache)
    caps = tmp_path / "caps.txt"
    caps.write_text("six<1.10\n")
    original = f"[install]\nconstraint = {caps}\nno-compile = yes\n".encode()
    if own_conf:
        (prefix / "pip.conf").write_bytes(original)
    assert run_vbridge("annotate", str(prefix)).returncode == 0
    assert f"{prefix}/.vbridge/constraints.txt" in (prefix / "pip.conf").read_text()
    clone = tmp_path / "clone"
    _clone_vbridge_files(prefix, clone)
    assert f"{clone}/.vbridge/constraints.txt" in (clone / "pip.conf").read_text()
    assert drop_copied_state(clone)
    assert not (clone / ".vbridge").exists()
    if own_conf:
        assert (clone / "pip.conf").read_bytes() == original
    else:
        assert not (clone / "pip.conf").exists()
    assert f"{prefix}/.vbridge/constraints.txt" in (prefix / "pip.conf").read_text()  # its own


def test_a_pip_conf_holding_vbridges_key_without_its_state_is_not_taken_for_the_users(
    tmp_path: Path, blas_channel: Path, conda_cache: Path
) -> None:
    """vbridge's key in a pip.conf no ledger records (the state directory lost or
    removed by hand) is vbridge's: annotate records the file as its own creation, and
    clean removes it rather than putting back a key naming a file that is gone."""
    prefix = tmp_path / "env"
    gateenv.conda_prefix_with_python(blas_channel, BLAS_SPECS, prefix, conda_cache)
    assert run_vbridge("annotate", str(prefix)).returncode == 0
    shutil.rmtree(prefix / ".vbridge")
    assert run_vbridge("annotate", str(prefix)).returncode == 0
    cleaned = run_vbridge("clean", str(prefix))
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (prefix / "pip.conf").exists() and not (prefix / ".vbridge").exists()


def test_the_file_follows_a_conda_blas_switch(
    tmp_path: Path, blas_channel: Path, conda_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conda plugin (through the conda stand-in) rewrites it after the transaction."""
    standin = conda_standin.install(monkeypatch)
    prefix = tmp_path / "env"
    gateenv.conda_prefix_with_python(blas_channel, BLAS_SPECS, prefix, conda_cache)
    before = {r.dist_str(): r for r in conda_standin.prefix_records(prefix)}
    assert run_vbridge("annotate", str(prefix)).returncode == 0
    (numpy_pin,) = [x for x in _lines(prefix) if x.startswith("numpy==")]
    assert "blas_lapack :: provider :: mkl" in numpy_pin

    switched = ["numpy", "scipy", "libblas=*=*openblas", "python"]
    condaenv.install(blas_channel, switched, prefix, conda_cache)
    after = {r.dist_str(): r for r in conda_standin.prefix_records(prefix)}
    linked = [after[k] for k in sorted(set(after) - set(before))]
    unlinked = [before[k] for k in sorted(set(before) - set(after))]
    actions = standin.manager.get_post_transaction_actions(
        {}, str(prefix), unlinked, linked, [], [], []
    )
    conda_standin.run_final_action_group(actions)
    (numpy_pin,) = [x for x in _lines(prefix) if x.startswith("numpy==")]
    assert "blas_lapack :: provider :: openblas" in numpy_pin
    assert "provider :: mkl" not in numpy_pin


# --- Debian: a venv over python3-numpy ------------------------------------------------------


def _debian_ready() -> bool:
    return Path(gateenv.DEBIAN_PYTHON).exists() and Path(
        "/usr/lib/python3/dist-packages/numpy"
    ).is_dir()


@pytest.mark.debian
@pytest.mark.network
@pytest.mark.skipif(not _debian_ready(), reason="needs Debian's python3-numpy and python3-venv")
def test_plain_pip_in_a_debian_venv_keeps_apt_numpy(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = gateenv.make_venv(venv, gateenv.DEBIAN_PYTHON, system_site=True)
    annotated = run_vbridge("annotate", "--python", str(python))
    assert annotated.returncode == 0, annotated.stdout + annotated.stderr
    version = subprocess.run(
        [gateenv.DEBIAN_PYTHON, "-I", "-c", "import numpy; print(numpy.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    (numpy_pin,) = [x for x in _lines(venv) if x.startswith("numpy==")]
    assert numpy_pin.startswith(f"numpy=={version}  # apt python3-numpy ")
    assert "pip must not shadow it (ownership.shadow = refuse)" in numpy_pin
    # Debian's scipy and h5py are built against python3-numpy-abi9: numpy<2 (the
    # policy's [[abi]] table).
    (bound,) = [x for x in _lines(venv) if x.startswith("numpy<2  # apt ")]
    assert bound.endswith("needs python3-numpy-abi9 (dependents.broken = refuse)")

    before = gateenv.listing(venv)
    upgrade = _pip(python, "install", "--no-compile", "-U", "numpy")
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    refused = _pip(python, "install", "--no-compile", "numpy>=2")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert gateenv.listing(venv) == before
    assert _pip(python, "install", "--no-compile", "iniconfig==2.0.0").returncode == 0

    assert run_vbridge("clean", str(venv)).returncode == 0
    assert not (venv / "pip.conf").exists() and not (venv / ".vbridge").exists()
    free = _pip(python, "install", "--dry-run", "numpy>=2")
    assert free.returncode == 0, free.stdout + free.stderr


def test_nothing_is_written_for_a_directory_no_python_runs_from(
    tmp_path: Path, blas_channel: Path, conda_cache: Path
) -> None:
    prefix = condaenv.install(
        blas_channel, ["numpy", "libblas=*=*mkl"], tmp_path / "env", conda_cache
    )
    result = run_vbridge("annotate", str(prefix))
    assert result.returncode == 0, result.stderr
    assert not (prefix / "pip.conf").exists()
    assert not (prefix / ".vbridge" / "constraints.txt").exists()


def _apt_get(*args: str) -> None:
    subprocess.run(
        ["apt-get", "-y", "-q", *args], check=True, capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=600,
    )


@pytest.mark.debian
@pytest.mark.root
@pytest.mark.network
@pytest.mark.skipif(not _debian_ready(), reason="needs Debian's python3-numpy and python3-venv")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (apt-get)")
def test_the_file_follows_apt_through_vbridge_sync(tmp_path: Path) -> None:
    """apt installs a Python package (run under flock /tmp/vbridge-system.lock): the
    sync apt's hook runs rewrites the venv's constraints; removing it takes the pin out.
    The package is removed again at the end, whatever happens."""
    if debian_installed("python3-iniconfig"):
        pytest.skip("python3-iniconfig is installed already; this test installs and removes it")
    venv = tmp_path / "venv"
    python = gateenv.make_venv(venv, gateenv.DEBIAN_PYTHON, system_site=True)
    assert run_vbridge("annotate", "--python", str(python)).returncode == 0
    assert not any(x.startswith("iniconfig==") for x in _lines(venv))
    try:
        _apt_get("install", "--no-install-recommends", "python3-iniconfig")
        synced = run_vbridge("sync")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert f"{venv}/.vbridge/constraints.txt" in synced.stdout
        (pin,) = [x for x in _lines(venv) if x.startswith("iniconfig==")]
        assert "# apt python3-iniconfig " in pin
        before = gateenv.listing(venv)
        refused = _pip(python, "install", "--no-compile", "iniconfig==2.0.0")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert gateenv.listing(venv) == before
    finally:
        _apt_get("remove", "python3-iniconfig")
        run_vbridge("sync")
    assert not any(x.startswith("iniconfig==") for x in _lines(venv))
    assert run_vbridge("clean", str(venv)).returncode == 0

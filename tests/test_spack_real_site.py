"""vbridge on the site real Spack 1.2 wrote (tests/fixtures/real-tools/): an install
tree, an environment with its default view, a symlink view, a view with projections and
a downstream store with an upstream.

The defects real Spack showed (issue 15) are tested here on the trees it wrote: an
environment or view is annotated where its files are and its views stay consistent;
``clean`` gives back every byte and every mtime `spack verify manifest` checks; the
store scanned inside Spack is a collection; pure-Python packages get no x86-64 level.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import types
from pathlib import Path

import pytest
import realsite
from test_spack_extension import _spack_modules, _SpecStandIn, spack_command
from typer.testing import CliRunner
from vbridge.adapters import spack
from vbridge.adapters.spack import InstalledSpecs
from vbridge.cli import app
from vbridge.scan import scan_environment

PURE = ("pip", "setuptools", "wheel", "packaging", "flit-core", "meson", "meson-python",
        "pyproject-metadata", "poetry-core", "pkgconfig")  # fmt: skip


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site of the test's own, to write into."""
    return realsite.spack_site(tmp_path / "site")


@pytest.fixture(scope="module")
def real_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One site for the tests that only read."""
    return realsite.spack_site(tmp_path_factory.mktemp("real") / "site")


def _props(env: object, name: str) -> list[set[str]]:
    dists = [d for d in env.distributions if d.name == name]  # type: ignore[attr-defined]
    return [{p.to_str() for p in d.properties} for d in dists]


def _state(root: Path) -> dict[str, tuple[str, bytes | str, int]]:
    """Every file and link under ``root``: kind, content or target, and mtime (ns)."""
    out: dict[str, tuple[str, bytes | str, int]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            out[str(path.relative_to(root))] = ("link", os.readlink(path), 0)
        elif path.is_file():
            out[str(path.relative_to(root))] = ("file", path.read_bytes(), st.st_mtime_ns)
    return out


def _dangling(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_symlink() and not p.exists()]


def _view_dist(site: Path, view: str, name: str) -> Path:
    layer = site / view / "lib" / "python3.14" / "site-packages"
    (found,) = layer.glob(f"{name}-*.dist-info")
    return found


# --- scan -------------------------------------------------------------------------------


def test_pure_python_packages_get_no_x86_64_level(real_site: Path) -> None:
    site = real_site
    env = scan_environment(site / "store")
    for name in PURE:
        for props in _props(env, name.replace("-", "_")) + _props(env, name):
            assert not any(p.startswith("x86_64 ::") for p in props), (name, props)
    # Distributions with compiled files keep the level their node's target gives.
    levels = {frozenset(p) for p in _props(env, "numpy")}
    assert all("x86_64 :: level :: v4" in p for p in levels)
    assert {"x86_64 :: level :: v3"} in [{q for q in p if "x86_64" in q} for p in
                                         _props(env, "cython")]  # fmt: skip
    assert not env.problems


def test_projection_view_lists_the_extensions_merged_into_python(real_site: Path) -> None:
    site = real_site
    env = scan_environment(site / "views" / "proj")
    assert env.ecosystems == ["spack"]
    assert sorted(d.name for d in env.distributions) == ["h5py", "mpi4py", "numpy"]
    (numpy,) = _props(env, "numpy")
    assert numpy == {"blas_lapack :: provider :: openblas", "x86_64 :: level :: v4"}
    assert all(d.owner is not None and d.owner.ecosystem == "spack" for d in env.distributions)


def test_h5py_without_mpi_on_an_upstream_parallel_hdf5_says_what_it_links(
    real_site: Path,
) -> None:
    site = real_site
    # Inside Spack the store hands over both databases' specs (upstreams included).
    entries = []
    for tree in (site / "store", site / "store-down"):
        installs = json.loads((tree / ".spack-db" / "index.json").read_text())["database"]
        for record in installs["installs"].values():
            entries.append((record["spec"], record.get("path"), record["installed"], False))
    source = InstalledSpecs(site / "store-down", entries)
    env = scan_environment(site / "store-down", adapters=[source])
    (h5py,) = [d for d in env.distributions if d.name == "h5py"
               and "store-down" in str(d.dist_info)]  # fmt: skip
    record = h5py.owner_record
    assert record is not None
    variants = record.extra["variants"]
    assert isinstance(variants, list) and "mpi=false" in variants
    props = {p.to_str() for p in h5py.properties}
    # Its files link the upstream's libhdf5 built +mpi, which links Open MPI.
    assert {"hdf5 :: parallel :: on", "mpi :: implementation :: openmpi"} <= props
    assert "hdf5 :: parallel :: off" not in props


# --- annotate / clean through an environment or view ------------------------------------


@pytest.mark.parametrize("target", ["envs/sci", "envs/sci/.spack-env/view"])
def test_environment_annotates_the_store_and_its_view_shows_it(site: Path, target: str) -> None:
    before = _state(site)
    result = CliRunner().invoke(app, ["annotate", str(site / target)])
    assert result.exit_code == 0, result.output
    assert "outside the environment" not in result.output
    assert f"vbridge annotate: {site / 'store'}:" in result.output
    assert "in 3 distribution(s)" in result.output  # numpy, h5py, mpi4py: not names
    for name in ("numpy", "h5py", "mpi4py"):
        view_dist = _view_dist(site, "envs/sci/.spack-env/view", name)
        real = Path(os.path.realpath(view_dist / "METADATA")).parent
        assert "store" in real.parts
        assert (real / "variant.json").is_file()  # written where the files really are
        dist = importlib.metadata.PathDistribution(view_dist)
        assert dist.read_text("variant.json") == (real / "variant.json").read_text()
        # Everything the view's RECORD (a link to the store's) lists is in the view.
        for listed in dist.files or []:
            assert (view_dist.parent / listed).exists(), listed
    assert not (site / "envs" / "sci" / ".vbridge").exists()
    assert not _dangling(site)

    result = CliRunner().invoke(app, ["clean", str(site / target)])
    assert result.exit_code == 0, result.output
    after = _state(site)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert changed == []  # content, links and mtimes (spack verify manifest checks them)
    assert not (site / "store" / ".vbridge").exists()


def test_view_rebuilt_while_annotated_leaves_no_dangling_link(site: Path) -> None:
    before = _state(site / "store")
    result = CliRunner().invoke(app, ["annotate", str(site / "envs" / "sci")])
    assert result.exit_code == 0, result.output
    # What `spack env view regenerate` does meanwhile: link every file of each prefix's
    # dist-info again (vbridge's among them), in real directories.
    layer = site / "envs/sci/.spack-env/view/lib/python3.14/site-packages"
    for view_dist in layer.glob("*.dist-info"):
        real = Path(os.path.realpath(view_dist / "METADATA")).parent
        for entry in sorted(view_dist.rglob("*"), reverse=True):
            entry.unlink() if not entry.is_dir() or entry.is_symlink() else entry.rmdir()
        for file in real.rglob("*"):
            if file.is_file():
                link = view_dist / file.relative_to(real)
                link.parent.mkdir(exist_ok=True)
                link.symlink_to(file)
    result = CliRunner().invoke(app, ["clean", str(site / "store")])
    assert result.exit_code == 0, result.output
    assert _dangling(site) == []
    assert not list(layer.glob("*.dist-info/sboms"))
    assert _state(site / "store") == before


def test_store_annotate_keeps_known_views_consistent(site: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["annotate", str(site / "views" / "plain")]).exit_code == 0
    assert runner.invoke(app, ["clean", str(site / "store")]).exit_code == 0
    # The view is known to the store now: a store annotate links into it as well.
    result = runner.invoke(app, ["annotate", str(site / "views" / "plain")])
    assert result.exit_code == 0
    result = runner.invoke(app, ["annotate", str(site / "store")])
    assert result.exit_code == 0, result.output
    numpy = _view_dist(site, "views/plain", "numpy")
    assert (numpy / "variant.json").is_file()
    result = runner.invoke(app, ["clean", str(site / "store")])
    assert result.exit_code == 0
    assert not (numpy / "variant.json").is_symlink() and _dangling(site) == []
    assert not (site / "store" / ".vbridge").exists()


def test_annotate_counts_dist_infos_not_names(real_site: Path) -> None:
    site = real_site
    result = CliRunner().invoke(app, ["annotate", "--dry-run", str(site / "store")])
    assert result.exit_code == 0
    env = scan_environment(site / "store")
    with_props = [d for d in env.distributions if d.properties]
    assert len({d.name for d in with_props}) < len(with_props)  # two builds of some
    assert f"to change in {len(with_props)} distribution(s)" in result.output


# --- inside Spack: spack vbridge -----------------------------------------------------------


def test_inside_spack_the_store_is_a_collection(
    real_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = real_site
    with _spack_modules(site / "store"):
        status, _ = spack_command("scan", "--json")
    doc = json.loads(capsys.readouterr().out)
    assert status == 0  # mpi4py ^openmpi and ^mpich are two environments' builds
    (env,) = doc["environments"]
    assert not any(f["code"].startswith("mixed-") for f in env["findings"])
    mpi = {tuple(d["properties"]) for d in env["distributions"] if d["name"] == "mpi4py"}
    assert {p[0] for p in mpi} == {
        "mpi :: implementation :: mpich", "mpi :: implementation :: openmpi"
    }  # fmt: skip
    # Evidence names the store's database, as reading the files does.
    index = str(site / "store" / ".spack-db" / "index.json")
    sources = {e["source"] for d in env["distributions"] for ev in d["evidence"].values()
               for e in ev}  # fmt: skip
    assert sources == {index}


def _active(site: Path) -> types.SimpleNamespace:
    installs = json.loads((site / "store/.spack-db/index.json").read_text())["database"]
    specs = [_SpecStandIn(r) for r in installs["installs"].values()]
    return types.SimpleNamespace(path=str(site / "envs" / "sci"), all_specs=lambda: specs)


def test_inside_spack_env_scan_lists_the_view(
    real_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = real_site
    with _spack_modules(site / "store", active=_active(site)):
        status, _ = spack_command("scan")
    out = capsys.readouterr().out
    assert status == 0
    names = [line.split()[0] for line in out.splitlines()[2:] if " spack " in line]
    assert names == ["h5py", "mpi4py", "numpy"]  # no cython, meson, pip, setuptools ...


def test_inside_spack_env_annotate_writes_the_store(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _state(site)
    with _spack_modules(site / "store", active=_active(site)):
        status, _ = spack_command("annotate")
        out = capsys.readouterr().out
        assert status == 0
        assert "outside the environment" not in out
        assert "in 3 distribution(s)" in out
        numpy = _view_dist(site, "envs/sci/.spack-env/view", "numpy")
        assert json.loads((numpy / "variant.json").read_text())["variants"]
        status, _ = spack_command("clean")
    assert status == 0
    assert _state(site) == before


def test_spack_scan_of_a_missing_path_names_what_to_give(
    real_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = real_site
    status, _ = spack_command("scan", str(site / "nonexistent"))
    err = capsys.readouterr().err
    assert status == 2
    assert "--python" not in err and "install tree, environment directory, view" in err


def test_spack_scan_of_site_packages_names_the_prefix(
    real_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = real_site
    (prefix,) = (site / "store" / "linux-x86_64_v4").glob("py-numpy-2.5.0-3fw*")
    status, _ = spack_command("scan", str(prefix / "lib" / "python3.14" / "site-packages"))
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0] == f"Environment {prefix} (spack)"


def test_spack_environment_without_a_view_says_so(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = site / "envs" / "sci"
    (env / ".spack-env" / "view").unlink()
    status, _ = spack_command("scan", str(env))
    captured = capsys.readouterr()
    assert status == 0
    assert "has no view (`view: false`)" in captured.err
    assert spack.view_roots(env) == []


def test_a_site_packages_layer_is_not_taken_for_a_view_with_projections(
    real_site: Path, tmp_path: Path
) -> None:
    # The same projection view, moved under a name only a Python layer has: its
    # projections are no longer looked for (a scan looks at every layer), while under
    # any other name it is still found.
    for name, found in (("site-packages", False), ("dist-packages", False), ("proj2", True)):
        copy = tmp_path / name
        shutil.copytree(real_site / "views" / "proj", copy, symlinks=True)
        assert spack.projection_views(copy)  # projections are there either way
        assert (spack.find_root(copy) == copy) is found

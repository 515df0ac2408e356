"""scan_environment (vbridge/scan.py): records tied to the distributions of an
environment's layers, properties carried along dependencies, nothing decided.

The records come from a small adapter of this file ("unit", its rules in
tests/data/scan-unit.toml), so each test states the records it scans.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import CondaPrefixFactory, compare_full_scan_with_scans_alone
from vbridge.adapters import Adapter
from vbridge.errors import NotAnEnvironment
from vbridge.model import Environment, InstallRecord, RecordProblem
from vbridge.scan import prefix_layers, scan_environment

SITE = "lib/python3.12/site-packages"
MARKER = "unit-records"


class Listed(Adapter):
    """The records a test hands in, for a prefix holding a ``unit-records`` file."""

    ECOSYSTEM = "unit"
    RULES = Path(__file__).parent / "data" / "scan-unit.toml"

    def __init__(
        self,
        records: Sequence[InstallRecord],
        layers: Sequence[Path] = (),
        *,
        collection: bool = False,
    ) -> None:
        self.records = list(records)
        self.layers = list(layers)
        self.collection = collection

    def find_root(self, path: Path) -> Path | None:
        return path if (path / MARKER).is_file() else None

    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        yield from self.records

    def site_packages(self, root: Path) -> list[Path]:
        return self.layers

    def is_collection(self, root: Path) -> bool:
        return self.collection


class Describing(Listed):
    """Records that describe distributions and own none (as the wheel adapter's)."""

    ECOSYSTEM = "unit-described"
    FOREIGN = False
    RULES = Listed.RULES


def _prefix(tmp_path: Path, *dists: str, layer: str = SITE) -> Path:
    (tmp_path / MARKER).write_text("")
    for name in dists:
        dist_info = tmp_path / layer / f"{name.replace('-', '_')}-1.0.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (dist_info / "INSTALLER").write_text("unit\n")
    return tmp_path


def _record(
    name: str, build: str = "0", *depends: str, owns: Path | None = None, **kwargs: object
) -> InstallRecord:
    dists = (owns / SITE / f"{name.replace('-', '_')}-1.0.dist-info",) if owns else ()
    return InstallRecord("unit", name, "1.0", build, depends=depends, python_dists=dists, **kwargs)  # type: ignore[arg-type]


def _props(env: Environment, name: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    dist = next(d for d in env.distributions if d.name == name)
    return {p.to_str(): (e[0].rule, e[0].via) for p, e in dist.properties.items()}


def test_a_missing_path_is_not_an_environment(tmp_path: Path) -> None:
    with pytest.raises(NotAnEnvironment, match="no such directory"):
        scan_environment(tmp_path / "gone", adapters=[])


def test_without_records_the_environment_is_pip_s(tmp_path: Path) -> None:
    _prefix(tmp_path, "six")
    env = scan_environment(tmp_path, adapters=[])
    assert env.ecosystems == ["pip"] and env.site_packages == [tmp_path / SITE]
    (six,) = env.distributions
    assert (six.name, six.owner, six.installer, six.layer) == (
        "six",
        None,
        "unit",
        str(tmp_path / SITE),
    )
    assert env.findings == []  # deciding is assess_environment's


def test_prefix_layers_lists_a_merged_usr_directory_once(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/python3/dist-packages").mkdir(parents=True)
    os.symlink("usr/lib", tmp_path / "lib")
    assert prefix_layers(tmp_path) == [tmp_path / "usr/lib/python3/dist-packages"]


def test_ownership_and_the_nearest_provider(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path, "numpy", "loose")
    records = [
        _record("numpy", "0", "wrapper", "shim >=1", owns=prefix),
        _record("shim", "0", "blas"),  # numpy -> shim -> blas (mkl): two steps
        _record("wrapper", "0", "deeper"),
        _record("deeper", "0", "blas2"),
        InstallRecord("unit", "blas", "1.0", "3_mkl"),
        InstallRecord("unit", "blas2", "1.0", "3_openblas"),
    ]
    env = scan_environment(prefix, adapters=[Listed(records)])
    assert env.ecosystems == ["unit"]
    numpy = next(d for d in env.distributions if d.name == "numpy")
    assert numpy.owner is not None and (numpy.owner.ecosystem, numpy.owner.name) == (
        "unit",
        "numpy",
    )
    assert numpy.owner_record is records[0]
    # Breadth first: blas is two steps away, blas2 three; only the nearest counts.
    assert _props(env, "numpy") == {
        "blas_lapack :: provider :: mkl": ("unit-blas-build", ("numpy", "shim", "blas"))
    }
    loose = next(d for d in env.distributions if d.name == "loose")
    assert loose.owner is None and loose.properties == {}


def test_the_walk_stops_at_stop_at_and_at_other_python_distributions(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path, "numpy", "scipy")
    records = [
        _record("numpy", "0", "python", "scipy", owns=prefix),
        _record("python", "0", "blas"),  # stop_at: what python links is not numpy's
        _record("scipy", "0", "openmpi", owns=prefix),  # carries its own properties
        InstallRecord("unit", "blas", "1.0", "3_mkl"),
        InstallRecord("unit", "openmpi", "5.0"),
    ]
    env = scan_environment(prefix, adapters=[Listed(records)])
    assert _props(env, "numpy") == {}
    assert _props(env, "scipy") == {
        "mpi :: implementation :: openmpi": ("unit-mpi-name", ("scipy", "openmpi"))
    }


def test_exact_requirements_pick_the_build_linked(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path, "h5py")
    mkl = InstallRecord("unit", "blas", "1.0", "3_mkl")
    openblas = InstallRecord("unit", "blas", "1.0", "3_openblas")
    h5py = _record("h5py", "0", "blas", owns=prefix, requires=(openblas.key,))
    env = scan_environment(prefix, adapters=[Listed([mkl, openblas, h5py])])
    # By name the first blas (mkl) would be reached; the exact edge says openblas.
    assert _props(env, "h5py") == {
        "blas_lapack :: provider :: openblas": ("unit-blas-build", ("h5py", "blas"))
    }


def test_a_metapackage_pins_the_build_of_the_distribution_it_depends_on(
    tmp_path: Path,
) -> None:
    prefix = _prefix(tmp_path, "numpy-base")
    records = [
        _record("numpy-base", "0", owns=prefix),
        _record("numpy", "0", "numpy-base", "blas"),  # owns nothing: a metapackage
        InstallRecord("unit", "blas", "1.0", "3_mkl"),
    ]
    env = scan_environment(prefix, adapters=[Listed(records)])
    assert _props(env, "numpy-base") == {
        "blas_lapack :: provider :: mkl": ("unit-blas-build", ("numpy-base", "numpy", "blas"))
    }


def test_only_gives_properties_and_installer_to_the_named(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path, "a", "b")
    records = [
        _record("a", "0", "blas", owns=prefix),
        _record("b", "0", "blas", owns=prefix),
        InstallRecord("unit", "blas", "1.0", "3_mkl"),
    ]
    wanted = prefix / SITE / "b-1.0.dist-info"
    env = scan_environment(prefix, adapters=[Listed(records)], only=[wanted])
    a, b = sorted(env.distributions, key=lambda d: d.name)
    assert (a.installer, a.properties) == (None, {}) and a.owner is not None
    assert b.installer == "unit" and "blas_lapack :: provider :: mkl" in _props(env, "b")


def test_layers_the_records_know_of_and_layers_given(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path, "mpi4py", layer="opt/site")
    records = [_record("mpi4py", "0", "openmpi"), InstallRecord("unit", "openmpi", "5.0")]
    (prefix / "a-file").write_text("")
    adapter = Listed(records, layers=[prefix / "opt/site", prefix / "missing", prefix / "a-file"])
    env = scan_environment(prefix, adapters=[adapter])
    assert env.site_packages == [prefix / "opt/site"]  # existing directories only
    assert [d.name for d in env.distributions] == ["mpi4py"]
    given = scan_environment(prefix, layers=[], adapters=[adapter])
    assert given.site_packages == [] and given.distributions == []


def test_a_collection_and_the_facts_of_owned_distributions(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path, "numpy")
    numpy = _record("numpy", "0", owns=prefix, extra={"dist_facts": {"c_abi": "9"}})
    env = scan_environment(prefix, adapters=[Listed([numpy], collection=True)])
    assert env.collection
    assert env.distributions[0].facts == {"c_abi": "9"}


def test_describing_records_give_properties_to_what_no_one_owns(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path, "scipy", "owned")
    site = prefix / SITE
    described = [
        InstallRecord(
            "unit-described",
            name,
            "1.0",
            python_dists=(site / f"{name}-1.0.dist-info",),
            extra={"bundled": [f"{name}.libs/libopenblas.so"]},
            foreign=False,
        )
        for name in ("scipy", "owned")
    ]
    owner = _record("owned", "0", owns=prefix)
    env = scan_environment(prefix, adapters=[Listed([owner]), Describing(described)])
    assert env.ecosystems == ["unit"]  # a describing adapter names no ecosystem
    assert _props(env, "scipy") == {"blas_lapack :: provider :: openblas": ("unit-described", ())}
    scipy = next(d for d in env.distributions if d.name == "scipy")
    assert scipy.facts == {"bundled": ["scipy.libs/libopenblas.so"]}
    assert _props(env, "owned") == {}  # its owner's records say what it is


@pytest.mark.parametrize("specs", [["scipy", "h5py", "libblas=*=*mkl"], ["numpy", "mpi4py"]])
def test_a_full_scan_gives_each_distribution_what_a_scan_for_it_alone_gives(
    specs: list[str], mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    owned, with_via = compare_full_scan_with_scans_alone(conda_prefix(mkl_channel, specs))
    assert owned >= 2
    assert with_via  # properties found through dependencies were compared

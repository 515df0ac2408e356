"""The effective view: which copy of each import name Python imports (vbridge.imports)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vbridge.imports import active_copies, import_names_of, resolve_active
from vbridge.model import Distribution, Environment
from vbridge.scan import scan_environment


def _dist_info(layer: Path, dirname: str, *, top_level: str | None = None,
               record: list[str] = (), installer: str = "pip") -> Path:  # type: ignore[assignment]
    meta = layer / dirname
    meta.mkdir(parents=True)
    name, version = dirname.removesuffix(".dist-info").split("-", 1)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (meta / "INSTALLER").write_text(installer + "\n")
    if top_level is not None:
        (meta / "top_level.txt").write_text(top_level)
    rows = [*record, f"{dirname}/METADATA,,", f"{dirname}/RECORD,,"]
    (meta / "RECORD").write_text("".join(f"{r.split(',')[0]},,\n" for r in rows))
    return meta


def test_import_names_come_from_top_level_then_record_then_the_name(tmp_path: Path) -> None:
    layer = tmp_path / "site-packages"
    debian = _dist_info(layer, "h5py._debian_h5py_mpi-3.7.0.dist-info", top_level="h5py\n")
    yaml = _dist_info(layer, "PyYAML-6.0.dist-info",
                      record=["yaml/__init__.py", "_yaml/__init__.py", "../../../bin/x"])
    bare = layer / "python_dateutil-2.9.0.dist-info"
    bare.mkdir()
    names = {
        p: import_names_of(Distribution("x-y", "1", p)) for p in (debian, yaml, bare)
    }
    assert names[debian] == ("h5py",)
    assert names[yaml] == ("_yaml", "yaml")
    assert names[bare] == ("x_y",)  # nothing recorded: pip's own guess from the name


def test_an_earlier_layer_shadows_every_claimant_of_the_name(tmp_path: Path) -> None:
    """A venv's h5py wheel shadows both of Debian's h5py builds (named differently)."""
    venv, system = tmp_path / "venv" / "site-packages", tmp_path / "usr" / "dist-packages"
    _dist_info(venv, "h5py-3.12.1.dist-info", record=["h5py/__init__.py"])
    _dist_info(system, "h5py._debian_h5py_mpi-3.7.0.dist-info", top_level="h5py\n",
               installer="debian")
    _dist_info(system, "h5py._debian_h5py_serial-3.7.0.dist-info", top_level="h5py\n",
               installer="debian")
    _dist_info(system, "six-1.16.0.dist-info", record=["six.py"])
    env = scan_environment(tmp_path, layers=[venv, system])
    by_name = {d.name: d for d in env.distributions}
    wheel = by_name["h5py"]
    assert wheel.active and wheel.import_names == ("h5py",)
    for name in ("h5py-debian-h5py-mpi", "h5py-debian-h5py-serial"):
        assert by_name[name].shadowed_by is wheel
    assert by_name["six"].active  # nothing earlier claims six
    # The other order: Debian's builds are active (both: h5py/__init__.py picks one).
    env = scan_environment(tmp_path, layers=[system, venv])
    by_name = {d.name: d for d in env.distributions}
    assert by_name["h5py-debian-h5py-mpi"].active and by_name["h5py-debian-h5py-serial"].active
    assert by_name["h5py"].shadowed_by is not None
    assert set(active_copies(env.distributions)) == {
        "h5py-debian-h5py-mpi", "h5py-debian-h5py-serial", "six"
    }


def test_two_copies_in_one_layer_the_last_written_wins(tmp_path: Path) -> None:
    layer = tmp_path / "site-packages"
    old = _dist_info(layer, "six-1.16.0.dist-info", record=["six.py"])
    new = _dist_info(layer, "six-1.17.0.dist-info", record=["six.py"])
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    env = Environment(path=tmp_path, site_packages=[layer], distributions=[
        Distribution("six", "1.16.0", old, layer=str(layer)),
        Distribution("six", "1.17.0", new, layer=str(layer)),
    ])
    resolve_active(env)
    assert [d.version for d in env.distributions if d.active] == ["1.17.0"]
    # Touch the older one: now its files are the last written.
    os.utime(old, ns=(4_000_000_000_000_000_000, 4_000_000_000_000_000_000))
    resolve_active(env)
    assert [d.version for d in env.distributions if d.active] == ["1.16.0"]


def test_a_collection_is_never_one_sys_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "site-packages", tmp_path / "b" / "site-packages"
    env = Environment(path=tmp_path, site_packages=[a, b], collection=True, distributions=[
        Distribution("numpy", "1.26.4", _dist_info(a, "numpy-1.26.4.dist-info"), layer=str(a)),
        Distribution("numpy", "2.1.3", _dist_info(b, "numpy-2.1.3.dist-info"), layer=str(b)),
    ])
    resolve_active(env)
    assert all(d.active for d in env.distributions)


def test_record_paths_are_the_csv_readers_first_column() -> None:
    """record_paths reads a RECORD as csv does: every RECORD of the fixtures (real
    wheels' and conda's), and RECORDs whose paths hold commas, quotes and CRLF lines."""
    import csv
    import io

    from vbridge.imports import record_paths

    def by_csv(text: str) -> list[str]:
        return [row[0] for row in csv.reader(io.StringIO(text)) if row]

    texts = [p.read_text() for p in (Path(__file__).parent / "fixtures").rglob("RECORD")]
    texts += [
        'pkg/__init__.py,sha256=abc,10\r\npkg/a,b.py,,\r\n"pkg/c,d.py",,\r\n',
        '"pkg/say ""hi"".py",sha256=x,1\npkg/ok.py,,\n\n',
        "pkg/x.py,,\npkg-1.0.dist-info/RECORD,,",
        "pkg/form\x0cfeed.py,,\npkg/line\u2028separator.py,,\npkg/next\x85line.py,,\n",
    ]
    for text in texts:
        assert record_paths(text) == by_csv(text), text[:200]
    assert len(texts) > 50
    too_long = '"' + "a" * (csv.field_size_limit() + 1) + '",,\n'  # not CSV to its reader
    assert record_paths(too_long) == []
    with pytest.raises(ValueError, match="not CSV"):
        record_paths(too_long, strict=True)


def test_an_egg_is_read_in_its_egg_info_and_a_wheel_file_from_its_members(
    tmp_path: Path,
) -> None:
    import zipfile

    egg = tmp_path / "site-packages" / "six-1.16.0-py3.11.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "top_level.txt").write_text("six\n")
    (egg / "top_level.txt").write_text("not_this\n")  # beside EGG-INFO: not the metadata
    recorded = tmp_path / "site-packages" / "attrs-23.1.0-py3.11.egg"
    (recorded / "EGG-INFO").mkdir(parents=True)
    (recorded / "EGG-INFO" / "RECORD").write_text("attr/__init__.py,,\nattrs/__init__.py,,\n")
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/__init__.py", "")
        zf.writestr("pkg_helpers.py", "")
        zf.writestr("pkg-1.0.dist-info/RECORD", "")
    assert import_names_of(Distribution("six", "1.16.0", egg)) == ("six",)
    assert import_names_of(Distribution("attrs", "23.1.0", recorded)) == ("attr", "attrs")
    assert import_names_of(Distribution("pkg", "1.0", wheel)) == ("pkg", "pkg_helpers")

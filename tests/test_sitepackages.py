"""What a site-packages directory holds, as pip would list it (vbridge.sitepackages)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vbridge.sitepackages import iter_metadata_dirs, layer_stat


def _layer(tmp_path: Path) -> Path:
    layer = tmp_path / "lib" / "python3.11" / "site-packages"
    for name in ["zlib_ng-0.5.dist-info", "numpy-2.1.3.dist-info", "Six-1.16.0.egg-info"]:
        (layer / name).mkdir(parents=True)
    (layer / "single-1.0.egg-info").write_text("Metadata-Version: 1.0\n")  # a file
    (layer / "attrs-23.1.0-py3.11.egg" / "EGG-INFO").mkdir(parents=True)
    (layer / "zipped-1.0-py3.11.egg").write_bytes(b"PK")  # a zipped egg: no EGG-INFO
    (layer / "file-1.0.dist-info").write_text("")  # a dist-info that is not a directory
    (layer / "noversion.dist-info").mkdir()
    (layer / "numpy").mkdir()
    return layer


def test_every_distribution_by_name_with_its_path(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    found = list(iter_metadata_dirs(layer))
    assert [(m.name, m.version, m.path.name) for m in found] == [
        ("six", "1.16.0", "Six-1.16.0.egg-info"),
        ("attrs", "23.1.0", "attrs-23.1.0-py3.11.egg"),
        ("numpy", "2.1.3", "numpy-2.1.3.dist-info"),
        ("single", "1.0", "single-1.0.egg-info"),
        ("zlib-ng", "0.5", "zlib_ng-0.5.dist-info"),
    ]
    assert [m.path for m in found] == [layer / m.path.name for m in found]
    assert all(type(m.path) is type(layer) for m in found)


@pytest.mark.parametrize("given", ["absolute", "relative", "text"])
def test_the_paths_are_what_the_listing_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """The same paths as Path(entry.path) of os.scandir, however the layer is given."""
    layer = _layer(tmp_path)
    monkeypatch.chdir(tmp_path)
    choices: dict[str, Path | str] = {
        "absolute": layer,
        "relative": Path("lib/python3.11/site-packages"),
        "text": str(layer) + "/",
    }
    arg = choices[given]
    listed = sorted(Path(e.path) for e in os.scandir(arg) if e.name in {"numpy-2.1.3.dist-info"})
    found = [m.path for m in iter_metadata_dirs(arg)]  # type: ignore[arg-type]
    assert [p for p in found if p.name == "numpy-2.1.3.dist-info"] == listed
    assert str(found[0]) == os.path.join(str(Path(arg)), found[0].name)


def test_a_layer_that_is_not_there_holds_nothing(tmp_path: Path) -> None:
    assert list(iter_metadata_dirs(tmp_path / "absent")) == []
    (tmp_path / "a-file").write_text("")
    assert list(iter_metadata_dirs(tmp_path / "a-file")) == []


def _names(layer: Path) -> list[str]:
    return [m.path.name for m in iter_metadata_dirs(layer)]


def _age(path: Path, seconds: float) -> None:
    """Set ``path``'s mtime ``seconds`` back (its ctime stays: the listing reads both)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def test_a_layer_listed_again_shows_every_change(tmp_path: Path) -> None:
    """The second listing of an unchanged layer in a process is the first one's; an
    entry added, removed or renamed since, or a layer changed within the second before
    it was listed, is listed afresh."""
    import time

    layer = tmp_path / "site-packages"
    (layer / "a-1.dist-info").mkdir(parents=True)
    time.sleep(1.1)  # past the racy second: the listing may be kept
    assert _names(layer) == ["a-1.dist-info"]
    assert _names(layer) == ["a-1.dist-info"]
    (layer / "b-2.dist-info").mkdir()  # within a second of the listing that follows
    assert _names(layer) == ["a-1.dist-info", "b-2.dist-info"]
    (layer / "b-2.dist-info").rename(layer / "c-3.dist-info")
    assert _names(layer) == ["a-1.dist-info", "c-3.dist-info"]
    (layer / "a-1.dist-info").rmdir()
    _age(layer, 5)  # a change whose mtime is old: the ctime still moved
    assert _names(layer) == ["c-3.dist-info"]


def test_an_unpacked_egg_is_looked_at_every_time(tmp_path: Path) -> None:
    """An ``.egg`` counts once it holds ``EGG-INFO``, which the layer's own times do not
    show: a layer with one is not kept."""
    import time

    layer = tmp_path / "site-packages"
    (layer / "x-1.0-py3.11.egg").mkdir(parents=True)
    time.sleep(1.1)
    assert _names(layer) == []
    (layer / "x-1.0-py3.11.egg" / "EGG-INFO").mkdir()
    assert _names(layer) == ["x-1.0-py3.11.egg"]


def test_a_layer_listed_with_the_stat_that_showed_it_a_directory(tmp_path: Path) -> None:
    """layer_stat: a directory's stat (None for a file, a missing path); handed to the
    listing, it is what the listing judges the layer by: the stat taken after a change
    shows the change, one taken before it stands for the layer as it was then."""
    import time

    layer = tmp_path / "site-packages"
    (layer / "a-1.dist-info").mkdir(parents=True)
    (tmp_path / "a-file").write_text("")
    assert layer_stat(tmp_path / "a-file") is None
    assert layer_stat(tmp_path / "absent") is None
    time.sleep(1.1)  # past the racy second: the listing may be kept
    before = layer_stat(layer)
    assert before is not None and before.st_ino == layer.stat().st_ino
    assert [m.path.name for m in iter_metadata_dirs(layer, before)] == ["a-1.dist-info"]
    (layer / "b-2.dist-info").mkdir()
    after = layer_stat(layer)
    assert after is not None
    both = ["a-1.dist-info", "b-2.dist-info"]
    assert [m.path.name for m in iter_metadata_dirs(layer, after)] == both
    assert _names(layer) == both  # its own look agrees

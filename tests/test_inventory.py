"""The SQLite inventory (`vbridge scan --db`, `vbridge inventory ...`) on real conda
prefixes installed by py-rattler from local channels (tests/condaenv.py)."""

from __future__ import annotations

import json
import os
import pty
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import condaenv
import pytest
from conftest import CondaPrefixFactory, run_vbridge
from sqlite_utils import Database
from vbridge.errors import VbridgeError
from vbridge.inventory.database import Inventory, environment_rows
from vbridge.inventory.discover import DiscoveryConfig, Target, discover, venvs_under
from vbridge.scan import scan_environment

VBRIDGE = str(Path(sys.executable).with_name("vbridge"))


def age(root: Path, seconds: int = 3600) -> None:
    """Set every mtime under ``root`` back, as if the environment was installed an hour ago.

    A fingerprint taken within a second of a change is not trusted (the file system's
    timestamps are coarser than that), so a freshly installed prefix is always rescanned.
    """
    when = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)
    os.utime(root, (when, when))


@pytest.fixture(scope="session")
def mixed_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OpenBLAS numpy beside mkl_fft, which links MKL itself (conda-forge's mkl_fft
    depends on ``mkl``): two BLAS libraries in one process, and conda allows it."""
    root = tmp_path_factory.mktemp("channels")
    packages = condaenv.science_packages(blas="openblas", openmp="llvm")
    packages.append(
        condaenv.python_package(
            "mkl-fft",
            "1.3.8",
            "py311h5c7a3e1_0",
            ["mkl >=2023.2.0,<2024.0a0", "python >=3.11,<3.12.0a0"],
        )
    )
    return condaenv.build_channel(root / "mixed", packages)


@pytest.fixture
def three_envs(
    mkl_channel: Path,
    openblas_channel: Path,
    mixed_channel: Path,
    conda_prefix: CondaPrefixFactory,
) -> dict[str, Path]:
    return {
        "mkl": conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"]),
        "openblas": conda_prefix(openblas_channel, ["scipy", "libblas=*=*openblas"]),
        "mixed": conda_prefix(mixed_channel, ["numpy", "mkl-fft", "libblas=*=*openblas"]),
    }


def _scan_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = run_vbridge("scan", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_tables_keys_foreign_keys_and_indexes(
    tmp_path: Path, mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    db_path = tmp_path / "inventory.db"
    _scan_json("--db", str(db_path), str(prefix))
    db = Database(db_path)
    assert set(db.table_names()) == {
        "environments",
        "scans",
        "owners",
        "distributions",
        "properties",
        "findings",
        "problems",
        "verifications",
        "verified",
    }
    for table in db.table_names():
        assert db.table(table).pks == ["id"]
    fks = {
        (t, fk.column, fk.other_table) for t in db.table_names() for fk in db.table(t).foreign_keys
    }
    assert {
        ("scans", "environment_id", "environments"),
        ("distributions", "environment_id", "environments"),
        ("distributions", "owner_id", "owners"),
        ("properties", "distribution_id", "distributions"),
        ("properties", "environment_id", "environments"),
        ("findings", "environment_id", "environments"),
        ("findings", "first_scan_id", "scans"),
        ("problems", "environment_id", "environments"),
        ("verifications", "scan_id", "scans"),
        ("verified", "verification_id", "verifications"),
    } <= fks
    indexed = {tuple(i.columns) for i in db.table("properties").indexes}
    assert {("property",), ("namespace", "feature"), ("distribution_id",)} <= indexed
    assert ("path", "python") in {tuple(i.columns) for i in db.table("environments").indexes}
    assert list(db.execute("PRAGMA foreign_key_check").fetchall()) == []

    # The rows say what the scan said: numpy owned by conda's numpy record, MKL via libblas.
    (numpy,) = db.table("distributions").rows_where("name = ?", ["numpy"])
    owner = db.table("owners").get(numpy["owner_id"])
    assert (owner["ecosystem"], owner["name"], owner["build"]) == (
        "conda",
        "numpy",
        "py311h64a7726_0",
    )
    assert numpy["installed_by"] == "conda"
    props = {
        r["property"]: r
        for r in db.table("properties").rows_where("distribution_id = ?", [numpy["id"]])
    }
    mkl = props["blas_lapack :: provider :: mkl"]
    assert (mkl["namespace"], mkl["feature"], mkl["value"]) == ("blas_lapack", "provider", "mkl")
    assert mkl["record"] == "conda:libblas-3.9.0-20_linux64_mkl"
    assert json.loads(mkl["via"]) == ["numpy", "libblas"]
    (env,) = db.table("environments").rows
    assert json.loads(env["ecosystems"]) == ["conda"] and env["path"] == str(prefix)
    # Browsable with the sqlite-utils command line as it is.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sqlite_utils",
            "query",
            str(db_path),
            "select name from distributions order by name",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [r["name"] for r in json.loads(out)] == sorted(
        d["name"] for d in db.table("distributions").rows
    )


def test_rescan_upserts_in_place_and_keeps_history(
    tmp_path: Path, mkl_channel: Path, conda_cache: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["scipy", "h5py", "libblas=*=*mkl"])
    db_path = tmp_path / "inventory.db"
    first = _scan_json("--db", str(db_path), str(prefix))["environments"][0]
    assert first["status"] == "new"
    db = Database(db_path)
    env_id = next(db.table("environments").rows)["id"]
    numpy_id = next(db.table("distributions").rows_where("name = 'numpy'"))["id"]
    names_before = {r["name"] for r in db.table("distributions").rows}
    assert {"scipy", "h5py", "mpi4py", "numpy"} <= names_before

    # rattler removes h5py and mpi4py (and what only they needed): re-scan.
    condaenv.remove(["scipy", "libblas=*=*mkl"], mkl_channel, prefix, conda_cache)
    second = _scan_json("--db", str(db_path), str(prefix))["environments"][0]
    assert second["status"] == "rescanned"
    db = Database(db_path)
    assert [r["id"] for r in db.table("environments").rows] == [env_id]
    names_after = {r["name"] for r in db.table("distributions").rows}
    assert "h5py" not in names_after and "mpi4py" not in names_after
    # The same distribution keeps its row; nothing dangles after the delete.
    assert next(db.table("distributions").rows_where("name = 'numpy'"))["id"] == numpy_id
    assert list(db.execute("PRAGMA foreign_key_check").fetchall()) == []
    assert not list(db.table("properties").rows_where("distribution_id like ?", ["%h5py%"]))
    # History: both scans, and what the second one removed.
    scans = list(db.table("scans").rows_where("environment_id = ?", [env_id], order_by="id"))
    assert [s["status"] for s in scans] == ["new", "rescanned"]
    removed = json.loads(scans[1]["removed"])
    assert "h5py 3.11.0" in removed and "mpi4py 3.1.5" in removed
    history = json.loads(
        run_vbridge("inventory", "history", str(prefix), "--db", str(db_path), "--json").stdout
    )
    assert [h["status"] for h in history] == ["new", "rescanned"]


def test_unchanged_environment_is_not_scanned_again_until_it_changes(
    tmp_path: Path, mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    db_path = tmp_path / "inventory.db"
    # Just installed: mtimes this fresh are not trusted, so the second scan re-reads.
    # (Set a minute ahead: on a loaded machine the install may end over a second before
    # the scan's fingerprint is taken, and the test is about the rule, not the clock.)
    age(prefix, seconds=-60)
    _scan_json("--db", str(db_path), str(prefix))
    assert _scan_json("--db", str(db_path), str(prefix))["environments"][0]["status"] == "rescanned"
    age(prefix)
    _scan_json("--db", str(db_path), str(prefix))
    again = _scan_json("--db", str(db_path), str(prefix))["environments"][0]
    assert again["status"] == "unchanged"
    db = Database(db_path)
    (env,) = db.table("environments").rows
    assert env["last_scan_id"] == again["scan_id"]
    assert env["distributions"] == again["distributions"] > 0

    # pip installs a distribution beside conda's: site-packages changed, so a real scan.
    site = prefix / condaenv.SITE
    dist = site / "extra_tool-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-tool\nVersion: 1.0\n")
    (dist / "INSTALLER").write_text("pip\n")
    age(prefix)
    after_pip = _scan_json("--db", str(db_path), str(prefix))["environments"][0]
    assert after_pip["status"] == "rescanned"
    assert after_pip["distributions"] == again["distributions"] + 1

    # A record rewritten in place (same name, new content): the rules see the new build.
    meta = prefix / "conda-meta"
    (libblas,) = meta.glob("libblas-*.json")
    record = json.loads(libblas.read_text())
    record["build"] = "20_linux64_openblas"
    libblas.write_text(json.dumps(record))
    age(prefix)
    rescanned = _scan_json("--db", str(db_path), str(prefix))["environments"][0]
    assert rescanned["status"] == "rescanned"
    answer = json.loads(
        run_vbridge(
            "inventory",
            "where",
            "blas_lapack :: provider",
            "--name",
            "numpy",
            "--db",
            str(db_path),
            "--json",
        ).stdout
    )
    assert {a["value"] for a in answer} == {"openblas", "mkl"}  # libcblas, liblapack still MKL


def test_queries_answer_the_usual_questions(tmp_path: Path, three_envs: dict[str, Path]) -> None:
    db_path = tmp_path / "inventory.db"
    paths = [str(three_envs[k]) for k in ("mkl", "openblas", "mixed")]
    _scan_json("--db", str(db_path), *paths)

    def ask(*args: str) -> list[dict]:  # type: ignore[type-arg]
        result = run_vbridge("inventory", *args, "--db", str(db_path), "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    # Which environments mix BLAS?
    mixed = ask("findings", "--code", "mixed-blas-lapack")
    assert [f["environment"] for f in mixed] == [str(three_envs["mixed"])]
    assert "mkl-fft" in mixed[0]["distributions"] and "numpy" in mixed[0]["distributions"]
    # Where is numpy the MKL build?
    where = ask("where", "blas_lapack :: provider :: mkl", "--name", "numpy")
    assert [w["environment"] for w in where] == [str(three_envs["mkl"])]
    assert where[0]["record"] == "conda:libblas-3.9.0-20_linux64_mkl"
    # Every BLAS provider, any value.
    values = {
        (w["environment"], w["name"], w["value"]) for w in ask("where", "blas_lapack :: provider")
    }
    assert (str(three_envs["openblas"]), "scipy", "openblas") in values
    assert (str(three_envs["mixed"]), "mkl-fft", "mkl") in values
    # Who owns numpy where?
    owners = ask("owners", "NumPy")
    assert {o["environment"] for o in owners} == set(paths)
    assert {o["owner_build"] for o in owners} == {"py311h64a7726_0"}
    assert all(o["installed_by"] == "conda" and o["owner_channel"] for o in owners)
    # The table form names the same environments.
    table = run_vbridge(
        "inventory",
        "where",
        "blas_lapack :: provider :: mkl",
        "--name",
        "numpy",
        "--db",
        str(db_path),
    ).stdout
    assert str(three_envs["mkl"]) in table and str(three_envs["openblas"]) not in table
    bad = run_vbridge("inventory", "where", "blas_lapack", "--db", str(db_path))
    assert bad.returncode == 2 and "namespace :: feature" in bad.stderr


def test_two_workers_give_the_same_answer_as_one(
    tmp_path: Path, three_envs: dict[str, Path]
) -> None:
    paths = [str(three_envs[k]) for k in ("mixed", "mkl", "openblas")]
    one = _scan_json("--workers", "1", *paths)
    two = _scan_json("--workers", "2", *paths)
    assert one == two
    assert [e["path"] for e in two["environments"]] == paths  # argument order, not finish order
    # What scanning each prefix on its own says, document and table alike.
    for env in two["environments"]:
        (alone,) = _scan_json(env["path"])["environments"]
        assert env == alone
    tables = [run_vbridge("scan", p).stdout for p in paths]
    assert run_vbridge("scan", "--workers", "2", *paths).stdout == "\n".join(tables)
    # And into the inventory, with workers.
    db_path = tmp_path / "inventory.db"
    summary = _scan_json("--db", str(db_path), "--workers", "2", *paths)
    assert [e["path"] for e in summary["environments"]] == paths
    assert Database(db_path).table("environments").count == 3


def test_progress_line_only_on_a_terminal(tmp_path: Path, three_envs: dict[str, Path]) -> None:
    paths = [str(p) for p in three_envs.values()]
    piped = run_vbridge("scan", "--db", str(tmp_path / "a.db"), *paths)
    assert "scanning" not in piped.stderr

    def on_terminal(*args: str) -> str:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([VBRIDGE, *args], stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=300)
        os.close(leader)
        return b"".join(chunks).decode(errors="replace")

    shown = on_terminal("scan", "--db", str(tmp_path / "b.db"), *paths)
    assert "vbridge: scanning 3/3" in shown
    assert "scanning" not in on_terminal("scan", "--json", "--db", str(tmp_path / "c.db"), *paths)


def test_bad_database_is_one_line_and_left_alone(
    tmp_path: Path, three_envs: dict[str, Path]
) -> None:
    not_db = tmp_path / "notes.txt"
    not_db.write_text("my notes, not a database\n" * 100)
    before = not_db.read_bytes()
    result = run_vbridge("scan", "--db", str(not_db), str(three_envs["mkl"]))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert str(not_db) in result.stderr and "not an SQLite database" in result.stderr
    assert not_db.read_bytes() == before

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    result = run_vbridge("scan", "--db", str(other), str(three_envs["mkl"]))
    assert result.returncode == 2 and "not a vbridge inventory" in result.stderr

    missing = run_vbridge("inventory", "findings", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "vbridge scan --db" in missing.stderr
    assert not (tmp_path / "none.db").exists()

    # One bad target among good ones: the good ones are recorded, exit status 2.
    db_path = tmp_path / "inventory.db"
    result = run_vbridge(
        "scan", "--db", str(db_path), str(three_envs["mkl"]), str(tmp_path / "gone")
    )
    assert result.returncode == 2 and "gone" in result.stderr
    assert Database(db_path).table("environments").count == 1


def test_all_discovers_conda_environments_and_venvs(
    tmp_path: Path, three_envs: dict[str, Path]
) -> None:
    home = tmp_path / "home"
    (home / ".conda").mkdir(parents=True)
    envs_dir = tmp_path / "conda-envs"
    envs_dir.mkdir()
    # One prefix conda listed in environments.txt, one in an envs_dirs folder of .condarc,
    # one listed twice (through a symlink), one listed but since deleted.
    shutil.move(str(three_envs["openblas"]), envs_dir / "sci")
    (envs_dir / "not-an-env").mkdir()
    os.symlink(three_envs["mkl"], tmp_path / "mkl-link")
    (home / ".conda" / "environments.txt").write_text(
        f"{three_envs['mkl']}\n{tmp_path / 'mkl-link'}\n{tmp_path / 'deleted-env'}\n"
    )
    (home / ".condarc").write_text(f"channels:\n  - conda-forge\nenvs_dirs:\n  - {envs_dir}\n")
    venvs = tmp_path / "venvs"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venvs / "proj" / ".venv")], check=True
    )
    config = home / ".config" / "vbridge" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[discover]\nvenvs = ["{venvs}"]\ndebian = false\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "MAMBA", "XDG"))}
    env.update(HOME=str(home))

    settings = {"debian": False, "venvs": [venvs]}
    found = discover(DiscoveryConfig(home=home, environ=env, settings=settings))
    assert [(t.path, t.origin) for t in found] == [
        (three_envs["mkl"], "conda"),
        (envs_dir / "sci", "conda"),
        (venvs / "proj" / ".venv", "venv"),
    ]

    db_path = tmp_path / "inventory.db"
    result = subprocess.run(
        [VBRIDGE, "scan", "--all", "--json", "--db", str(db_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    scanned = json.loads(result.stdout)["environments"]
    assert [e["path"] for e in scanned] == [
        str(three_envs["mkl"]),
        str(envs_dir / "sci"),
        str(venvs / "proj" / ".venv"),
    ]
    assert scanned[1]["ecosystems"] == ["conda"] and scanned[1]["distributions"] >= 2
    origins = {r["path"]: r["origin"] for r in Database(db_path).table("environments").rows}
    assert origins[str(venvs / "proj" / ".venv")] == "venv"


def test_debian_system_and_spack_discovery(tmp_path: Path) -> None:
    system = discover(DiscoveryConfig(home=tmp_path, environ={}, settings={"conda": False}))
    if Path("/var/lib/dpkg/status").is_file() and Path("/usr/bin/python3").exists():
        assert system == [Target(Path("/"), "debian system")]
    else:
        assert system == []
    tree = tmp_path / "spack" / "opt"
    (tree / ".spack-db").mkdir(parents=True)
    (tree / ".spack-db" / "index.json").write_text("{}")
    spack_env = tmp_path / "spack-env"
    spack_env.mkdir()
    (spack_env / "spack.lock").write_text("{}")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[discover]\nspack = ["{tree}", "{spack_env}", "{tmp_path / "nothing"}"]\n'
        "debian = false\nconda = false\n"
    )
    from vbridge.inventory.discover import load_config

    loaded = load_config(home=tmp_path, environ={"VBRIDGE_CONFIG": str(config)})
    assert [(t.path, t.origin) for t in discover(loaded)] == [(tree, "spack"), (spack_env, "spack")]
    config.write_text("[discover]\nspack = '/not/a/list'\n")
    with pytest.raises(Exception, match="must be a list of paths"):
        load_config(home=tmp_path, environ={"VBRIDGE_CONFIG": str(config)})
    config.write_text("[discover\nspack = 1\n")
    with pytest.raises(VbridgeError, match=r"config.toml: not valid TOML \(.*\); fix or remove it"):
        load_config(home=tmp_path, environ={"VBRIDGE_CONFIG": str(config)})


def test_venvs_under_stops_at_depth(tmp_path: Path) -> None:
    for rel in ("a/.venv", "b/c/d/e/.venv"):
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert list(venvs_under(tmp_path)) == [tmp_path / "a" / ".venv"]


def test_recording_rows_directly(
    tmp_path: Path, mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["mpi4py"])
    env = scan_environment(prefix)
    inventory = Inventory.open(tmp_path / "inv.db")
    summary = inventory.record(environment_rows(env, Target(prefix)), 0.1)
    assert (summary.status, summary.distributions) == ("new", len(env.distributions))
    rows = inventory.where("mpi :: implementation", name="mpi4py")
    assert [(r["name"], r["value"]) for r in rows] == [("mpi4py", "openmpi")]
    inventory.close()


def test_debian_root_rescanned_when_an_alternative_switches(tmp_path: Path) -> None:
    # A real dpkg database (tests/fixtures/debian) laid out as a root; the alternative is
    # repointed as update-alternatives --set does, and nothing else changes.
    from debian_root import BLAS, BLAS_TARGETS, lay_out_fixture_root, point_alternative
    from vbridge.inventory.batch import scan_many

    root = lay_out_fixture_root(tmp_path / "root")
    age(root)
    inventory = Inventory.open(tmp_path / "inv.db")

    def scan() -> str:
        target = Target(root, "debian system")
        summary = inventory.unchanged(target)
        if summary is not None:
            return summary.status
        (outcome,) = scan_many([target], mode="rows")
        assert outcome.rows is not None
        return inventory.record(outcome.rows, outcome.seconds).status

    def numpy_blas() -> set[str]:
        rows = inventory.where("blas_lapack :: provider", name="numpy")
        return {r["value"] for r in rows}

    assert scan() == "new"
    before = numpy_blas()
    assert before == {"openblas"}
    assert scan() == "unchanged"
    link = point_alternative(root, BLAS, BLAS_TARGETS["blis"])
    half_an_hour_ago = time.time() - 1800  # old enough to trust, unlike the hour-old rest
    for changed in (link, link.parent):
        os.utime(changed, (half_an_hour_ago, half_an_hour_ago), follow_symlinks=False)
    assert scan() == "rescanned"
    assert "blis" in numpy_blas()
    inventory.close()


def test_a_policy_change_is_a_change(
    tmp_path: Path,
    three_envs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Findings are judged by the policy: creating, editing or pointing $VBRIDGE_POLICY
    at another override file makes an otherwise unchanged environment scanned again.
    Nothing else is touched in between (each file written is dated an hour back)."""
    monkeypatch.delenv("VBRIDGE_POLICY", raising=False)
    prefix = three_envs["mixed"]
    db_path = tmp_path / "inventory.db"
    override = prefix / ".vbridge" / "policy.toml"
    override.parent.mkdir()
    elsewhere = tmp_path / "site-policy.toml"
    an_hour_ago = time.time() - 3600

    def write(path: Path, severity: str) -> None:
        path.write_text(f'[features."blas_lapack :: provider"]\nmixed = "{severity}"\n')
        os.utime(path, (an_hour_ago, an_hour_ago))

    def scan() -> str:
        status = _scan_json("--db", str(db_path), str(prefix))["environments"][0]["status"]
        return str(status)

    def severities() -> set[str]:
        out = run_vbridge("inventory", "findings", "--db", str(db_path), "--json").stdout
        return {f["severity"] for f in json.loads(out) if f["code"] == "mixed-blas-lapack"}

    age(prefix)
    scan()
    assert scan() == "unchanged" and severities() == {"warn"}

    write(override, "refuse")
    assert scan() == "rescanned" and severities() == {"refuse"}
    assert scan() == "unchanged"
    write(override, "info")  # same size, other content, same (old) mtime: ...
    os.utime(override, (an_hour_ago + 1, an_hour_ago + 1))  # ... an edit moves the mtime
    assert scan() == "rescanned" and severities() == {"info"}

    write(elsewhere, "warn")
    monkeypatch.setenv("VBRIDGE_POLICY", str(elsewhere))
    assert scan() == "rescanned" and severities() == {"warn"}
    assert scan() == "unchanged"
    monkeypatch.delenv("VBRIDGE_POLICY")
    assert scan() == "rescanned" and severities() == {"info"}

# The program `vbridge verify` runs in the inspected interpreter (python -I <copy of this>).
# It is never imported by vbridge: its source is the child's whole program, so it uses
# the standard library only and runs on any Python 3.6+.
#
# stdin: one JSON request
#   {"modules": [top-level names], "extensions": [paths relative to "layer"],
#    "layer": "/.../site-packages", "after_import": {"mpi4py": {"rc.initialize": false}},
#    "threadpoolctl": true}
# fd 1 (a copy taken before anything is imported; what imported modules print goes to
# stderr): JSON lines, {"importing": NAME} before each import, then {"result": {...}}.
import contextlib
import importlib
import json
import os
import sys
from typing import Any


def _last_line(exc: BaseException) -> str:
    import traceback

    lines = traceback.format_exception_only(type(exc), exc)
    text = "".join(lines).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _set_dotted(obj: Any, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        obj = getattr(obj, part)
    setattr(obj, parts[-1], value)


class _AfterImport:
    """Sets attributes on a module right after it is executed (mpi4py.rc.initialize)."""

    def __init__(self, settings: "dict[str, dict[str, Any]]") -> None:
        self.settings = settings

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.settings:
            return None
        import importlib.util

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original = loader.exec_module
        attributes = self.settings[name]

        def exec_module(module: Any) -> None:
            original(module)
            for dotted, value in attributes.items():
                with contextlib.suppress(Exception):
                    _set_dotted(module, dotted, value)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _module_name(relative: str, suffixes: "list[str]") -> "str | None":
    for suffix in suffixes:
        if relative.endswith(suffix):
            parts = relative[: -len(suffix)].split("/")
            # Under the bare ".so" suffix, libNAME.so is a shared library a package ships
            # (scipy/special/libsf_error_state.so), not a module.
            if suffix == ".so" and parts[-1].startswith("lib"):
                return None
            if all(p.isidentifier() for p in parts):
                return ".".join(parts)
    return None


def _origin(module: Any) -> "str | None":
    path = getattr(module, "__file__", None)
    if path:
        return os.path.realpath(str(path))
    locations = list(getattr(module, "__path__", []) or [])
    return os.path.realpath(locations[0]) if locations else None


def _under(path: "str | None", directory: str) -> bool:
    return path is not None and (path + os.sep).startswith(directory.rstrip(os.sep) + os.sep)


def _loader_names() -> "list[str]":
    """The names the dynamic loader opened each object by (symlinks unresolved)."""
    import ctypes

    class Info(ctypes.Structure):
        _fields_ = [
            ("dlpi_addr", ctypes.c_void_p),
            ("dlpi_name", ctypes.c_char_p),
            ("dlpi_phdr", ctypes.c_void_p),
            ("dlpi_phnum", ctypes.c_uint16),
        ]

    names: list[str] = []
    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(Info), ctypes.c_size_t, ctypes.c_char_p
    )

    def collect(info: Any, size: int, data: Any) -> int:
        name = info.contents.dlpi_name
        if name:
            names.append(os.fsdecode(name))
        return 0

    ctypes.CDLL(None).dl_iterate_phdr(callback_type(collect), None)
    return names


def main() -> None:
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    request = json.loads(sys.stdin.read() or "{}")
    sys.stdin.close()
    if request.get("after_import"):
        sys.meta_path.insert(0, _AfterImport(request["after_import"]))

    def say(message: "dict[str, Any]") -> None:
        proto.write(json.dumps(message) + "\n")
        proto.flush()

    layer = os.path.realpath(request.get("layer") or "/")
    failures: list[dict[str, str]] = []
    origins: dict[str, str | None] = {}
    elsewhere: list[str] = []
    imported: list[str] = []
    for name in request.get("modules", []):
        say({"importing": name})
        try:
            module = importlib.import_module(name)
        except BaseException as exc:  # a module may raise SystemExit or worse
            failures.append({"module": name, "error": _last_line(exc)})
            continue
        imported.append(name)
        origins[name] = _origin(module)
        if request.get("layer") and not _under(origins[name], layer):
            elsewhere.append(name)
    from importlib.machinery import EXTENSION_SUFFIXES

    suffixes = sorted(EXTENSION_SUFFIXES, key=len, reverse=True)
    for relative in request.get("extensions", []):
        name = _module_name(relative, suffixes)
        if name is None or name.split(".")[0] in elsewhere:
            continue
        if name.split(".")[0] in [f["module"] for f in failures]:
            continue
        say({"importing": name})
        try:
            importlib.import_module(name)
        except BaseException as exc:
            failures.append({"module": name, "error": _last_line(exc)})
            continue
        imported.append(name)
    maps: list[str] = []
    with open("/proc/self/maps") as fh:
        for line in fh:
            fields = line.split(None, 5)
            if len(fields) == 6:
                path = fields[5].strip()
                if path.startswith("/") and path not in maps:
                    maps.append(path)
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "imported": imported,
        "failures": failures,
        "origins": origins,
        "elsewhere": elsewhere,
        "maps": maps,
    }
    try:
        result["loader_names"] = _loader_names()
    except Exception as exc:
        result["loader_names_error"] = _last_line(exc)
    if request.get("threadpoolctl"):
        say({"importing": "threadpoolctl"})
        try:
            from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

            result["threadpoolctl"] = threadpool_info()
        except BaseException as exc:
            result["threadpoolctl_error"] = _last_line(exc)
    say({"result": result})


if __name__ == "__main__":  # run as a program; never on import
    main()

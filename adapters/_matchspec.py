"""conda's MatchSpec and version-spec semantics, without conda or rattler.

What vbridge asks of a conda spec: does this record (name, version, build string,
build number) match ``numpy >=1.23.5,<2.0a0``, ``libblas * *mkl``,
``openmpi=4.1=h*_100`` or ``numpy[version='>=1.21|<1.0']``? The version order is
conda's ``VersionOrder`` (epoch ``N!``, components split at ``.``/``_`` into numbers and
strings, ``dev`` before everything, ``post`` after, trailing zeros equal, local version
``+...``); the version grammar is conda's (``,`` binds tighter than ``|``, parentheses,
``==`` exact, ``=1.2`` and ``1.2.*`` prefix matches, ``~=`` compatible release, ``!=``,
``<``/``<=``/``>``/``>=``; ``1.2`` alone is exact). Checked against py-rattler's
``MatchSpec`` (tests/test_matchspec.py), which follows conda.

>>> version_matches(">=1.23.5,<2.0a0", "1.26.4")
True
>>> version_matches(">=1.23.5,<2.0a0", "2.0.0rc1")
False
>>> version_matches("1.26.*", "1.26.4"), version_matches("=1.2", "1.20")
(True, False)
>>> MatchSpec.parse("libblas=3.9.0=*mkl").matches("libblas", "3.9.0", "20_linux64_mkl")
True
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from itertools import zip_longest

import msgspec

__all__ = ["InvalidSpec", "MatchSpec", "VersionOrder", "version_matches"]


class InvalidSpec(ValueError):
    """A MatchSpec or version spec conda's grammar does not allow."""


# A component of a version: numbers, strings ("a", "rc", "DEV" sorts first), inf (post).
_Part = int | float | str
_SPLIT = re.compile(r"([0-9]+|[*]+|[^0-9*]+)")
_FILL = 0


def _components(text: list[str]) -> list[list[_Part]]:
    out: list[list[_Part]] = []
    for component in text:
        pieces = _SPLIT.findall(component)
        if not pieces:
            raise InvalidSpec(f"empty version component in {text!r}")
        parts: list[_Part] = []
        for piece in pieces:
            if piece.isdigit():
                parts.append(int(piece))
            elif piece == "post":
                parts.append(float("inf"))  # post releases sort after everything
            elif piece == "dev":
                parts.append("DEV")  # upper case sorts before every lower-case string
            else:
                parts.append(piece)
        out.append(parts if component[0].isdigit() else [_FILL, *parts])
    return out


class VersionOrder(msgspec.Struct, frozen=True):
    """A conda version, ordered as conda orders versions.

    >>> VersionOrder.parse("1.1dev1") < VersionOrder.parse("1.1a1") < VersionOrder.parse("1.1")
    True
    >>> VersionOrder.parse("1.1") == VersionOrder.parse("1.1.0")
    True
    """

    version: tuple[tuple[_Part, ...], ...]
    local: tuple[tuple[_Part, ...], ...]

    @classmethod
    def parse(cls, text: str) -> VersionOrder:
        return _parse_version(text)

    def _key_eq(self, a: tuple[tuple[_Part, ...], ...], b: tuple[tuple[_Part, ...], ...]) -> bool:
        for v1, v2 in zip_longest(a, b, fillvalue=()):
            for c1, c2 in zip_longest(v1, v2, fillvalue=_FILL):
                if c1 != c2:
                    return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VersionOrder):
            return NotImplemented
        return self._key_eq(self.version, other.version) and self._key_eq(self.local, other.local)

    def __hash__(self) -> int:
        return hash(self.version[:1])

    def __lt__(self, other: VersionOrder) -> bool:
        for t1, t2 in ((self.version, other.version), (self.local, other.local)):
            for v1, v2 in zip_longest(t1, t2, fillvalue=()):
                for c1, c2 in zip_longest(v1, v2, fillvalue=_FILL):
                    if c1 == c2:
                        continue
                    if isinstance(c1, str):
                        if not isinstance(c2, str):
                            return True  # strings sort before numbers
                        return c1 < c2
                    if isinstance(c2, str):
                        return False
                    return c1 < c2
        return False

    def __le__(self, other: VersionOrder) -> bool:
        return self == other or self < other

    def __gt__(self, other: VersionOrder) -> bool:
        return other < self

    def __ge__(self, other: VersionOrder) -> bool:
        return self == other or other < self

    def startswith(self, other: VersionOrder) -> bool:
        """Whether this version begins with ``other`` (``1.2.3`` with ``1.2``), as
        conda's ``1.2.*`` and ``=1.2`` ask."""
        if other.local:
            if not self._key_eq(self.version, other.version):
                return False
            t1, t2 = self.local, other.local
        else:
            t1, t2 = self.version, other.version
        last = len(t2) - 1
        if not self._key_eq(t1[:last], t2[:last]):
            return False
        v1 = t1[last] if len(t1) > last else ()
        v2 = t2[last]
        end = len(v2) - 1
        if not self._key_eq((v1[:end],), (v2[:end],)):
            return False
        c1 = v1[end] if len(v1) > end else _FILL
        c2 = v2[end]
        if isinstance(c2, str):
            return isinstance(c1, str) and c1.startswith(c2)
        return c1 == c2


@lru_cache(maxsize=4096)
def _parse_version(text: str) -> VersionOrder:
    version = text.strip().lower()
    if not version or " " in version:
        raise InvalidSpec(f"{text!r} is not a conda version")
    epoch_split = version.split("!")
    if len(epoch_split) > 2 or (len(epoch_split) == 2 and not epoch_split[0].isdigit()):
        raise InvalidSpec(f"{text!r}: bad epoch")
    epoch = [epoch_split[0]] if len(epoch_split) == 2 else ["0"]
    local_split = epoch_split[-1].split("+")
    if len(local_split) > 2:
        raise InvalidSpec(f"{text!r}: more than one '+'")
    main = local_split[0]
    if not main:
        raise InvalidSpec(f"{text!r} is not a conda version")
    local = local_split[1].replace("_", ".").split(".") if len(local_split) == 2 else []
    if main.endswith("_"):  # openssl-like "1.0.1_": the underscore stays with the last part
        parts = main[:-1].replace("_", ".").split(".")
        parts[-1] += "_"
    else:
        parts = main.replace("_", ".").split(".")
    return VersionOrder(
        tuple(tuple(c) for c in _components(epoch + parts)),
        tuple(tuple(c) for c in _components(local)),
    )


# --- version specs -------------------------------------------------------------------

_RELATION = re.compile(r"^(=|==|!=|<=|>=|<|>|~=)(?![=<>!~])(\S+)$")


class _Leaf(msgspec.Struct, frozen=True):
    operator: str  # "==", "!=", "<", "<=", ">", ">=", "startswith", "!startswith", "~=", "*"
    version: VersionOrder | None

    def matches(self, candidate: VersionOrder) -> bool:
        v = self.version
        if v is None:
            return True
        op = self.operator
        if op == "==":
            return candidate == v
        if op == "!=":
            return candidate != v
        if op == "<":
            return candidate < v
        if op == "<=":
            return candidate <= v
        if op == ">":
            return candidate > v
        if op == ">=":
            return candidate >= v
        if op == "startswith":
            return candidate.startswith(v)
        if op == "!startswith":
            return not candidate.startswith(v)
        # ~=1.2.3: >=1.2.3 and starts with 1.2
        prefix = VersionOrder(v.version[:-1], ()) if len(v.version) > 2 else v
        return candidate >= v and candidate.startswith(prefix)


class _Tree(msgspec.Struct, frozen=True):
    operator: str  # "," (all) or "|" (any)
    children: tuple[_Leaf | _Tree, ...]

    def matches(self, candidate: VersionOrder) -> bool:
        if self.operator == ",":
            return all(c.matches(candidate) for c in self.children)
        return any(c.matches(candidate) for c in self.children)


def _leaf(text: str) -> _Leaf:
    if not text:
        raise InvalidSpec("empty version spec")
    if text.startswith("^") or text.endswith("$"):
        raise InvalidSpec(f"{text!r}: regular-expression version specs are not supported")
    if text[0] in "=<>!~":
        match = _RELATION.match(text)
        if match is None:
            raise InvalidSpec(f"{text!r} is not a version relation")
        operator, version = match.groups()
        if version.endswith(".*"):
            version = version[:-2]
            if operator == "!=":
                operator = "!startswith"
            elif operator == "~=":
                raise InvalidSpec(f"{text!r}: ~= with .*")
            elif operator in ("=", "=="):
                operator = "startswith"
        elif version.endswith("*") and operator in ("=", "=="):
            version, operator = version.rstrip("*").rstrip("."), "startswith"
        if operator == "=":
            operator = "startswith"
        if not version:
            raise InvalidSpec(f"{text!r}: no version")
        return _Leaf(operator, _parse_version(version))
    if text.strip("*") == "":
        return _Leaf("*", None)
    if "*" in text.rstrip("*"):
        raise InvalidSpec(f"{text!r}: a '*' inside a version is not supported")
    if text.endswith("*"):
        return _Leaf("startswith", _parse_version(text.rstrip("*").rstrip(".")))
    return _Leaf("==", _parse_version(text))


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"([,|()])", text.replace(" ", "")) if t]


@lru_cache(maxsize=4096)
def parse_version_spec(text: str) -> _Leaf | _Tree:
    """A version spec (``>=1.2,<2|3.*``) as a tree of relations.

    Raises :class:`InvalidSpec`.
    """
    tokens = _tokens(text)
    position = 0

    def any_of() -> _Leaf | _Tree:
        nonlocal position
        options = [all_of()]
        while position < len(tokens) and tokens[position] == "|":
            position += 1
            options.append(all_of())
        return options[0] if len(options) == 1 else _Tree("|", tuple(options))

    def all_of() -> _Leaf | _Tree:
        nonlocal position
        parts = [atom()]
        while position < len(tokens) and tokens[position] == ",":
            position += 1
            parts.append(atom())
        return parts[0] if len(parts) == 1 else _Tree(",", tuple(parts))

    def atom() -> _Leaf | _Tree:
        nonlocal position
        if position >= len(tokens):
            raise InvalidSpec(f"{text!r}: ends too early")
        token = tokens[position]
        position += 1
        if token == "(":
            inner = any_of()
            if position >= len(tokens) or tokens[position] != ")":
                raise InvalidSpec(f"{text!r}: unbalanced parentheses")
            position += 1
            return inner
        if token in ",|)":
            raise InvalidSpec(f"{text!r}: unexpected {token!r}")
        return _leaf(token)

    tree = any_of()
    if position != len(tokens):
        raise InvalidSpec(f"{text!r}: unexpected {tokens[position]!r}")
    return tree


def version_matches(spec: str, version: str) -> bool:
    """Whether ``version`` satisfies the conda version spec ``spec``.

    Raises :class:`InvalidSpec` for a spec (or version) conda would not parse.
    """
    return parse_version_spec(spec).matches(_parse_version(version))


# --- match specs ---------------------------------------------------------------------

_NAME = re.compile(r"^([^ =<>!~\[]+)(.*)$")
_BRACKET_ITEM = re.compile(r"""\s*([a-z_]+)\s*=\s*(?:'([^']*)'|"([^"]*)"|([^,\]]*))\s*,?""")
# "=1.2=build" / " 1.2 build": where the version ends and the build string starts.
_VERSION_BUILD = re.compile(r"^((?:.+?)[^><!,|]?)(?:(?<![=!|,<>~])(?:[ =])([^-=,|<>~]+?))?$")


class MatchSpec(msgspec.Struct, frozen=True):
    """A conda MatchSpec: a name (glob), and optionally a version spec, a build string
    (glob) and a build number relation.

    >>> spec = MatchSpec.parse("numpy >=1.23.5,<2.0a0")
    >>> spec.name, spec.version
    ('numpy', '>=1.23.5,<2.0a0')
    >>> spec.matches("numpy", "1.26.4", "py311h64a7726_0")
    True
    """

    name: str
    version: str | None = None
    build: str | None = None
    build_number: str | None = None

    @classmethod
    def parse(cls, text: str) -> MatchSpec:
        return _parse_matchspec(text)

    def matches(self, name: str, version: str, build: str = "", build_number: int = 0) -> bool:
        if not fnmatch.fnmatchcase(name.lower(), self.name.lower()):
            return False
        if self.version is not None and not version_matches(self.version, version):
            return False
        if self.build is not None and not fnmatch.fnmatchcase(build, self.build):
            return False
        return self.build_number is None or _number_matches(self.build_number, build_number)


def _number_matches(relation: str, number: int) -> bool:
    match = re.fullmatch(r"(==|!=|<=|>=|<|>|=)?\s*(\d+)", relation.strip())
    if match is None:
        raise InvalidSpec(f"build_number {relation!r}")
    operator, value = match.group(1) or "==", int(match.group(2))
    return {
        "==": number == value,
        "=": number == value,
        "!=": number != value,
        "<": number < value,
        "<=": number <= value,
        ">": number > value,
        ">=": number >= value,
    }[operator]


@lru_cache(maxsize=4096)
def _parse_matchspec(text: str) -> MatchSpec:
    spec = text.split("#", 1)[0].strip()
    brackets: dict[str, str] = {}
    if spec.endswith("]") and "[" in spec:
        spec, _, inside = spec[:-1].partition("[")
        for item in _BRACKET_ITEM.finditer(inside):
            key = item.group(1)
            brackets[key] = next(g for g in item.groups()[1:] if g is not None).strip()
    if "::" in spec:
        spec = spec.rsplit("::", 1)[1]  # the channel does not decide a match here
    match = _NAME.match(spec.strip())
    if match is None:
        raise InvalidSpec(f"{text!r}: no package name")
    name, rest = match.group(1), match.group(2).strip()
    version: str | None = None
    build: str | None = None
    if rest:
        parsed = _VERSION_BUILD.match(rest)
        if parsed is None:
            raise InvalidSpec(f"{text!r}: cannot split version and build")
        version, build = parsed.group(1).strip(), parsed.group(2)
        if version in ("=", "=="):
            raise InvalidSpec(f"{text!r}: no version after {version!r}")
        if version.startswith("="):
            rest_of = version[1:]
            if version.startswith("==") and build is None:
                version = version[2:]
            elif not any(c in rest_of for c in "=,|"):
                version = rest_of + "*" if build is None and not rest_of.endswith("*") else rest_of
    version = brackets.get("version", version)
    build = brackets.get("build", build)
    if version is not None:
        parse_version_spec(version)  # refuse a bad spec now, not at the first match
    return MatchSpec(name, version or None, build or None, brackets.get("build_number"))

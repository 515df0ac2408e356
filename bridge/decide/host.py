"""This machine: what it can run, for the host-bound features of the policy.

``x86_64 :: level`` comes from archspec (the CPU's generic microarchitecture);
``nvidia :: cuda_version_lower_bound`` from the CUDA version the NVIDIA driver
reports (``nvidia-smi``). Without a driver no CUDA version is supported.

>>> host = Host(x86_64_level=3, cuda_version=None)
>>> host.supports(Property.from_str("x86_64 :: level :: v2"))
True
>>> host.supports(Property.from_str("x86_64 :: level :: v4"))
False
>>> host.supports(Property.from_str("nvidia :: cuda_version_lower_bound :: 12.0"))
False
>>> host.supports(Property.from_str("blas_lapack :: provider :: mkl")) is None
True
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec
from vbridge.model import Property

if TYPE_CHECKING:
    # Imported where a CUDA version is read or compared (nvidia-smi found, a CUDA
    # property held): shutil, subprocess and packaging.version are ~15 M instructions
    # a scan with an x86-64 level property need not pay.
    from packaging.version import Version

__all__ = ["Host"]

_CUDA_VERSION = re.compile(r"CUDA Version:\s*(\d+\.\d+)")


class Host(msgspec.Struct, frozen=True):
    """What this machine offers. ``None`` means: not this kind of machine / no driver."""

    x86_64_level: int | None
    cuda_version: Version | None

    @classmethod
    def detect(cls) -> Host:
        return cls(_x86_64_level(), _cuda_version())

    def describe(self, feature: str) -> str:
        """What the machine has for one host-bound feature, for messages."""
        if feature == "x86_64 :: level":
            return f"x86-64-v{self.x86_64_level}" if self.x86_64_level else "not an x86-64 CPU"
        if feature == "nvidia :: cuda_version_lower_bound":
            return (
                f"CUDA {self.cuda_version} (NVIDIA driver)"
                if self.cuda_version
                else "no NVIDIA driver (nvidia-smi not found or no GPU)"
            )
        return "unknown"

    def supports(self, prop: Property) -> bool | None:
        """Whether this machine can run ``prop``; ``None`` if the feature is not host-bound."""
        feature = f"{prop.namespace} :: {prop.feature}"
        if feature == "x86_64 :: level":
            m = re.fullmatch(r"v(\d)", prop.value)
            if m is None or self.x86_64_level is None:
                return False
            return int(m.group(1)) <= self.x86_64_level
        if feature == "nvidia :: cuda_version_lower_bound":
            if self.cuda_version is None:
                return False
            from packaging.version import InvalidVersion, Version

            try:
                return Version(prop.value) <= self.cuda_version
            except InvalidVersion:
                return False
        return None


def _x86_64_level() -> int | None:
    import archspec.cpu

    host = archspec.cpu.host()
    if str(host.family) != "x86_64":
        return None
    m = re.fullmatch(r"x86_64(?:_v(\d))?", str(host.generic))
    if m is None:
        return 1
    return int(m.group(1) or 1)


def _cuda_version() -> Version | None:
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _CUDA_VERSION.search(out)
    if m is None:
        return None
    from packaging.version import Version

    return Version(m.group(1))

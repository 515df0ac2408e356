#!/bin/bash
# post-link.sh: keep this package's wheel-variant metadata (PEP 825) current.
#
# conda, mamba and rattler/pixi (when link scripts are enabled) run this after linking
# the package, with PREFIX, PKG_NAME, PKG_VERSION and PKG_BUILDNUM set.
# `vbridge conda-post-link` writes variant metadata into the package's .dist-info from
# its conda record, or, under conda and mamba (which run post-link scripts before they
# write the records), from the extracted package in the package cache.
#
# conda-build: save this file as post-link.sh next to meta.yaml. Other builders: install
# it from the build script as $PREFIX/bin/.<package name>-post-link.sh.
#
# A link script must not print and must not break the install: vbridge writes what the
# user should read to $PREFIX/.messages.txt (the installer shows it), exits 0, and this
# script does nothing where vbridge is not installed. To make a failure abort the
# install instead (conda then rolls it back), drop `|| true` and add `--strict`.
if command -v vbridge >/dev/null 2>&1; then
    vbridge conda-post-link || true
fi
exit 0

#!/bin/bash
# pre-unlink.sh: remove the wheel-variant metadata vbridge wrote into this package's
# .dist-info before the package is uninstalled, so nothing is left behind.
#
# The companion of post-link.sh (`vbridge conda-post-link --print-template`): conda and
# mamba run post-link scripts before they record the package, so the files vbridge adds
# then cannot be registered with the installer yet; this script removes them (and puts
# RECORD back as it was) whatever the installer knows. conda, mamba and rattler/pixi run
# it before unlinking the package, with PREFIX, PKG_NAME, PKG_VERSION and PKG_BUILDNUM set.
#
# conda-build: save this file as pre-unlink.sh next to meta.yaml. Other builders: install
# it from the build script as $PREFIX/bin/.<package name>-pre-unlink.sh.
#
# Like the post-link script it prints nothing, never fails the transaction, and does
# nothing where vbridge is not installed.
if command -v vbridge >/dev/null 2>&1; then
    vbridge conda-pre-unlink || true
fi
exit 0

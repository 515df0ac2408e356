"""Integrations: how each tool meets vbridge. The pip gate, the apt hook, the Spack
extension, the variant provider plugins and ``variants.toml``, and conda (plugin, link
scripts, transaction, health check)."""

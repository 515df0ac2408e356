"""Destinations: where what the scan found is written. The dist-info files (RECORD rows,
``variant.json``, the SBOM), the owner's own record (conda-meta), the ledger that lets
``clean`` undo all of it, the lock, and the reports (table, JSON)."""

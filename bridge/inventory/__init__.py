"""The inventory: environments found on a machine (discover), scanned in batches (batch)
into one SQLite database (database)."""

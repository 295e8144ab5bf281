"""The core: one vocabulary for org, access, apps, records and workflow; no wire names."""

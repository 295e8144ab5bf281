"""Form records (form instances): validation, storage, search, operation log."""

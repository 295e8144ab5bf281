"""Bundles: an organisation (corp, directory, credentials, apps, forms) as one YAML/JSON file."""

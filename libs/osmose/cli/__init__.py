"""The `osmose` command line."""

"""Configuration tests (a package, so their conftest is imported by its own name)."""

"""Test support helpers shared by the test suite (not shipped with the package)."""

"""Checkout runs: load the plugin even when the package is not installed.

The entry point has the same name as this module path, so an installed plugin is not
registered twice.
"""

pytest_plugins = ["pytest_aiconformance.plugin"]

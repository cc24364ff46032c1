"""The requirement checks: one file per requirement id, ``test_<id>.py``, run by pytest.

Each file imports ``pytest_aiconformance.kit`` only (a test enforces it).
"""

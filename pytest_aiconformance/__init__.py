"""pytest-aiconformance: Kubernetes AI Conformance checks as a pytest plugin."""

__version__ = "0.1.0"

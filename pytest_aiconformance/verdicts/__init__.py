"""Verdicts: the requirement catalog, the results model, outcomes, evidence and the rules that
turn check results into a verdict per requirement.

Imports no other layer of the suite: reports, the run and the checks build on it.
"""

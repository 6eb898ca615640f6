"""Evaluation: how well the rule packs detect deterioration, on labelled simulated cohorts.

``evaluation.cohorts`` stores a simulated cohort through the real ingest code and scores rule
sets (the shipped packs, baselines, oracles) with the rules' harness; ``evaluation.report``
prints the tables; ``evaluation.cohort_cache`` keeps stored cohorts on disk between runs. The
``homecare evaluate`` command wires them (docs/evaluation.md).
"""

"""Helpers shared by Stratum's test suites."""

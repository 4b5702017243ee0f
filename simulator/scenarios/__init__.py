"""Stress scenarios: TOML files in, price paths out."""

from simulator.scenarios.paths import OracleSpec, PricePaths

__all__ = ["OracleSpec", "PricePaths"]

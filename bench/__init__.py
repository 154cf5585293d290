"""Stratum's benchmark suite: `bench.generate` makes the data, `bench.run` measures (README.md)."""

"""The analysis layer: rank agreement, the benchmarks behind ``nas bench`` and the HTML report."""

"""The search layer: experiment configs, strategies, runners, the search loop, the result store and its lease."""

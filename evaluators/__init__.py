"""Evaluators: tabular benchmarks, training, supernets and predictors (registered with `nas`)."""

"""The core layer: architectures and spaces, evaluation values and contracts, Pareto fronts, the registries."""

"""Concrete search spaces, registered with `nas` through the ``nas.spaces`` entry points."""

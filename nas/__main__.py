"""``python -m nas`` runs the command line."""

from nas.cli import main

main()

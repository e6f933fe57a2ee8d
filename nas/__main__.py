"""``python -m nas`` runs the command line."""

from nas.cli.app import main

main()

"""``python -m vadetective`` runs the command line."""

from vadetective.agent.cli import main

main()

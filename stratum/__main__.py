"""`python -m stratum` runs the command line."""

from stratum.cli import main

main()

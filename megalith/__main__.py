"""python -m megalith -> the command line."""

from megalith.cli import main

main()

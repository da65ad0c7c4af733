"""`python -m detection.proposals`: the `detpipe proposals` command (detection.cli.proposals) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.proposals's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.proposals import main

    sys.exit(main(prog="python -m detection.proposals"))

"""`python -m detection.visualize`: the `detpipe visualize` command (detection.cli.visualize) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.visualize's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.visualize import main

    sys.exit(main(prog="python -m detection.visualize"))

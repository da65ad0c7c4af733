"""`python -m detection.predict`: the `detpipe predict` command (detection.cli.predict) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.predict's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.predict import main

    sys.exit(main(prog="python -m detection.predict"))

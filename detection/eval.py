"""`python -m detection.eval`: the `detpipe eval` command (detection.cli.eval) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.eval's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.eval import main

    sys.exit(main(prog="python -m detection.eval"))

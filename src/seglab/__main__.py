"""``python -m seglab <train|eval|predict|export|report> [overrides]``; ``python -m seglab --help`` lists them."""

import sys

from seglab.commands.entry import dispatch

if __name__ == "__main__":
    dispatch(sys.argv[1:])

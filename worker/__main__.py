"""`python -m worker`: the same as `meet-telephony worker`."""

import sys

from telephony.cli import main

sys.exit(main(["worker", *sys.argv[1:]]))

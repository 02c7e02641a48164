"""`python -m worker`: the same as `meet-telephony worker`."""

import sys

from telephony.cli import run_as_process

run_as_process(["worker", *sys.argv[1:]])

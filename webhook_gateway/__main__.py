"""`python -m webhook_gateway`: the same as `meet-telephony gateway`."""

import sys

from telephony.cli import main

sys.exit(main(["gateway", *sys.argv[1:]]))

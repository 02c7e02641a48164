"""`python -m webhook_gateway`: the same as `meet-telephony gateway`."""

from webhook_gateway.server import main

main()

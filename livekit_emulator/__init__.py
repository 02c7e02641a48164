"""A LiveKit server + SIP emulator for dev and tests: the real Twirp protocol and auth, rooms,
signed webhooks, simulated phone calls and fault injection. See README.md."""

from .calls import CallResult
from .emulator import LiveKitEmulator
from .faults import Faults

__all__ = ["CallResult", "Faults", "LiveKitEmulator"]

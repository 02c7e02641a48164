"""`python -m livekit_emulator`: run the emulator standalone until interrupted (dev only).

No secret is ever taken from the command line, which every local user can read (`ps`): the API
secret comes from the environment or from a file only its owner can read."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .emulator import LiveKitEmulator

PROG = "python -m livekit_emulator"
# livekit-server --dev's well-known pair, used when nothing else is given.
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"  # noqa: S105 - public by design, dev only
API_KEY_ENV = "LIVEKIT_API_KEY"
API_SECRET_ENV = "LIVEKIT_API_SECRET"  # noqa: S105 - a variable name
EXTRA_KEYS_ENV = "LIVEKIT_EMULATOR_EXTRA_KEYS"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

EXIT_OK = 0
EXIT_CANNOT_LISTEN = 1
EXIT_USAGE = 2


def epilog(prog: str = PROG) -> str:
    """The help's end: where secrets come from, examples for `prog`, the ready line, exit codes."""
    return f"""\
secrets (never on the command line: `ps` shows it to every local user):
  {API_SECRET_ENV}           the API key's secret
  --api-secret-file PATH       or the secret read from PATH (chmod 600)
  {EXTRA_KEYS_ENV}  more accepted pairs: KEY:SECRET, comma-separated
  --extra-keys-file PATH       or one KEY:SECRET a line in PATH (chmod 600)
  Nothing given: the well-known dev pair {DEV_API_KEY} / {DEV_API_SECRET}.

examples:
  {prog}                      # 127.0.0.1:7880, the dev pair
  {prog} --port 0 --json      # a free port, a JSON ready line
  {prog} --latency 0.2 --log-level DEBUG   # a slow server, every call logged
  {API_KEY_ENV}=mykey {API_SECRET_ENV}=... {prog} \\
      --trunk +33123456789
  {prog} --api-key mykey --api-secret-file ./lk-secret \\
      --webhook-url http://127.0.0.1:8080/livekit/webhook \\
      --webhook-url http://127.0.0.1:8000/livekit/webhook

ready line (stdout, once listening):
  LiveKit emulator ready on http://HOST:PORT
  with --json: {{"url": "http://HOST:PORT", "trunks": [{{"id": "ST_...", "number": "+33..."}}]}}
errors: one line on stderr; with --json, {{"error": CODE, "message": ...}} on stdout

exit codes: {EXIT_OK} stopped by SIGINT/SIGTERM, {EXIT_CANNOT_LISTEN} cannot listen on HOST:PORT, \
{EXIT_USAGE} bad option or credentials
"""


class UsageError(Exception):
    """A bad option or setting: one line for the user, exit code 2. Never holds a secret."""


def print_error(prog: str, as_json: bool, code: str, message: str) -> None:
    """One line on stderr; with --json, one JSON object on stdout (where scripts read)."""
    if as_json:
        print(json.dumps({"error": code, "message": message}), flush=True)
    else:
        print(f"{prog}: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, json_errors: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_errors = json_errors

    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage block.
        print_error(self.prog, self.json_errors, "usage", f"{message} (see --help)")
        self.exit(EXIT_USAGE)


# Options that used to take a secret, and what replaced them.
REMOVED_OPTIONS = {
    "--api-secret": f"{API_SECRET_ENV} or --api-secret-file",
    "--extra-key": f"{EXTRA_KEYS_ENV} or --extra-keys-file",
}


class _RemovedSecretOption(argparse.Action):
    """Refuse an option that took a secret, without echoing the value."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kw: object) -> None:
        option = self.option_strings[0]
        parser.error(f"{option} is gone (`ps` shows command lines): use {REMOVED_OPTIONS[option]}")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {port}")
    return port


def _seconds(minimum: float, strict: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            bound = f"more than {minimum:g}" if strict else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound} seconds, not {text}")
        return value

    return parse


def _http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {text!r}")
    return text


def _number(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty phone number")
    return text


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"one of {', '.join(LOG_LEVELS)}, not {text!r}")
    return level


def build_parser(prog: str = PROG, *, json_errors: bool = False) -> argparse.ArgumentParser:
    """The options; `json_errors`: usage errors as JSON on stdout (`--json` was given)."""
    parser = _Parser(
        prog=prog,
        json_errors=json_errors,
        description="A LiveKit server + SIP stand-in for dev and tests: the real Twirp API and\n"
        "auth, rooms, signed webhooks, simulated phone calls. Dev only: its /_emulator/\n"
        "routes need no authentication.",
        epilog=epilog(prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # `--api-secret X` must not pass for an abbreviation of `--api-secret-file X`.
        allow_abbrev=False,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=7880,
        help="port to listen on; 0 picks a free one, shown on the ready line "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"API key that tokens and webhooks are signed with (default: {API_KEY_ENV}, "
        f"else {DEV_API_KEY}); its secret comes from {API_SECRET_ENV} or --api-secret-file",
    )
    parser.add_argument(
        "--api-secret-file",
        metavar="PATH",
        help=f"read the API secret from PATH (chmod 600) instead of {API_SECRET_ENV}",
    )
    parser.add_argument(
        "--extra-keys-file",
        metavar="PATH",
        help="more accepted key pairs, KEY:SECRET one a line (chmod 600), "
        f"added to those of {EXTRA_KEYS_ENV}",
    )
    parser.add_argument(
        "--webhook-url",
        action="append",
        default=[],
        type=_http_url,
        metavar="URL",
        help="send every webhook to URL (repeatable: each URL gets every event, in order)",
    )
    parser.add_argument(
        "--empty-timeout",
        type=_seconds(0, strict=True),
        default=300.0,
        metavar="SECONDS",
        help="how long a room nobody is in stays open (default: %(default)g)",
    )
    parser.add_argument(
        "--trunk",
        action="append",
        default=[],
        type=_number,
        metavar="NUMBER",
        help="create an inbound trunk owning the phone number NUMBER at start (repeatable)",
    )
    parser.add_argument(
        "--latency",
        type=_seconds(0, strict=False),
        default=0.0,
        metavar="SECONDS",
        help="delay every API call by SECONDS, to emulate a slow server (default: 0)",
    )
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default="INFO",
        metavar="LEVEL",
        help=f"{', '.join(LOG_LEVELS)}; INFO logs one line per API call (default: INFO)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print the ready line as one JSON object: {"url", "trunks": [{"id", "number"}]}; '
        'errors too: {"error", "message"} on stdout',
    )
    for removed in REMOVED_OPTIONS:
        parser.add_argument(removed, nargs="?", action=_RemovedSecretOption, help=argparse.SUPPRESS)
    return parser


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str = field(repr=False)
    extra_keys: dict[str, str] = field(repr=False)
    # Where the secret came from, for the log line (never the secret itself).
    source: str


def _read_private_file(path: str, option: str) -> str:
    """The text of a file that only its owner may read or write."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UsageError(f"{option} {path}: not a regular file")
        if mode & 0o077:
            raise UsageError(
                f"{option} {path}: group or others may access it (mode {mode & 0o777:04o}); "
                f"run chmod 600 {path}"
            )
        try:
            return file.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{option} {path}: unreadable ({type(exc).__name__})") from None


def _parse_pairs(entries: Sequence[str], source: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, entry in enumerate(entries, start=1):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        key, sep, secret = (part.strip() for part in entry.partition(":"))
        if not sep or not key or not secret:
            # Never echo the entry: it may hold a secret.
            raise UsageError(f"{source}, entry {number}: expected KEY:SECRET")
        pairs[key] = secret
    return pairs


def resolve_credentials(args: argparse.Namespace, environ: Mapping[str, str]) -> Credentials:
    """The key pair (`--api-key` / LIVEKIT_API_KEY, then `--api-secret-file` /
    LIVEKIT_API_SECRET; nothing: the dev pair) and the extra pairs (env, then file)."""
    key = args.api_key or environ.get(API_KEY_ENV) or ""
    if args.api_secret_file:
        secret = _read_private_file(args.api_secret_file, "--api-secret-file").strip()
        if not secret:
            raise UsageError(f"--api-secret-file {args.api_secret_file}: empty")
        source = f"--api-secret-file {args.api_secret_file}"
    elif environ.get(API_SECRET_ENV):
        secret, source = environ[API_SECRET_ENV], API_SECRET_ENV
    elif key in ("", DEV_API_KEY):
        secret, source = DEV_API_SECRET, "the well-known dev pair (no secret given)"
    else:
        raise UsageError(
            f"API key {key} has no secret: set {API_SECRET_ENV} or pass --api-secret-file"
        )
    key = key or DEV_API_KEY

    text = environ.get(EXTRA_KEYS_ENV, "")
    extra = _parse_pairs(text.replace(",", "\n").splitlines(), EXTRA_KEYS_ENV)
    if args.extra_keys_file:
        lines = _read_private_file(args.extra_keys_file, "--extra-keys-file").splitlines()
        extra.update(_parse_pairs(lines, f"--extra-keys-file {args.extra_keys_file}"))
    if key in extra:
        # It would replace the main pair's secret, which also signs the webhooks.
        raise UsageError(f"extra key pairs: {key} is already the API key")
    return Credentials(key, secret, extra, source)


def ready_line(url: str, trunks: Sequence[tuple[str, str]], as_json: bool) -> str:
    if as_json:
        listed = [{"id": trunk_id, "number": number} for trunk_id, number in trunks]
        return json.dumps({"url": url, "trunks": listed})
    return f"LiveKit emulator ready on {url}"


async def serve(args: argparse.Namespace, credentials: Credentials, prog: str = PROG) -> int:
    log = logging.getLogger("livekit_emulator")
    emu = LiveKitEmulator(
        api_key=credentials.api_key,
        api_secret=credentials.api_secret,
        webhook_urls=args.webhook_url,
        empty_timeout=args.empty_timeout,
        extra_keys=credentials.extra_keys,
        latency=args.latency,
    )
    log.info(
        "API key %s, secret from %s%s",
        credentials.api_key,
        credentials.source,
        f"; extra keys: {', '.join(sorted(credentials.extra_keys))}"
        if credentials.extra_keys
        else "",
    )
    try:
        await emu.start(host=args.host, port=args.port)
    except OSError as exc:
        message = f"cannot listen on {args.host}:{args.port}: {exc.strerror}"
        print_error(prog, args.json, "cannot_listen", message)
        await emu.stop()
        return EXIT_CANNOT_LISTEN
    try:
        # Before the ready line: a parent may signal as soon as it reads it.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        trunks = []
        for number in args.trunk:
            trunk_id = await emu.create_inbound_trunk(numbers=[number], name=f"trunk {number}")
            log.info("inbound trunk %s owns %s", trunk_id, number)
            trunks.append((trunk_id, number))
        # The line scripts wait for; flushed so a parent process reading stdout sees it at once.
        print(ready_line(emu.url, trunks, args.json), flush=True)
        await stop.wait()
    finally:
        await emu.stop()
    return EXIT_OK


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    prog: str = PROG,
) -> int:
    """Run until SIGINT/SIGTERM; the exit code (2: bad usage). `environ` (default `os.environ`)
    lets an in-process caller hand over LIVEKIT_API_KEY / LIVEKIT_API_SECRET; `prog` is the
    name messages and the help give it (`meet-telephony emulator`)."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    # Before parsing succeeds, the flag itself says whether errors are JSON.
    parser = build_parser(prog, json_errors="--json" in tokens)
    try:
        args = parser.parse_args(tokens)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        credentials = resolve_credentials(args, os.environ if environ is None else environ)
    except UsageError as exc:
        print_error(prog, args.json, "usage", str(exc))
        return EXIT_USAGE
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(serve(args, credentials, prog))


if __name__ == "__main__":
    sys.exit(main())

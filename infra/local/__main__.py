"""`make run`: serve trueup's API on http://127.0.0.1:3000 from its real Lambda handlers.

Environment (or a git-ignored `.env` in the checkout; the environment wins):
  TRUEUP_PORT       the API's port (default 3000)
  TRUEUP_DATA_DIR   where the state lives (default .data/ in the checkout); it survives restarts
  TRUEUP_DEMO=1     use the demo upstreams even when credentials are set
  TRUEUP_DEMO_CLIENTS=2000  a demo that size (generated clients beyond the story's 40), with
                    TRUEUP_DEMO_DEVICES devices each (default 10): the page at a large MSP's size
  TRUEUP_DUPLICATE_EVENTS=1  every event delivered twice, as EventBridge may (at least once)
  TRUEUP_AUTH=oidc  sign-in on, through a local OpenID provider (default: off, everyone is an admin);
                    its people and script clients are in <data dir>/stack.json
  PAX8_CLIENT_ID, PAX8_CLIENT_SECRET, NINJAONE_CLIENT_ID, NINJAONE_CLIENT_SECRET
                    all four: sync the real vendors (read-only); none: demo mode
  PAX8_API_URL, PAX8_TOKEN_URL, NINJAONE_URL   vendor endpoints (defaults: the template's)

The monthly snapshot schedule does not fire locally; fire it with
  curl -X POST http://127.0.0.1:3000/_local/schedules/SnapshotFunction/Monthly
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from infra.local.credentials import local_environment
from infra.local.stack import REPO_ROOT, LocalStack, StackConfig, StackError
from infra.local.template import TemplateError
from trueup.errors import InvalidInput


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--demo", action="store_true", help="use the demo upstreams even if credentials are set"
    )
    parser.add_argument("--port", type=int, help="overrides TRUEUP_PORT")
    parser.add_argument("--data-dir", type=Path, help="overrides TRUEUP_DATA_DIR")
    parser.add_argument(
        "--quiet", action="store_true", help="hide the functions' own log lines (requests are still logged)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.quiet:
        logging.getLogger("infra.local.functions").setLevel(logging.WARNING)

    try:
        config = StackConfig.from_environment(
            local_environment(REPO_ROOT), force_demo=args.demo, port=args.port, data_dir=args.data_dir
        )
    except InvalidInput as exc:
        print(f"trueup: {exc}", file=sys.stderr)
        return 2

    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        raise KeyboardInterrupt  # also cuts a start-up short (e.g. a long first sync)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stack: LocalStack | None = None
    try:
        stack = LocalStack(config)
        stack.start()
        while not stopping.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    except (StackError, TemplateError, InvalidInput) as exc:
        print(f"trueup: {exc}", file=sys.stderr)
        return 1
    finally:
        # Ctrl-C twice must not leave moto's thread or the workers behind half-stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            print("stopping trueup...", file=sys.stderr, flush=True)
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

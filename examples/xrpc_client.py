"""Book a meeting through Huddle's XRPC API with nothing but the `atproto` package and httpx.

    python examples/xrpc_client.py --pds http://localhost:2583 --huddle http://127.0.0.1:8000 \
        --handle guest.test --password=... --host host.test [--duration 30]

Logs in to the guest's PDS, asks it for service-auth tokens addressed to Huddle, lists the host's
offers, asks for a meeting, finalizes it and reads the booking back. Prints one JSON line per step.
"""

from __future__ import annotations

import argparse
import json
import sys

import httpx
from atproto import Client


def service_token(pds: Client, aud: str, lxm: str) -> dict[str, str]:
    token = pds.com.atproto.server.get_service_auth({"aud": aud, "lxm": lxm}).token
    return {"Authorization": f"Bearer {token}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pds", required=True)
    parser.add_argument("--huddle", required=True)
    parser.add_argument("--handle", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--host", required=True, help="the host's handle or DID")
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--read-only", metavar="BOOKING", help="only try to read this booking")
    args = parser.parse_args()

    pds = Client(base_url=args.pds)
    # A PDS without a Bluesky AppView refuses app.bsky.* calls, so skip the profile fetch.
    pds.login(args.handle, args.password, fetch_bsky_profile=False)
    huddle = httpx.Client(base_url=args.huddle, timeout=60)
    aud = huddle.get("/.well-known/did.json").json()["id"]

    def call(nsid: str, body: dict | None = None, **params: str) -> httpx.Response:
        headers = service_token(pds, aud, nsid)
        if body is None:
            return huddle.get(f"/xrpc/{nsid}", params=params, headers=headers)
        return huddle.post(f"/xrpc/{nsid}", json=body, headers=headers)

    if args.read_only:
        resp = call("com.huddle.getBooking", booking=args.read_only)
        print(json.dumps({"step": "getBooking", "status": resp.status_code, "body": resp.json()}))
        return 0 if resp.status_code == 200 else 3

    offers = huddle.get("/xrpc/com.huddle.listOffers", params={"host": args.host}).json()["offers"]
    print(json.dumps({"step": "listOffers", "offers": [o["uri"] for o in offers]}))
    held = call("com.huddle.match", {"host": args.host, "durationMinutes": args.duration}).json()
    print(json.dumps({"step": "match", "booking": held}))
    if held.get("state") != "held":
        return 2
    done = call("com.huddle.finalize", {"booking": held["id"]}).json()
    print(json.dumps({"step": "finalize", "booking": done}))
    read = call("com.huddle.getBooking", booking=held["id"]).json()
    print(json.dumps({"step": "getBooking", "booking": read}))
    return 0 if read.get("state") == "confirmed" else 2


if __name__ == "__main__":
    sys.exit(main())

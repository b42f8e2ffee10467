"""LiveKit's own verifiers (the livekit-api package), for the tests.

  livekit_check.py token KEY SECRET TOKEN      -> the claims as LiveKit reads them
  livekit_check.py webhook KEY SECRET AUTH     -> the event LiveKit's receiver
                                                  accepts (body on stdin)

Exits non-zero with the verifier's complaint when it refuses.
"""
import dataclasses
import json
import sys

from livekit import api


def main() -> None:
    kind, key, secret, value = sys.argv[1:5]
    verifier = api.TokenVerifier(key, secret)
    if kind == "token":
        claims = verifier.verify(value)
        print(json.dumps({
            "identity": claims.identity,
            "name": claims.name,
            "metadata": claims.metadata,
            "video": dataclasses.asdict(claims.video),
        }))
    elif kind == "webhook":
        body = sys.stdin.read()
        event = api.WebhookReceiver(verifier).receive(body, value)
        print(json.dumps({"event": event.event, "room": event.room.name}))
    else:
        raise SystemExit(f"unknown check {kind}")


if __name__ == "__main__":
    main()

"""Verifies a vcare webhook delivery with the Standard Webhooks reference
library (standardwebhooks, PyPI), not vcare's signer. Reads
{"secret", "headers", "body"} on stdin; prints {"verified": true} and exits
0, or names why not and exits 1.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook


def main():
    given = json.load(sys.stdin)
    try:
        Webhook(given["secret"]).verify(given["body"], given["headers"])
    except Exception as e:  # noqa: BLE001 - the message is the answer
        print(json.dumps({"verified": False, "why": str(e)}))
        sys.exit(1)
    print(json.dumps({"verified": True}))


if __name__ == "__main__":
    main()

"""After `make test`: search every log line the suite's processes wrote
(VCARE_TEST_LOG_DIR, one JSON-lines file per test process; see
`capture_logs` in tests/src/lib.rs), and with them every 4xx/5xx body the
tests received through the gateway (`TestStack::send` logs them as "error
answer"), for the personal data and secrets the tests use. A hit fails the
run, naming the file, the line number and what was found (not the line).
Too few lines fails it too: the capture must have worked for the scan to
mean anything.

Usage: python3 scan-test-logs.py DIR
"""

import pathlib
import re
import sys

# What the tests put in: patients' and staff's numbers, addresses and names,
# message texts, provider and Jitsi secrets, and tokens of any kind (a JWT's
# header.payload). Each entry: (what, pattern).
FORBIDDEN = [
    ("a patient's phone number", re.compile(r"\+?93 ?70\d{7}|701234567|701112233")),
    ("an e-mail address of a person", re.compile(r"zahra[.@]|amini@|karimi@", re.I)),
    ("a person's name", re.compile(r"Zahra|Karimi|Nurse Laila|Omid|Dr\. Amini")),
    ("message text", re.compile(r"Tuesday 10:00|Your consultation is at|secretroomname")),
    ("a provider secret", re.compile(r"gw-key|tw-token|sg-key|vn-secret|vn-sig-secret")),
    ("a Jitsi secret", re.compile(r"vcare-local-jitsi-(app|webhook)-secret")),
    ("a push token", re.compile(r"tok-(live|dead|apns)")),
    ("a JWT", re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")),
]
MIN_LINES = 200
# Lines that must be there if the functions' logs and the error bodies were captured.
EXPECTED = ['"message":"sent"', '"message":"vcare-local is serving"', '"message":"error answer"']


def main(directory):
    files = sorted(pathlib.Path(directory).glob("*.jsonl"))
    lines = 0
    hits = []
    seen = set()
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                lines += 1
                seen.update(e for e in EXPECTED if e in line)
                for what, pattern in FORBIDDEN:
                    if pattern.search(line):
                        hits.append(f"{path.name}:{number}: {what}")
    print(f"log scan: {lines} lines from {len(files)} test processes")
    if lines < MIN_LINES or len(seen) < len(EXPECTED):
        print(f"log scan: fewer than {MIN_LINES} lines, or no send logged; the capture did not work", file=sys.stderr)
        return 1
    for hit in hits[:50]:
        print(f"log scan: {hit}", file=sys.stderr)
    if hits:
        print(f"log scan: {len(hits)} lines carry personal data or secrets", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

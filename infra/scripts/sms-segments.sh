#!/usr/bin/env bash
# Twilio's own SMS segment calculator (npm sms-segments-calculator, from
# TwilioDevEd/message-segment-calculator), installed into ./.node-tools on
# first use: the reference tests/tests/segments.rs checks vcare's counter
# against. Reads one JSON string per line on stdin; prints one JSON object
# per line: {"encoding", "segments", "characters"}.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/.node-tools"
version="1.3.0"
if [[ ! -f "$tools/node_modules/sms-segments-calculator/package.json" ]] ||
   ! grep -q "\"version\": \"$version\"" "$tools/node_modules/sms-segments-calculator/package.json"; then
  echo "vcare: installing sms-segments-calculator@$version into .node-tools (first run only)" >&2
  npm install --prefix "$tools" --no-audit --no-fund --silent "sms-segments-calculator@$version" >&2
fi
NODE_PATH="$tools/node_modules" node -e '
const { SegmentedMessage } = require("sms-segments-calculator");
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter((l) => l.length > 0);
for (const line of lines) {
  const m = new SegmentedMessage(JSON.parse(line));
  console.log(JSON.stringify({ encoding: m.encodingName, segments: m.segmentsCount, characters: m.numberOfCharacters }));
}'

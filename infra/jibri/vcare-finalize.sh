#!/usr/bin/env bash
# Jibri's finalize script for vcare (jibri.conf: `finalize-script =
# "/opt/vcare/vcare-finalize.sh"`). Jibri runs it with the recording's
# directory when a recording stops: it asks vcare where to put the MP4,
# PUTs it there with the headers vcare names (SSE-KMS with the recordings
# key; the size and type are in the signature), and says it is complete.
# A recording larger than vcare's part size goes in parts: each part is
# cut from the file, PUT to a URL vcare presigns for it just then, and
# complete names every part's ETag.
# The file is removed from the Jibri host only once vcare has checked it;
# on any failure it stays, and the script exits non-zero.
#
# Needs bash, coreutils, curl (7.76 or later) and jq. Settings, from Jibri's
# environment:
#   VCARE_API           the API's base URL, like https://api.example.org
#   VCARE_JIBRI_SECRET  the Jitsi shared secret (X-Jitsi-Shared-Secret)
set -euo pipefail

dir="${1:?usage: vcare-finalize.sh <recording directory>}"
: "${VCARE_API:?VCARE_API is not set}" "${VCARE_JIBRI_SECRET:?VCARE_JIBRI_SECRET is not set}"

file=$(find "$dir" -maxdepth 1 -name '*.mp4' -print -quit)
[[ -n "$file" ]] || { echo "vcare-finalize: no .mp4 in $dir" >&2; exit 1; }
# Jibri's metadata.json names the meeting; its last path segment is the room.
room=$(jq -r '.meeting_url' "$dir/metadata.json" | sed -e 's|[?#].*||' -e 's|.*/||')
size=$(stat -c %s "$file")

# The secret goes to curl on a file descriptor, never on its command line.
vcare() {
  curl -sS --fail-with-body --retry 3 --retry-all-errors \
    -H @<(printf 'X-Jitsi-Shared-Secret: %s\n' "$VCARE_JIBRI_SECRET") "$@"
}

body=$(jq -cn --arg room "$room" --argjson size "$size" '{roomName: $room, contentType: "video/mp4", sizeBytes: $size}')
upload=$(vcare -H 'content-type: application/json' --data "$body" "$VCARE_API/v1/virtual-care/jibri/recordings")

id=$(jq -r '.recordingId' <<<"$upload")

# PUTs $2 to the presigned URL in $1 (JSON with uploadUrl and
# uploadHeaders); prints the ETag S3 answered with.
put() {
  local headers=() header answer
  while IFS= read -r header; do
    headers+=(-H "$header")
  done < <(jq -r '.uploadHeaders | to_entries[] | "\(.key): \(.value)"' <<<"$1")
  answer=$(curl -sS --fail-with-body --retry 3 -X PUT "${headers[@]}" --upload-file "$2" -D - -o /dev/null \
    "$(jq -r '.uploadUrl' <<<"$1")")
  tr -d '\r' <<<"$answer" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p'
}

if jq -e '.parts' <<<"$upload" >/dev/null; then
  part_file=$(mktemp "$dir/.vcare-part.XXXXXX")
  trap 'rm -f -- "$part_file"' EXIT
  done_parts='[]'
  while read -r number offset length; do
    dd if="$file" of="$part_file" bs=1M iflag=skip_bytes,count_bytes skip="$offset" count="$length" status=none
    part=$(vcare -X POST "$VCARE_API/v1/virtual-care/jibri/recordings/$id/parts/$number")
    etag=$(put "$part" "$part_file")
    [[ -n "$etag" ]] || { echo "vcare-finalize: part $number got no ETag" >&2; exit 1; }
    done_parts=$(jq -c --argjson n "$number" --arg etag "$etag" '. + [{partNumber: $n, etag: $etag}]' <<<"$done_parts")
  done < <(jq -r '.parts[] | "\(.partNumber) \(.offset) \(.sizeBytes)"' <<<"$upload")
  vcare -H 'content-type: application/json' --data "{\"parts\": $done_parts}" \
    "$VCARE_API/v1/virtual-care/jibri/recordings/$id/complete" >/dev/null
else
  put "$upload" "$file" >/dev/null
  vcare -X POST "$VCARE_API/v1/virtual-care/jibri/recordings/$id/complete" >/dev/null
fi
rm -f -- "$file"
echo "vcare-finalize: recording $id uploaded and checked"

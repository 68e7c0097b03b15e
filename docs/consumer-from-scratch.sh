#!/usr/bin/env bash
# A Neuron Hub consumer written from scratch with curl, openssl (3.x) and coreutils: it pulls
# the newest partition of a feed, checking every answer's RFC 9421 signature and
# Content-Digest and the partition's signed manifest. docs/consumers.md walks through it;
# the hub's tests run it against a real hub.
#
#   HUB=https://127.0.0.1:8700     the hub
#   HUB_CA=hub.crt                 the hub's TLS certificate, from its operator (optional: without
#                                  it curl trusts the system's CAs)
#   KEY_ID=district-0a1b2c3d       your key id, as the hub registered it
#   KEY=district.pem               your Ed25519 private key (PEM)
#   HUB_X=...                      the hub's public key ("x" of its JWK), from the hub's letter:
#                                  pinned, never taken from the hub on first use
#   FEED=traffic.vehicle_flow_hourly
#   OUT=pulled                     where the partition and its manifest are written
set -euo pipefail
: "${HUB:?}" "${KEY_ID:?}" "${KEY:?}" "${HUB_X:?}" "${FEED:?}" "${OUT:=pulled}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"
fail() { echo "NOT VERIFIED: $*" >&2; exit 3; }
b64url_decode() { local s; s=$(tr '_-' '/+' <<<"$1"); while (( ${#s} % 4 )); do s="$s="; done; base64 -d <<<"$s"; }

# The hub's pinned key as a PEM (SubjectPublicKeyInfo = fixed 12-byte prefix + the 32 raw bytes).
{ printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'; b64url_decode "$HUB_X"; } > "$work/hub.der"
openssl pkey -pubin -inform DER -in "$work/hub.der" -out "$work/hub.pem"

# signed_get PATH QUERY: a signed GET; the verified body is left in $work/body, headers in $work/head.
signed_get() {
  local path=$1 query=$2 authority created nonce params sig
  authority=${HUB#*://}; authority=${authority%%/*}
  created=$(date +%s)
  nonce=$(openssl rand -base64 18 | tr '+/' '-_' | tr -d '=')
  params="(\"@method\" \"@authority\" \"@path\" \"@query\");created=$created;keyid=\"$KEY_ID\";alg=\"ed25519\";nonce=\"$nonce\""
  # The signature base (RFC 9421 §2.5): one line per component, no newline at the end.
  printf '"@method": GET\n"@authority": %s\n"@path": %s\n"@query": ?%s\n"@signature-params": %s' \
    "$authority" "$path" "$query" "$params" > "$work/request-base"
  sig=$(openssl pkeyutl -sign -inkey "$KEY" -rawin -in "$work/request-base" | base64 -w0)
  request_signature="neuron=:$sig:"
  curl -sS ${HUB_CA:+--cacert "$HUB_CA"} -o "$work/body" -D "$work/head" -H "Accept-Encoding: identity" \
    -H "Signature-Input: neuron=$params" -H "Signature: $request_signature" "$HUB$path${query:+?$query}"
  verify_response
}

header() { grep -i "^$1:" "$work/head" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# verify_response: the hub's signature (label hub) over the components its Signature-Input names.
verify_response() {
  local status input signature inner components line c created now
  status=$(head -1 "$work/head" | cut -d' ' -f2)
  input=$(header signature-input); signature=$(header signature)
  [[ $input == hub=\(* && $signature == hub=:*: ]] || fail "the answer is not signed by the hub"
  inner=${input#hub=(}; inner=${inner%%)*}
  for c in '"content-digest"' '"@status"' '"signature";req'; do
    [[ " $inner " == *" $c "* ]] || fail "the hub's signature does not cover $c"
  done
  [[ "$(header content-digest)" == "sha-256=:$(openssl dgst -sha256 -binary "$work/body" | base64 -w0):" ]] \
    || fail "the body does not match its Content-Digest"
  : > "$work/response-base"
  for c in $inner; do
    case $c in
      '"@status"') line="$status" ;;
      '"signature";req') line="$request_signature" ;;
      *) line=$(header "${c//\"/}") ;;
    esac
    printf '%s: %s\n' "$c" "$line" >> "$work/response-base"
  done
  printf '"@signature-params": %s' "${input#hub=}" >> "$work/response-base"
  created=$(sed -E 's/.*;created=([0-9]+).*/\1/' <<<"$input"); now=$(date +%s)
  (( created > now - 300 && created < now + 300 )) || fail "the hub's signature is not fresh"
  b64=${signature#hub=:}; base64 -d <<<"${b64%:}" > "$work/response-sig"
  openssl pkeyutl -verify -pubin -inkey "$work/hub.pem" -rawin -in "$work/response-base" \
    -sigfile "$work/response-sig" >/dev/null || fail "the hub's signature does not verify"
  [[ $status == 200 ]] || { echo "the hub refused ($status): $(cat "$work/body")" >&2; exit 4; }
}

# 1. The change log: which partition versions exist (the last one listed is the newest).
signed_get "/v1/feeds/$FEED/changes" ""
id=$(grep -o '"id":"[^"]*"' "$work/body" | tail -1 | cut -d'"' -f4)
[[ -n $id ]] || { echo "nothing published yet"; exit 0; }

# 2. The partition, and its manifest: a compact JWS (Ed25519) that must name these exact bytes.
signed_get "/v1/feeds/$FEED/partitions/$id" ""
token=$(header neuron-manifest)
IFS=. read -r jws_header jws_payload jws_signature <<<"$token"
printf '%s.%s' "$jws_header" "$jws_payload" > "$work/jws-input"
b64url_decode "$jws_signature" > "$work/jws-sig"
openssl pkeyutl -verify -pubin -inkey "$work/hub.pem" -rawin -in "$work/jws-input" -sigfile "$work/jws-sig" >/dev/null \
  || fail "the manifest's signature does not verify"
manifest=$(b64url_decode "$jws_payload")
sha=$(openssl dgst -sha256 -hex "$work/body" | awk '{print $NF}')
grep -q "\"sha256\":\"$sha\"" <<<"$manifest" || fail "the partition is not the one its manifest names"
grep -q "\"feed\":\"$FEED\"" <<<"$manifest" || fail "the manifest is for another feed"
cp "$work/body" "$OUT/$id.parquet"; printf '%s\n' "$token" > "$OUT/$id.jws"
echo "verified: $OUT/$id.parquet ($(wc -c < "$OUT/$id.parquet") bytes) matches its signed manifest"

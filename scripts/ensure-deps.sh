#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing
# (root + apt), or says clearly what is missing and how to get it.
# The list grows with the suite: each entry is "command:package".
set -euo pipefail

NEEDED=(
  "sox:sox"
  "espeak-ng:espeak-ng"
  "ffmpeg:ffmpeg"
  "ffprobe:ffmpeg"
  "pocketsphinx_continuous:pocketsphinx"
  "/usr/share/pocketsphinx/model/en-us/en-us.lm.bin:pocketsphinx-en-us"
  "chromium:chromium"
  "sipp:sip-tester"
  "/usr/share/sip-tester/g711a.pcap:sip-tester"
  # baresip-core ships the binary and every module the softphone tests load (the `baresip` metapackage only
  # depends on it and recommends GUI/video plugins).
  "baresip:baresip-core"
  "/usr/lib/baresip/modules/g711.so:baresip-core"
  "/usr/lib/baresip/modules/aufile.so:baresip-core"
  "/usr/lib/baresip/modules/aubridge.so:baresip-core"
  "/usr/lib/baresip/modules/sndfile.so:baresip-core"
  "/usr/lib/baresip/modules/account.so:baresip-core"
  "/usr/lib/baresip/modules/menu.so:baresip-core"
  "/usr/lib/baresip/modules/srtp.so:baresip-core"
  # The SRTP e2e captures the RTP port to show no clear-text audio on the wire (test/e2e/sip-baresip-srtp.test.ts).
  "tcpdump:tcpdump"
  # The durability test traces the store's fdatasync/fsync calls (test/unit/store/durable-sync.test.ts).
  "strace:strace"
  # Cluster mode: the JetStream log's tests start a 3-server NATS cluster (test/helpers/nats-cluster.ts).
  "nats-server:nats-server"
  # `switchboard cluster up` puts HAProxy (HTTP) and Kamailio (SIP, dispatcher module) in front of the nodes
  # (test/e2e/cluster-up.test.ts).
  "haproxy:haproxy"
  "kamailio:kamailio"
)
EXTRA_PACKAGES=(libsox-fmt-all)

missing=()
for entry in "${NEEDED[@]}"; do
  cmd="${entry%%:*}"; pkg="${entry#*:}"
  if [[ "$cmd" == /* ]]; then [ -e "$cmd" ] || missing+=("$pkg"); else command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg"); fi
done
# de-duplicate (ffmpeg provides two commands)
if [ ${#missing[@]} -gt 0 ]; then mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u); fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "ensure-deps: all test dependencies present"
  exit 0
fi

echo "ensure-deps: missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-deps: not root or no apt-get; install them yourself:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]} ${EXTRA_PACKAGES[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" "${EXTRA_PACKAGES[@]}" >/dev/null
for entry in "${NEEDED[@]}"; do
  cmd="${entry%%:*}"
  if [[ "$cmd" == /* ]]; then [ -e "$cmd" ] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
  echo "ensure-deps: $cmd still missing after install" >&2; exit 1
done
echo "ensure-deps: installed ${missing[*]}"

#!/usr/bin/env bash
# System packages emotrt's workstation and test suite use. Installs them with apt-get when
# run as root on Debian/Ubuntu; otherwise says exactly which are missing and how to get them.
set -euo pipefail
PKGS="espeak-ng flite sox libsox-fmt-all libportaudio2 libsndfile1 pulseaudio pulseaudio-utils libasound2-plugins alsa-utils libjemalloc2 openssh-server openssh-client chromium systemd mender-artifact mender-client"
need=()
for tool in espeak-ng flite sox pulseaudio pactl paplay sshd chromium systemd-analyze mender-artifact mender; do
  p=$tool; [ "$tool" = sshd ] && p=/usr/sbin/sshd
  command -v "$p" >/dev/null 2>&1 || need+=("$tool")
done
[ -e /usr/lib/x86_64-linux-gnu/libportaudio.so.2 ] || [ -e /usr/lib/aarch64-linux-gnu/libportaudio.so.2 ] || need+=(libportaudio2)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: $PKGS"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
else
  echo "missing system tools: ${need[*]}" >&2
  echo "run as root: sudo apt-get install -y --no-install-recommends $PKGS" >&2
  exit 1
fi

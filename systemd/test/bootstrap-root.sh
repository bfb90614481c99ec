#!/usr/bin/env bash
# Makes sure the cached Debian 12 root for systemd/test/nspawn.sh exists and is current, building
# it with debootstrap when it is missing or was made by an older version of this script.
# Prints the tarball's path on stdout; progress goes to stderr.
#
# Usage: systemd/test/bootstrap-root.sh [--cache PATH] [--mirror URL] [--force]
#   --cache PATH  the tarball (env ROLLUPD_NSPAWN_CACHE, default /var/cache/rollupd-nspawn/bookworm.tar);
#                 keep it outside the git clone. PATH.key beside it records which recipe made it.
#   --mirror URL  the Debian mirror (env ROLLUPD_NSPAWN_MIRROR; default: the one the host's apt uses)
#   --force       rebuild even if the cache is current
#   --print-key   print the recipe's cache key (e.g. for a CI cache) and exit
#
# The root is what a real small server would have: Debian 12 minbase with systemd as init, dbus
# and the package's dependencies (libpq5, libsystemd0), so `dpkg -i rollupd_*.deb` works offline.
set -euo pipefail

suite=bookworm
# These and the text between the recipe markers below are the cache key.
include=systemd,systemd-sysv,dbus,libpq5,libsystemd0,libcurl4,libstdc++6
# Units a test container does not need: they only slow the boot or add noise to the journal.
mask_units=(console-getty.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer
  dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-pstore.service)

cache=${ROLLUPD_NSPAWN_CACHE:-/var/cache/rollupd-nspawn/bookworm.tar}
mirror=${ROLLUPD_NSPAWN_MIRROR:-}
force=0
print_key=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --force) force=1; shift ;;
    --print-key) print_key=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap-root: unknown argument $1" >&2; exit 2 ;;
  esac
done
say() { echo "bootstrap-root: $*" >&2; }

# The first plain Debian archive the host's apt uses (deb822 .sources or one-line .list files),
# not the security archive; deb.debian.org if there is none.
host_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    while read -r uri; do
      case "$uri" in *security*) continue ;; */debian|*/debian/) echo "${uri%/}"; return ;; esac
    done < <(sed -n 's/^URIs:[[:space:]]*//p' "$f" | tr ' ' '\n')
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|ftp|file):/) { print $i; break } }' "$f" \
      | grep -v security | grep -E '/debian/?$' | head -n1 || true)
    [ -n "$uri" ] && { echo "${uri%/}"; return; }
  done
  echo http://deb.debian.org/debian
}
[ -n "$mirror" ] || mirror=$(host_mirror)

key=$( { echo "$suite $include ${mask_units[*]}"; sed -n '/^# ---- recipe ----/,/^# ---- end of recipe ----$/p' "$0"; } | sha256sum | cut -c1-16)
[ "$print_key" = 1 ] && { echo "$key"; exit 0; }
current() { [ -s "$cache" ] && [ "$(cat "$cache.key" 2>/dev/null)" = "$key" ]; }

mkdir -p "$(dirname "$cache")"
exec 9>"$cache.lock"
flock 9  # one builder at a time; the others wait and then find it current
if [ "$force" = 0 ] && current; then
  echo "$cache"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq debootstrap) >&2
fi

work=$(mktemp -d "$(dirname "$cache")/build.XXXXXX")
cleanup() {
  set +e
  # debootstrap mounts /proc and /sys in the target while it runs; never delete through a mount.
  findmnt -rno TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 143' INT TERM HUP  # so that the EXIT trap cleans up after a signal too
# ---- recipe ---- (its text is part of the cache key)
root=$work/root
say "debootstrap $suite from $mirror (minbase + $include)"
if ! debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" > "$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
  say "debootstrap failed"
  exit 1
fi

for unit in "${mask_units[@]}"; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
rm -f "$root/etc/systemd/system/getty.target.wants/getty@tty1.service"
# Each run writes its own machine id; an empty file here would mean "first boot" (presets).
: > "$root/etc/machine-id"
echo rollupd-test > "$root/etc/hostname"
# Smaller and faster to unpack: no package lists, downloaded debs, docs, man pages or locales.
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log
# ---- end of recipe ----
tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -cf "$work/root.tar" .
mv -f "$work/root.tar" "$cache"
echo "$key" > "$cache.key"
say "cached $(du -h "$cache" | cut -f1) at $cache"
echo "$cache"

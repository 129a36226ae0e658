#!/bin/sh
# install-backports.sh — Prosody 13 and ejabberd 24 from Debian's
# bookworm-backports, beside the system's Prosody 0.12 and ejabberd 23.01,
# without touching the system: a private apt state (its own sources list,
# lists and cache) downloads the packages, and dpkg-deb -x unpacks them
# into a private prefix that the harness's launchers use (see
# sim/realserver/backports.go). Nothing is installed, configured or
# started; no root needed for this part.
#
# Usage: install-backports.sh [PREFIX]
#   PREFIX defaults to $XMPPNEG_BACKPORTS, else ${XDG_CACHE_HOME:-~/.cache}/xmppneg/backports.
# Idempotent: when PREFIX/installed lists what this script would install,
# it returns at once.
set -eu

prefix=${1:-${XMPPNEG_BACKPORTS:-${XDG_CACHE_HOME:-$HOME/.cache}/xmppneg/backports}}
suite="bookworm-backports"
mirror="http://deb.debian.org/debian"
# The versions the profiles were checked against; if backports has moved
# on, its newer version is taken and said so (the kinds report the
# version the process itself reports).
want_servers="prosody=13.0.1-1~bpo12+1 ejabberd=24.12-3~bpo12+1"
# Bumped when what this script unpacks changes.
layout=1

stamp="$prefix/installed"
if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "layout $layout $want_servers" ] && \
	[ -x "$prefix/root/usr/bin/prosody" ] && [ -d "$prefix/root/usr/lib" ]; then
	echo "backports: $(sed -n 2p "$stamp") in $prefix"
	exit 0
fi

for p in apt-get apt-cache dpkg-deb dpkg-query; do
	command -v $p >/dev/null 2>&1 || { echo "backports: $p is missing (Debian's apt and dpkg are needed)" >&2; exit 1; }
done

state="$prefix/apt"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
echo "deb $mirror $suite main" > "$state/sources.list"
# Only this sources list, these lists and this cache: the system's apt
# state is neither read for sources nor written.
set -- -o Dir::Etc::sourcelist="$state/sources.list" -o Dir::Etc::sourceparts=- \
	-o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache" \
	-o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 -q

apt-get "$@" update >"$state/update.log" 2>&1 || { cat "$state/update.log" >&2; echo "backports: apt-get update of $suite failed" >&2; exit 1; }

# The servers, pinned where backports still has the pinned version.
pkgs=""
for pv in $want_servers; do
	p=${pv%%=*}
	if apt-cache "$@" madison "$p" | grep -q "| ${pv#*=} |"; then
		pkgs="$pkgs $pv"
	else
		c=$(apt-cache "$@" madison "$p" | awk -F'|' '/backports/ {gsub(/ /,"",$2); print $2; exit}')
		[ -n "$c" ] || { echo "backports: $suite has no $p" >&2; exit 1; }
		echo "backports: $pv is gone from $suite; taking $p=$c" >&2
		pkgs="$pkgs $p=$c"
	fi
done
# Every library ejabberd depends on that backports carries: its bookworm
# versions are older than ejabberd 24 requires (erlang-p1-*, erlang-jose).
# Erlang/OTP itself (25.2) stays the system's.
ever=$(echo "$pkgs" | tr ' ' '\n' | sed -n 's/^ejabberd=//p')
for d in $(apt-cache "$@" show "ejabberd=$ever" | sed -n 's/^Depends: //p' | sed 's/([^)]*)//g; s/|[^,]*//g; s/,/ /g'); do
	case $d in erlang-*) ;; *) continue ;; esac
	c=$(apt-cache "$@" madison "$d" | awk -F'|' '/backports/ {gsub(/ /,"",$2); print $2; exit}')
	[ -n "$c" ] && pkgs="$pkgs $d=$c"
done

cd "$state/debs"
rm -f ./*.deb
apt-get "$@" download $pkgs >"$state/download.log" 2>&1 || { cat "$state/download.log" >&2; echo "backports: apt-get download failed" >&2; exit 1; }

# Unpack into a fresh root, then swap it in: a half-unpacked root is
# never left where the launchers look.
rm -rf "$prefix/root.new"
mkdir -p "$prefix/root.new"
for f in ./*.deb; do
	dpkg-deb -x "$f" "$prefix/root.new"
done
# Prosody's launcher names its directories at the top (CFG_*): point them
# into the prefix, so that it loads its own code, not the system's 0.12.
r="$prefix/root.new"
sed -i \
	-e "s|^CFG_SOURCEDIR=.*|CFG_SOURCEDIR='$prefix/root/usr/lib/prosody';|" \
	-e "s|^CFG_CONFIGDIR=.*|CFG_CONFIGDIR='$prefix/root/etc/prosody';|" \
	-e "s|^CFG_PLUGINDIR=.*|CFG_PLUGINDIR='$prefix/root/usr/lib/prosody/modules/';|" \
	-e "s|^CFG_DATADIR=.*|CFG_DATADIR='$prefix/root/var/lib/prosody';|" \
	"$r/usr/bin/prosody"
grep -q "^CFG_SOURCEDIR='$prefix/root/usr/lib/prosody';" "$r/usr/bin/prosody" || { echo "backports: prosody's launcher has no CFG_SOURCEDIR line to point into $prefix" >&2; exit 1; }
rm -rf "$prefix/root"
mv "$r" "$prefix/root"

versions=$(echo $pkgs | tr ' ' '\n' | grep -E '^(prosody|ejabberd)=' | tr '\n' ' ' | sed 's/ $//')
printf 'layout %s %s\n%s (and %d libraries)\n%s\n' "$layout" "$want_servers" "$versions" \
	"$(( $(echo $pkgs | wc -w) - 2 ))" "$(echo $pkgs | tr ' ' '\n')" > "$stamp"
echo "backports: unpacked $versions (and $(( $(echo $pkgs | wc -w) - 2 )) libraries) into $prefix"

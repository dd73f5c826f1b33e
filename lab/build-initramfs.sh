#!/bin/bash
# Build the portdial lab initramfs for the user-mode-linux guest.
#
#   lab/build-initramfs.sh OUTDIR
#
# Produces, from the installed Debian packages only:
#   OUTDIR/initramfs.cpio.gz  busybox, pppd, pppoe-server, pppoe (+ their shared
#                             libraries), the PPP kernel modules, /init and helpers
#   OUTDIR/www/               files the guest's httpd serves (hostfs, read-only use)
#   OUTDIR/linux.uml          symlink to the UML kernel
#   OUTDIR/stamp              inputs fingerprint; when it matches, nothing is rebuilt
#
# Idempotent: a second run with unchanged inputs does nothing and takes ~0.1 s.
# Needs: user-mode-linux busybox-static ppp pppoe cpio gzip, and gcc for the tiny
# static UDP echo server (gcc and libc6-dev).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:?usage: build-initramfs.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---- prerequisites -------------------------------------------------------
missing=()
for p in user-mode-linux busybox-static ppp pppoe cpio gzip gcc libc6-dev; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "build-initramfs: missing Debian packages: ${missing[*]}" >&2
    echo "  install with: apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

UML_BIN=$(dpkg -L user-mode-linux | grep -E '/bin/linux\.uml$' | head -n1)
[ -x "$UML_BIN" ] || { echo "build-initramfs: linux.uml not found in user-mode-linux" >&2; exit 1; }
KVER=$(ls /usr/lib/uml/modules | sort -V | tail -n1)
MODDIR=/usr/lib/uml/modules/$KVER
# ipv6: pppd configures the IPv6CP link-local address on ppp0 (without it,
# its IPv6CP fails and stalls the session for 2 s).
MODS="crc-ccitt slhc ppp_generic ppp_async pppox pppoe ipv6"
declare -A MODPATH
for m in $MODS; do
    f=$(find "$MODDIR/kernel" -name "$m.ko*" | head -n1)
    [ -n "$f" ] || { echo "build-initramfs: module $m.ko not found under $MODDIR" >&2; exit 1; }
    MODPATH[$m]=$f
done

BINS="/usr/sbin/pppd /usr/sbin/pppoe-server /usr/sbin/pppoe"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=/usr/bin/busybox
file "$(readlink -f "$BUSYBOX")" 2>/dev/null | grep -q 'statically linked' || \
    { echo "build-initramfs: $BUSYBOX is not the static busybox (install busybox-static)" >&2; exit 1; }

# ---- fingerprint: rebuild only if an input changed ------------------------
fp() {
    {
        dpkg-query -W -f='${Package} ${Version}\n' user-mode-linux busybox-static ppp pppoe
        sha256sum "$LAB_DIR/build-initramfs.sh" "$LAB_DIR"/guest/* "$LAB_DIR"/host/*
        echo "$KVER"
    } | sha256sum | cut -d' ' -f1
}
WANT=$(fp)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$WANT" ] && [ -f "$OUT/initramfs.cpio.gz" ] \
   && [ -f "$OUT/www/big.bin" ] && [ -x "$OUT/uml-noxstate" ]; then
    echo "build-initramfs: up to date ($OUT/initramfs.cpio.gz)"
    exit 0
fi

T0=$(date +%s.%N)
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/pd-initramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc/ppp,proc,sys,dev,tmp,run,var/log,var/lock,host,srv/www,root,lib/modules/ppp}
ln -s /run "$R/var/run"

# busybox + applet links
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] && continue
    ln -sf busybox "$R/bin/$a"
done

# pppd / pppoe-server / pppoe and their libraries
copy_with_libs() {
    local b=$1
    install -D -m 0755 "$b" "$R$b"
    ldd "$b" | awk '/=>/ {print $3} /^\s*\/[^ ]*ld-linux/ {print $1}' | while read -r lib; do
        [ -n "$lib" ] && [ -e "$lib" ] || continue
        [ -e "$R$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$R$lib"
    done
}
for b in $BINS; do copy_with_libs "$b"; done
# the dynamic loader must also be reachable at /lib64
[ -e "$R/lib64/ld-linux-x86-64.so.2" ] || install -D -m 0755 "$(readlink -f /lib64/ld-linux-x86-64.so.2)" "$R/lib64/ld-linux-x86-64.so.2"

# tiny static UDP echo server (busybox nc has no UDP)
gcc -O2 -static -s -o "$R/bin/udpecho" "$LAB_DIR/guest/udpecho.c"

# kernel modules (only the PPP stack, loaded by /init with insmod in order)
for m in $MODS; do
    f=${MODPATH[$m]}
    case $f in
        *.ko) cp "$f" "$R/lib/modules/ppp/$m.ko" ;;
        *.ko.xz) xz -dc "$f" > "$R/lib/modules/ppp/$m.ko" ;;
        *.ko.gz) gzip -dc "$f" > "$R/lib/modules/ppp/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" > "$R/lib/modules/ppp/$m.ko" ;;
    esac
done
echo "$MODS" > "$R/lib/modules/ppp/order"
echo "$KVER" > "$R/lib/modules/ppp/kver"

# /etc
cat > "$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$R/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo "127.0.0.1 localhost" > "$R/etc/hosts"
echo "portdial-lab" > "$R/etc/hostname"
# pppd reads /etc/ppp/options before anything else: keep it neutral
# (Debian's default has 'lock', 'modem', 'crtscts', 'lcp-echo-interval 30').
echo "# portdial lab: intentionally empty, see pppoe-server-options" > "$R/etc/ppp/options"
: > "$R/etc/ppp/pap-secrets"; : > "$R/etc/ppp/chap-secrets"

# guest scripts
install -m 0755 "$LAB_DIR/guest/init" "$R/init"
for s in pd-server pd-cmdloop ip-up ip-down; do
    [ -f "$LAB_DIR/guest/$s" ] || continue
    case $s in
        ip-up|ip-down) install -m 0755 "$LAB_DIR/guest/$s" "$R/etc/ppp/$s" ;;
        *) install -m 0755 "$LAB_DIR/guest/$s" "$R/sbin/$s" ;;
    esac
done

(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --owner=0:0) \
    | gzip -6 > "$OUT/initramfs.cpio.gz.tmp"
mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"

# files served by the guest's httpd (mounted over hostfs, so not in guest RAM)
mkdir -p "$OUT/www"
cat > "$OUT/www/index.html" <<'EOF'
<html><body><h1>portdial lab</h1><p>served by busybox httpd inside the UML guest</p></body></html>
EOF
printf 'hello from the portdial lab\n' > "$OUT/www/small.txt"
# deterministic, incompressible-ish bulk files (no /dev/urandom so sums are stable)
python3 - "$OUT/www" <<'EOF' 2>/dev/null || true
import hashlib, sys, os
d = sys.argv[1]
def gen(name, size):
    h = hashlib.sha256(b"portdial-lab").digest()
    out = bytearray()
    while len(out) < size:
        h = hashlib.sha256(h).digest()
        out += h
    with open(os.path.join(d, name), "wb") as f:
        f.write(out[:size])
gen("1k.bin", 1024)
gen("1m.bin", 1 << 20)
gen("big.bin", 16 << 20)
EOF
if [ ! -f "$OUT/www/big.bin" ]; then   # no python3: compressible fallback
    yes 'portdial-lab bulk data 0123456789abcdef' | head -c 1024 > "$OUT/www/1k.bin"
    yes 'portdial-lab bulk data 0123456789abcdef' | head -c 1048576 > "$OUT/www/1m.bin"
    yes 'portdial-lab bulk data 0123456789abcdef' | head -c 16777216 > "$OUT/www/big.bin"
fi
(cd "$OUT/www" && sha256sum index.html small.txt 1k.bin 1m.bin big.bin > SHA256SUMS)

ln -sfn "$UML_BIN" "$OUT/linux.uml"
# host-side launcher that hides NT_X86_XSTATE from UML (see host/uml-noxstate.c)
gcc -O2 -Wall -o "$OUT/uml-noxstate" "$LAB_DIR/host/uml-noxstate.c"
echo "$KVER" > "$OUT/kver"
echo "$WANT" > "$OUT/stamp"
T1=$(date +%s.%N)
printf 'build-initramfs: built %s (%s bytes) in %.1fs\n' "$OUT/initramfs.cpio.gz" \
    "$(stat -c %s "$OUT/initramfs.cpio.gz")" "$(awk -v a="$T0" -v b="$T1" 'BEGIN{print b-a}')"

#!/bin/sh
# runtime-libs.sh LDP DEST: copy LDP (as libvcl_ldpreload.so) and every shared library it
# needs, its whole ldd closure, into DEST, except the C library's own (libc, libm, libdl,
# libpthread, librt, the dynamic loader, ...): those must come from the application's
# image, whose glibc the app itself was linked against.
#
# Why the whole closure: injected apps run on slim, minbase and distroless images that
# lack what VPP's build host had. VPP 26.06's libvppinfra needs libunwind.so.8 (and it
# liblzma.so.5); copying only VPP's own libraries left such apps with "cannot load LDP
# (libunwind.so.8: cannot open shared object file)" and silently on the kernel (seen on
# a real cluster). Used by Dockerfile.runtime and e2e/cluster/images.py.
set -eu
ldp=$1
dest=$2
mkdir -p "$dest"
cp -L "$ldp" "$dest/libvcl_ldpreload.so"
# ldd prints "name => /path (addr)" for each library of the closure; the C library's own
# are kept out by soname.
ldd "$ldp" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r soname path; do
  case "$soname" in
    ld-linux*|libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libutil.so.*|\
    libresolv.so.*|libanl.so.*|libnsl.so.*|libmvec.so.*|libBrokenLocale.so.*) continue ;;
  esac
  cp -L "$path" "$dest/$soname"
done
# Every library LDP needs is now either in DEST or glibc's: prove it with DEST alone.
missing=$(LD_LIBRARY_PATH="$dest" ldd "$dest/libvcl_ldpreload.so" | awk '/not found/ {print $1}')
if [ -n "$missing" ]; then
  echo "runtime-libs.sh: still missing: $missing" >&2
  exit 1
fi
chmod 0755 "$dest"
chmod 0644 "$dest"/*

#!/usr/bin/env bash
# Makes the two base images the Dockerfile names without pulling them from a registry, for a
# machine that reaches Debian's archive but not Docker Hub (this project's build machines): a
# minimal Debian bookworm from debootstrap as the runtime base, and the same with this
# machine's Rust toolchain (rustup's, copied in) and a C toolchain as the build base. Then:
#
#   podman build --isolation chroot --build-arg RUST_IMAGE=localhost/rust:local \
#     --build-arg RUNTIME_IMAGE=localhost/debian:bookworm-slim -t rentgraph .
#
# Needs root, podman and debootstrap (Debian packages).
set -euo pipefail
work=$(mktemp -d /tmp/rentgraph-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >/dev/null
# The machine's own certificate authorities (a TLS-inspecting proxy's, say), so builds inside
# can reach the package registries as the machine does.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$work/rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$work/rootfs/usr/local/share/ca-certificates/"
fi
tar -C "$work/rootfs" -c . | podman import - localhost/debian:bookworm-slim >/dev/null
toolchain=$(rustc --print sysroot)
mkdir -p "$work/rust"
cp -a "$toolchain" "$work/rust/toolchain"
cat >"$work/rust/Containerfile" <<'CF'
FROM localhost/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_HOME=/usr/local/cargo
CF
# chroot isolation: runs where no OCI runtime can (crun refuses hybrid cgroups here).
podman build --isolation chroot -q -t localhost/rust:local "$work/rust" >/dev/null
echo "base images: localhost/debian:bookworm-slim, localhost/rust:local"

# syntax=docker/dockerfile:1
# joingate container image: built from Debian bookworm packages with the same steps as
# scripts/test and scripts/bench (cmake --preset release, the joingate target); the runtime
# image holds the binary and the shared libraries it links, and runs as a non-root user.
#
#   docker build -t joingate:0.1.0 .
#   docker run --rm joingate:0.1.0 version
#
# The Helm chart (helm/joingate) runs /usr/local/bin/joingate from this image as the
# sidecar, as `joingate wait` and, with bash, as the certificate reloader.

ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE} AS build
# The build packages of scripts/deps: the compiler and CMake, the libraries joingate links,
# and Google Benchmark because the release preset configures the benchmarks too
# (JOINGATE_BENCH=ON; only the joingate target is built).
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libboost1.81-dev libssl-dev libtomlplusplus-dev prometheus-cpp-dev \
      libbenchmark-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake --preset release \
 && cmake --build --preset release --target joingate \
 && strip build/release/joingate \
 && build/release/joingate version

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# What `ldd joingate` names beyond libc, libstdc++ and libgcc (already in the base image).
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libssl3 libtomlplusplus3 libprometheus-cpp-core1.0 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY --from=build /src/build/release/joingate /usr/local/bin/joingate
RUN groupadd --system --gid 65532 joingate \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin joingate
# Smoke test: the binary starts with the libraries of this image.
RUN ["/usr/local/bin/joingate", "version"]
USER 65532:65532
# 2380 inbound (mTLS peer port), 9380 admin; the outbound proxy (2390) listens on loopback.
EXPOSE 2380 9380
ENTRYPOINT ["/usr/local/bin/joingate"]
CMD ["version"]

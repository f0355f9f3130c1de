# cronfleet's images, built by `make images` (README, "Images and Compose").
#
#   cronfleet/cronfleet  every role; the command picks it:
#                        `cronfleet coordinator | scheduler | worker | gateway | migrate | certs`
#   cronfleet/postgres   PostgreSQL 15 from Debian (deploy/postgres-entrypoint.sh)
#   cronfleet/etcd       etcd 3.4 from Debian (etcd-server, etcd-client)
#
# No registry is needed: `make images` builds the base from Debian packages
# (deploy/base-image.sh: debootstrap, docker import) and passes
# --build-arg BASE=cronfleet/debian:bookworm; the Python dependencies are
# wheels made on the host (build/wheelhouse) and installed with --no-index.
# Elsewhere the default base, python:3.11-slim, does as well (Debian 12 with
# Python 3.11); the postgres and etcd stages then need a Debian mirror.
# Stages are in the order the classic builder builds them.
ARG BASE=python:3.11-slim

FROM ${BASE} AS postgres
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /run/postgresql
COPY deploy/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
HEALTHCHECK --interval=2s --timeout=3s --retries=30 CMD pg_isready -h 127.0.0.1 -q
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]

FROM ${BASE} AS etcd
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server etcd-client >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && { id etcd >/dev/null 2>&1 || useradd --system --home-dir /var/lib/etcd etcd; } \
 && install -d -o etcd -g etcd /var/lib/etcd
USER etcd
EXPOSE 2379 2380
ENTRYPOINT ["/usr/bin/etcd"]

FROM ${BASE} AS cronfleet
# Wheels made on the host (`make images`: pip wheel), installed without
# reaching any index: first the dependencies (build/wheelhouse, a layer that
# stays cached while they do not change), then cronfleet's own (build/dist).
COPY build/wheelhouse/ /tmp/wheelhouse/
RUN python3 -m venv /opt/cronfleet \
 && /opt/cronfleet/bin/pip install -q --no-index --no-cache-dir /tmp/wheelhouse/*.whl \
 && rm -rf /tmp/wheelhouse \
 && useradd --system --uid 10001 --home-dir /var/lib/cronfleet --create-home cronfleet \
 && mkdir -p /var/lib/cronfleet/tls /var/lib/cronfleet/logs /var/lib/cronfleet/state \
 && chown -R cronfleet:cronfleet /var/lib/cronfleet
COPY build/dist/ /tmp/dist/
RUN /opt/cronfleet/bin/pip install -q --no-index --no-cache-dir --no-deps /tmp/dist/*.whl \
 && /opt/cronfleet/bin/pip check \
 && rm -rf /tmp/dist
# The dashboard, built on the host (make web), served by the gateway.
COPY web/dist/ /opt/cronfleet/web/
ENV PATH=/opt/cronfleet/bin:$PATH \
    CRONFLEET_WEB_DIR=/opt/cronfleet/web \
    CRONFLEET_STATE_DIR=/var/lib/cronfleet/state \
    CRONFLEET_LOG_DIR=/var/lib/cronfleet/logs \
    CRONFLEET_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
WORKDIR /var/lib/cronfleet
USER cronfleet
ENTRYPOINT ["cronfleet"]
CMD ["--help"]

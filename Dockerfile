# The tracker daemon in a container: the wheel installed into a slim Python, run as a
# non-root user, state (SQLite database, refreshed price snapshots) on a volume.
#
#   docker build -t sagemaker-spend-tracker .
#   docker run -v tracker-state:/var/lib/tracker -v "$PWD/tracker.toml:/etc/tracker/tracker.toml:ro" \
#     sagemaker-spend-tracker
#
# The two pip commands are those of tests/smoke_installed.sh (WHEEL_CMD and INSTALL_CMD), which
# CI runs; tests/test_install.py checks that they stay the same.
FROM python:3.12-slim AS build
WORKDIR /src
COPY . .
RUN python -m pip wheel --no-deps --quiet -w /dist .

FROM python:3.12-slim
# postgres: a shared PostgreSQL database; web: `tracker serve` from the same image.
ARG EXTRAS=postgres,web
COPY --from=build /dist /dist
RUN WHEEL="$(ls /dist/sagemaker_spend_tracker-*.whl)" \
    && python -m pip install --quiet --no-cache-dir "$WHEEL[$EXTRAS]" \
    && rm -rf /dist \
    && useradd --system --uid 10001 --home-dir /var/lib/tracker --create-home tracker
ENV TRACKER_HOME=/var/lib/tracker \
    TRACKER_CONFIG=/etc/tracker/tracker.toml \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/tracker"]
USER tracker
WORKDIR /var/lib/tracker
ENTRYPOINT ["tracker"]
CMD ["daemon"]

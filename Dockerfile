# StashHog Daemons: one image for every process of the Procfile (compose.yaml runs each one).
# Build: docker build -t stashhog-daemons .   Run one process: docker run stashhog-daemons web
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=5000 \
    FLOWER_PORT=5555

WORKDIR /app

# The dependencies first (their layer is rebuilt only when a lock file changes), from the
# hashed lock files: the pinned pip, then the runtime set (no test tools).
COPY requirements/pip.txt requirements/run.txt requirements/
RUN python -m pip install --require-hashes -r requirements/pip.txt \
    && python -m pip install --require-hashes -r requirements/run.txt

# The project itself, as in a checkout: templates, static files, migrations and the Procfile
# are read from /app. No dependencies of its own (the lock has them).
COPY . .
RUN python -m pip install --no-deps --no-build-isolation -e . \
    && python -m compileall -q stashhog workers app.py celeryconfig.py

# Not root: the processes own only instance/ (the beat schedule, thumbnails; a volume in
# compose.yaml), never the code.
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin stashhog \
    && mkdir -p instance \
    && chown stashhog:stashhog instance
USER stashhog

EXPOSE 5000 5555
# Liveness: the web process answers (compose.yaml checks readiness for web, and each other
# process its own way).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "stashhog.container", "probe", "live"]
ENTRYPOINT ["python", "-m", "stashhog.container"]
CMD ["web"]

# Saldo: one image for every service and every `saldo` command.
#   docker build -t saldo .
#   docker run --rm saldo --help
#   docker run --rm -p 8000:8000 saldo embedded --host 0.0.0.0        # the embedded product
# The distributed setup is in docker-compose.yml (Kafka, PostgreSQL, five services).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# eventsourcing's PostgreSQL recorder uses psycopg 3, installed without a bundled libpq
# (pure-Python build), so the shared library must come from the OS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# pyproject.toml maps the packages to libs/ and services/; nothing else is needed to install.
COPY pyproject.toml ./
COPY libs ./libs
COPY services ./services
RUN pip install . && rm -rf build *.egg-info

# Embedded mode keeps its SQLite files here; distributed mode writes nothing to disk.
RUN useradd --system --uid 10001 --home-dir /app saldo \
 && mkdir -p /app/var && chown saldo /app/var
ENV SALDO_VAR_DIR=/app/var
USER 10001

EXPOSE 8000
ENTRYPOINT ["saldo"]
CMD ["--help"]

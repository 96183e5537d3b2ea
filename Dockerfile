# Portvakt in a container: slim Python, a non-root user, a health check. The install steps are
# the README's "Installing without make" steps, in /opt/portvakt instead of .venv.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --home-dir /var/lib/portvakt --create-home portvakt
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY gateway ./gateway
COPY providers ./providers
RUN python3 -m venv /opt/portvakt \
    && /opt/portvakt/bin/pip install --upgrade pip \
    && /opt/portvakt/bin/pip install . \
    && rm -rf /src
WORKDIR /var/lib/portvakt
USER portvakt
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/opt/portvakt/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["/opt/portvakt/bin/portvakt"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--config", "/etc/portvakt/portvakt.yaml", "--log-format", "json"]

# The worker and the gateway (one image, two commands):
#   docker run ... meet-telephony worker | meet-telephony gateway
# No secret is baked in: every setting comes from the environment at run time.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TELEPHONY_GATEWAY_HOST=0.0.0.0 \
    TELEPHONY_GATEWAY_PORT=8080

RUN groupadd --system --gid 10001 telephony \
    && useradd --system --uid 10001 --gid telephony --home-dir /app --shell /usr/sbin/nologin telephony

WORKDIR /app
COPY pyproject.toml README.md ./
COPY telephony ./telephony
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY webhook_gateway ./webhook_gateway
COPY livekit_emulator ./livekit_emulator
COPY operator_tools ./operator_tools
RUN pip install . && chown -R telephony:telephony /app

USER telephony
EXPOSE 8080
# The gateway's liveness; docker-compose.yml gives the worker its own check (its metrics port).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('TELEPHONY_GATEWAY_PORT', '8080')}/healthz\", timeout=2)"]
ENTRYPOINT ["meet-telephony"]
CMD ["gateway"]

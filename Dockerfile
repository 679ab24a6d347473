# The crswatch worker (and CLI). Built by docker-compose.yml; runs as a non-root user.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY models ./models
COPY alerts ./alerts
COPY streams ./streams
COPY cases ./cases
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 crswatch \
    && mkdir -p /data && chown crswatch /data

USER crswatch
ENV CRSWATCH_DATA_DIR=/data \
    CRSWATCH_WEB_HOST=0.0.0.0 \
    CRSWATCH_WEB_PORT=6066
EXPOSE 6066
VOLUME ["/data"]
ENTRYPOINT ["crswatch"]
CMD ["worker"]

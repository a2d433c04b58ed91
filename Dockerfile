# One file, one image per target, following Airbyte's connector image conventions:
#   docker build --target source-bigcommerce -t tajo/source-bigcommerce:0.1.0 .
#   docker build --target source-shopify     -t tajo/source-shopify:0.1.0 .
#   docker build --target destination-brevo  -t tajo/destination-brevo:0.1.0 .
#   docker build --target runner             -t tajo/runner:0.1.0 .
# The wheel is built in a throwaway stage; the runtime stages hold Python, the installed
# package and nothing else, and run as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md catalog.json ./
COPY framework ./framework
COPY app ./app
COPY connectors ./connectors
COPY specs ./specs
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels tajo-connectors==0.1.0 \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin tajo \
    && mkdir /data && chown tajo /data
USER 10001
WORKDIR /home/tajo

FROM base AS source-bigcommerce
ENV AIRBYTE_ENTRYPOINT="source-bigcommerce"
LABEL io.airbyte.name="tajo/source-bigcommerce" \
      io.airbyte.version="0.1.0"
ENTRYPOINT ["source-bigcommerce"]

# Shopify's published Admin schema (the pinned @shopify/dev-mcp package, its SHA-256 checked
# by connectors/shopify/schema.py), fetched once at build: the Shopify source validates every
# query against the configured version's schema before a read or check, and a container
# starts with an empty cache, so without it every run would download the package again.
FROM base AS shopify-schemas
ENV TAJO_SHOPIFY_SCHEMAS=/home/tajo/shopify-schemas
RUN python -c "from connectors.shopify import schema; schema.fetch()"

FROM base AS source-shopify
COPY --from=shopify-schemas /home/tajo/shopify-schemas /opt/shopify-schemas
ENV AIRBYTE_ENTRYPOINT="source-shopify" \
    TAJO_SHOPIFY_SCHEMAS=/opt/shopify-schemas
LABEL io.airbyte.name="tajo/source-shopify" \
      io.airbyte.version="0.1.0"
ENTRYPOINT ["source-shopify"]

FROM base AS destination-brevo
ENV AIRBYTE_ENTRYPOINT="destination-brevo"
LABEL io.airbyte.name="tajo/destination-brevo" \
      io.airbyte.version="0.1.0"
ENTRYPOINT ["destination-brevo"]

FROM base AS runner
# runner sync and runner webhooks serve keep their state here: mount a volume on it.
# runner sync reads Shopify too: the same schemas as source-shopify.
COPY --from=shopify-schemas /home/tajo/shopify-schemas /opt/shopify-schemas
ENV AIRBYTE_ENTRYPOINT="runner" \
    TAJO_SHOPIFY_SCHEMAS=/opt/shopify-schemas
LABEL io.airbyte.name="tajo/runner" \
      io.airbyte.version="0.1.0"
WORKDIR /data
EXPOSE 8080
ENTRYPOINT ["runner"]
CMD ["--help"]

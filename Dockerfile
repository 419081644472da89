# The bot server image: `docker build -t twilio-bot .`
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, for layer caching.
COPY pyproject.toml README.md ./
COPY bot/__init__.py bot/__init__.py
COPY webhooks/__init__.py webhooks/__init__.py
RUN pip install .  && pip uninstall -y twilio-convo-bot

COPY bot bot
COPY webhooks webhooks
COPY intents intents
COPY prompts prompts
RUN pip install --no-deps .

RUN useradd --create-home --uid 10001 bot
USER bot

EXPOSE 8000
CMD ["bot", "serve", "--host", "0.0.0.0", "--port", "8000"]

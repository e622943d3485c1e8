# Huddle's api / worker / firehose image. Dependencies are installed from the hashed runtime lock.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock .
RUN pip install --require-hashes -r requirements.lock
COPY . .
# Editable, so migrations/ and lexicons/ are read from /app as in a checkout.
RUN pip install --no-deps -e . && useradd --system huddle
USER huddle
EXPOSE 8000
CMD ["huddle", "api"]

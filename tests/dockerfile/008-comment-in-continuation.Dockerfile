FROM debian
RUN apt-get update && \
    # install curl
    apt-get install -y curl \
  # trailing comment
    && rm -rf /var/lib/apt/lists/*

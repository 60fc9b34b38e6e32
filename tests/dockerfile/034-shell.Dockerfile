FROM alpine
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN echo hi | cat

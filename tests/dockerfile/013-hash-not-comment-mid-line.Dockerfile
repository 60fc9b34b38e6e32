FROM alpine
RUN echo # not a comment
LABEL a="#b"

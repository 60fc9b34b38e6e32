FROM alpine
VOLUME /data /logs
VOLUME ["/a", "/b c"]

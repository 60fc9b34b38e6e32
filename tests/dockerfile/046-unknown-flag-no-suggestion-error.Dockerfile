FROM alpine
RUN --xyzzy=1 true

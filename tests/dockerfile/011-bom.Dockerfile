FROM alpine
RUN true

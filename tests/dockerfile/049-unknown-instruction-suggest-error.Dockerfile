FROM alpine
RUN true
FORM alpine

FROM alpine
STOPSIGNAL SIGQUIT
MAINTAINER Jane Doe <jane@example.com>

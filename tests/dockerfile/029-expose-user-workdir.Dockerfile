FROM alpine
EXPOSE 80/tcp 443 53/udp
USER app:app
WORKDIR /srv/my app
WORKDIR "/quoted dir"

FROM golang
RUN make
FROM alpine
COPY --from=0 /out /out
COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf

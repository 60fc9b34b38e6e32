FROM alpine
RUN ["sh", "-c", "cat <<EOF"]
CMD cat <<EOF
RUN cat <<<herestring

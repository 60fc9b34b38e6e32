FROM alpine
RUN --mount=type=cache,target=/c <<EOF
# this is not a Dockerfile comment

echo \
EOF

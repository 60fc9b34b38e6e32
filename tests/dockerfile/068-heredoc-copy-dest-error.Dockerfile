FROM alpine
COPY file <<EOF
EOF

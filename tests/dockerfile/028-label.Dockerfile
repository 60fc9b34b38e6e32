FROM alpine
LABEL "com.example.vendor"="ACME Inc" version=1.0
LABEL description="multi \
line"

FROM golang AS Builder
RUN go build -o /app
FROM alpine As RUNTIME
COPY --from=BUILDER /app /app
FROM runtime AS final

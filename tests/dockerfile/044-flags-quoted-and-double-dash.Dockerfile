FROM alpine
RUN --network="host" -- --weird-command

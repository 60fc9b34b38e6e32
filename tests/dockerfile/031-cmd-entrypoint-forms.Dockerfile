FROM alpine
ENTRYPOINT ["/bin/app", "--flag"]
CMD ["serve"]
CMD echo shell form
ENTRYPOINT exec app

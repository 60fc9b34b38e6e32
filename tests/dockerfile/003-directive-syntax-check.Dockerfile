# syntax=docker/dockerfile:1.7
# check=skip=JSONArgsRecommended
FROM busybox

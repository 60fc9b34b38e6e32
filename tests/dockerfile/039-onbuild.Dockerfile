FROM alpine
ONBUILD ADD . /app/src
ONBUILD RUN make -C /app/src

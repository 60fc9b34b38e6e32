ARG BASE=alpine
FROM ${BASE}
ARG TARGETARCH
ARG X=def
ENV P=/opt/$X A=1 B=${A:-x}
LABEL l=$X
WORKDIR rel
WORKDIR /abs/$X
RUN echo $TARGETARCH $X $P $B
SHELL ["/bin/sh", "-ec"]
RUN echo shell
ONBUILD RUN echo later

FROM alpine AS base
ENV A=1
RUN echo base > /base
FROM base AS left
RUN echo left > /left
FROM base AS right
WORKDIR /work
RUN echo right > r
FROM alpine
COPY --from=left /left /l
COPY --from=right /work/r /r
COPY --link --from=base /base /b
COPY --link --chown=app a.txt /linked

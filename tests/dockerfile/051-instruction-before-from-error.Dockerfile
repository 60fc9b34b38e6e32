# comment
RUN echo no stage
FROM alpine

FROM alpine:3.19
RUN echo hello
CMD ["sh"]

FROM alpine
RUN [not json
CMD [ "x" ] trailing
CMD {"a": 1}
ENTRYPOINT ['single', 'quotes']
RUN []

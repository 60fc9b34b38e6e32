FROM alpine
ENV LEGACY some value  here
ENV A=1 B="two words" C=three\ words
ENV D=

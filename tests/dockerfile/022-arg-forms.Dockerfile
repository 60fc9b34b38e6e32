FROM alpine
ARG A
ARG B=2 C="x y" D=
ARG E='$F'

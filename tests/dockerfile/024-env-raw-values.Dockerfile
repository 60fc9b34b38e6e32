FROM alpine
ENV a=$b b=$a
ENV c="${a}x" d='${b}' e=\$a

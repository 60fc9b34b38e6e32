FROM alpine
COPY a.txt /a.txt
COPY src/ /src/
COPY --chown=app:app --chmod=0640 a.txt b.md /dst/
COPY --exclude=*.md . /all/
COPY --parents src/sub/x.txt /p/
ADD files.tar /unpacked/
COPY <<EOF /inline.txt
hello $HOME
EOF

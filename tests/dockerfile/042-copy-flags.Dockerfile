FROM alpine
COPY --chown=app:app --chmod=0755 --link --parents src/ /dst/
COPY --exclude=*.md --exclude=*.txt . /app/
COPY ["a b.txt", "/dst/"]

FROM alpine AS tools
RUN echo tool > /tool
FROM alpine
ARG V=2
RUN --mount=type=cache,target=/var/cache/x,uid=1000 echo $V
RUN --mount=type=bind,source=src,target=/s cat /s/main.c
RUN --mount=type=bind,from=tools,source=/tool,target=/t cat /t
RUN --mount=type=secret,id=tok,required=false cat /run/secrets/tok || true
RUN --mount=type=tmpfs,target=/scratch,size=1m true
RUN --network=none true
RUN --network=host true
RUN <<EOT
echo heredoc
EOT
RUN <<EOT
#!/bin/sh
echo shebang
EOT
USER app
RUN ["/bin/true", "exec"]

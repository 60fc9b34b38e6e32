FROM python:3.12
RUN <<EOT
#!/usr/bin/env python
print("hello world")
EOT

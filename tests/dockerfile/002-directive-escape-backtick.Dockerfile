# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
WORKDIR C:\app
COPY src\app.exe C:\app\
RUN dir C:\app `
    && echo ok

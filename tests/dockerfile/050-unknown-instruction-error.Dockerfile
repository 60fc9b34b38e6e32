FROM alpine

XYZZY plugh

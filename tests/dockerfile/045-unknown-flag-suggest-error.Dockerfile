FROM alpine AS build
RUN make




COPY --frm=build /out /out

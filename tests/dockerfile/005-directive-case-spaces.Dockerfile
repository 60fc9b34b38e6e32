#  ESCAPE  =  `  
FROM busybox
RUN echo `
  hi

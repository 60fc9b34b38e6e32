FROM alpine AS my-stage_1.x
FROM my-stage_1.x

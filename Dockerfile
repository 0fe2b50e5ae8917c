# Builds breakerd and runs it. There is no Docker engine on the project's build machines, so this
# file is checked by a test (it parses and names what it should) but not built there.
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libhiredis-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product breakerd --static-swift-stdlib \
    && cp .build/release/breakerd /usr/local/bin/breakerd

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libhiredis0.14 redis-server ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/breakerd /usr/local/bin/breakerd
EXPOSE 7420 7421
USER nobody
ENTRYPOINT ["/usr/local/bin/breakerd"]

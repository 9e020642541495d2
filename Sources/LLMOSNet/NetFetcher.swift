// The network service: net.fetch through libcurl (see NetFetcher).

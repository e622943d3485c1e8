"""The firehose indexer: frames → filter → index writes, with its cursor, backoff and metrics."""

-- wrk script of bench/template_bench.py: every request POSTs the same /invoke body, taken from
-- $EOFAAS_BENCH_BODY; done() prints one machine-readable line for the driver to parse.
wrk.method = "POST"
wrk.body = os.getenv("EOFAAS_BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  -- requests, duration (us), transport errors, non-2xx/3xx responses, p50/p99/max latency (us)
  io.write(string.format("TEMPLATE_BENCH %d %d %d %d %d %d %d\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end

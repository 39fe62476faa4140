-- wrk script for the benchmark: POST a small JSON body and print a JSON summary in the
-- loadgen report's shape on the last line. Optional argument (after `--`): a pause in ms
-- between a response and the connection's next request (paced runs, a closed-loop
-- stand-in for a fixed rate when `hearth loadgen` is not available).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"

local pause = 0

function init(args)
   if args[1] then pause = tonumber(args[1]) end
end

function delay()
   return pause
end

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      '{"mode":"wrk","duration_s":%.3f,"requests":%d,"achieved_rate":%.1f,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p99_9":%d,"max":%d,"mean":%.1f}}\n',
      secs, summary.requests, summary.requests / secs,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean))
end

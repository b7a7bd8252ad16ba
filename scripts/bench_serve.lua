-- wrk script for scripts/bench_serve.py: POST one sentence per request to /v1/translate, the
-- bodies read from the file named by BENCH_BODIES (one JSON body a line, cycled), and count the
-- answers by status; done() prints one JSON line that bench_serve.py reads.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    table.insert(bodies, line)
  end
  next_body = 0 -- every run sends the same sentences in the same order
  statuses = {}
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/v1/translate", headers, bodies[next_body])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[tostring(status)] = (counts[tostring(status)] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  io.write(string.format(
    'BENCH {"seconds": %f, "requests": %d, "p50_ms": %f, "p99_ms": %f, "errors": %d, ' ..
    '"timeouts": %d, "statuses": {%s}}\n',
    summary.duration / 1e6, summary.requests, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, table.concat(parts, ", ")))
end

-- Shared by the wrk scripts: Zipf-like picking, error counting, and a machine-readable summary
-- line ("RESULT requests/s p50_ms p99_ms errors") that run.sh collects into results.csv.
local M = {}

-- A picker over n items: uniform, or Zipf-like (s = 1) so a few items are hot.
function M.picker(n, zipf)
  if not zipf then
    return function() return math.random(n) end
  end
  local cdf, total = {}, 0
  for k = 1, n do
    total = total + 1 / k
    cdf[k] = total
  end
  for k = 1, n do
    cdf[k] = cdf[k] / total
  end
  return function()
    local u = math.random()
    local lo, hi = 1, n
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then lo = mid + 1 else hi = mid end
    end
    return lo
  end
end

function M.lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

function M.escape(s)
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

-- Each wrk thread counts in its own Lua state (the global `graphql_errors`); `done` runs in
-- the main state and sums the threads' counts.
local threads = {}
function M.setup(thread)
  threads[#threads + 1] = thread
end

function M.response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    graphql_errors = (graphql_errors or 0) + 1
  end
end

function M.done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = 0
  for _, t in ipairs(threads) do
    errors = errors + (t:get("graphql_errors") or 0)
  end
  io.write(string.format("graphql errors or non-200: %d\n", errors))
  io.write(string.format("RESULT %.1f %.2f %.2f %d\n", summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.timeout + summary.errors.connect + errors))
end

return M

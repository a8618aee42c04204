-- wrk script: a listing by id with its owner and images, the id drawn for every request from
-- $IDS_FILE (one listing id a line): uniformly, or Zipf-like (s = 1) when $DIST is "zipf", so a
-- few listings are hot and most are cold, as on a real site. Counts GraphQL errors.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do
  ids[#ids + 1] = line
end
local n = #ids
local zipf = os.getenv("DIST") == "zipf"
local cdf = {}
if zipf then
  local total = 0
  for k = 1, n do
    total = total + 1 / k
    cdf[k] = total
  end
  for k = 1, n do
    cdf[k] = cdf[k] / total
  end
end

local function pick()
  if not zipf then
    return ids[math.random(n)]
  end
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return ids[lo]
end

local query = "query($id: ID!) { property(id: $id) { id title monthlyPrice owner { displayName } images { url } } }"

init = function(args)
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000))
end

request = function()
  local body = '{"query":"' .. query .. '","variables":{"id":"' .. pick() .. '"}}'
  return wrk.format("POST", "/graphql", { ["Content-Type"] = "application/json" }, body)
end

local errors = 0
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
  end
end

done = function(summary, latency, requests)
  io.write(string.format("graphql errors or non-200: %d\n", errors))
end

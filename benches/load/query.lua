-- wrk script: POSTs the GraphQL document in $QUERY_FILE, with $TOKEN as bearer token if set,
-- and counts responses that carry GraphQL errors.
local f = assert(io.open(os.getenv("QUERY_FILE"), "r"))
local query = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token and #token > 0 then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.body = '{"query":' .. string.format("%q", query):gsub("\\\n", "\\n") .. '}'

local errors = 0
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
  end
end

done = function(summary, latency, requests)
  io.write(string.format("graphql errors or non-200: %d\n", errors))
end

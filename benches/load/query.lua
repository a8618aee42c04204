-- wrk script: POSTs the GraphQL document in $QUERY_FILE. With $TOKENS_FILE (one bearer token a
-- line), every request signs in as a user drawn Zipf-like from the file (a few users are very
-- active, most are not); with $TOKEN, always as that user; else anonymously.
package.path = "benches/load/?.lua;" .. package.path
local c = require("common")
local f = assert(io.open(os.getenv("QUERY_FILE"), "r"))
local body = '{"query":' .. c.escape(f:read("*a")) .. '}'
f:close()
local tokens = {}
if os.getenv("TOKENS_FILE") then
  tokens = c.lines(os.getenv("TOKENS_FILE"))
elseif os.getenv("TOKEN") and #os.getenv("TOKEN") > 0 then
  tokens = { os.getenv("TOKEN") }
end
local pick = #tokens > 0 and c.picker(#tokens, true) or nil

init = function(args)
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000))
end

request = function()
  local headers = { ["Content-Type"] = "application/json" }
  if pick then
    headers["Authorization"] = "Bearer " .. tokens[pick()]
  end
  return wrk.format("POST", "/graphql", headers, body)
end

setup = c.setup
response = c.response
done = c.done

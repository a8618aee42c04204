-- wrk script: a listing by id with its owner and images, the id drawn for every request from
-- $IDS_FILE (one listing id a line): uniformly, or Zipf-like when $DIST is "zipf", so a few
-- listings are hot and most are cold, as on a real site.
package.path = "benches/load/?.lua;" .. package.path
local c = require("common")
local ids = c.lines(os.getenv("IDS_FILE"))
local pick = c.picker(#ids, os.getenv("DIST") == "zipf")
local query = "query($id: ID!) { property(id: $id) { id title monthlyPrice owner { displayName } images { url } } }"

init = function(args)
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000))
end

request = function()
  local body = '{"query":"' .. query .. '","variables":{"id":"' .. ids[pick()] .. '"}}'
  return wrk.format("POST", "/graphql", { ["Content-Type"] = "application/json" }, body)
end

setup = c.setup
response = c.response
done = c.done

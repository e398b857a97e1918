-- wrk script: pre-signed network API calls (lookups or payments) for bench/cash.py.
--
--   wrk ... -s cash.lua URL -- KIND FILE
--
--   KIND  lookup  (an answer is good when its body says "payable":true)
--         payment (good when it says "status":"paid")
--         peer    (the approval endpoint itself: good when it says "payable":true)
--   FILE  one request a line: PATH <tab> NETWORK <tab> TIMESTAMP <tab> SIGNATURE <tab> BODY,
--         signed beforehand (HMAC-SHA256 is not available here). Requests are sent in the
--         file's order. Past the end, "lookup" and "payment" stop the thread (the run is then
--         shorter than -d; wrk's duration says how long it was), sending GET
--         /network/v1/failure_codes meanwhile ("filler", counted apart), so nothing is replayed;
--         "peer" starts again from the top. Either way such requests count as "wrapped".
--         "span_us" is the time from the first request sent to the last answer received (LuaJIT's
--         ffi reads the monotonic clock): the duration of a run that stopped early.
--
-- wrk calls request() once before the run to check it (that first request is never sent): the
-- caller builds lookups and payments alike, so both skip the same first line.
--
-- Every answer's status is counted and its body checked; the Server-Timing header's merchant,
-- caja and db durations (ms) are kept per request, and "rest", caja minus db (Caja's own time
-- outside its units of work). done() prints "BENCH_JSON {...}" with the counts, wrk's
-- latency percentiles (microseconds) and the Server-Timing percentiles, plus "BENCH_ERROR ..."
-- lines with a sample of bad answers, and (cash_paced.lua) "BENCH_OWN_MS ..." with every answer's
-- own time, so that a p99 can be taken over several runs together.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } cash_timespec;
int clock_gettime(int clk_id, cash_timespec *tp);
]])
local clock = ffi.new("cash_timespec")

local function now() -- CLOCK_MONOTONIC, seconds
   ffi.C.clock_gettime(1, clock)
   return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   kind = args[1]
   if kind ~= "lookup" and kind ~= "payment" and kind ~= "peer" then
      error("KIND must be lookup, payment or peer, not " .. tostring(kind))
   end
   wanted = (kind == "payment") and '"status":"paid"' or '"payable":true'
   -- Run it with ONE thread (-t1): each thread would send the whole file.
   reqs = {}
   for line in io.lines(args[2]) do
      if #line == 0 then
         break
      end
      local path, network, stamp, signature, body = string.match(line, "^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", path, {
         ["Content-Type"] = "application/json",
         ["X-Caja-Network"] = network,
         ["X-Caja-Timestamp"] = stamp,
         ["X-Caja-Signature"] = signature,
      }, body)
   end
   if #reqs == 0 then
      error("no requests in " .. tostring(args[2]))
   end
   issued = 0
   wrapped = 0
   filler = 0
   first_sent = 0
   last_answer = 0
   filler_request = wrk.format("GET", "/network/v1/failure_codes")
   statuses = {}
   good = 0
   bad = 0
   timed = 0
   caja = {}
   merchant = {}
   db = {}
   rest = {}
   error_samples = {}
end

function request()
   issued = issued + 1
   if issued == 2 then -- the first is wrk's check, before the run
      first_sent = now()
   end
   if issued > #reqs then
      wrapped = wrapped + 1
      if kind ~= "peer" then
         wrk.thread:stop()
         return filler_request
      end
   end
   return reqs[((issued - 1) % #reqs) + 1]
end

function response(status, headers, body)
   last_answer = now()
   if kind ~= "peer" and status == 200 and body and string.find(body, '"object":"list"', 1, true) then
      filler = filler + 1
      return
   end
   statuses[status] = (statuses[status] or 0) + 1
   if status == 200 and body and string.find(body, wanted, 1, true) then
      good = good + 1
   else
      bad = bad + 1
      if #error_samples < 3 then
         error_samples[#error_samples + 1] = status .. " " .. string.sub(body or "", 1, 400)
      end
   end
   local timing = headers["server-timing"] or headers["Server-Timing"]
   if timing then
      local m, c = string.match(timing, "merchant;dur=([%d.]+),%s*caja;dur=([%d.]+)")
      if m then
         timed = timed + 1
         merchant[timed] = tonumber(m)
         caja[timed] = tonumber(c)
         local d = string.match(timing, "db;dur=([%d.]+)")
         if d then -- older versions of Caja do not send it
            db[#db + 1] = tonumber(d)
            rest[#rest + 1] = tonumber(c) - tonumber(d)
         end
      end
   end
end

local function json_string(s)
   s = string.gsub(s, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end)
   return '"' .. s .. '"'
end

local function percentiles(values)
   table.sort(values)
   local n = #values
   if n == 0 then
      return "{}"
   end
   local parts = {}
   for _, p in ipairs({ 50, 90, 99, 99.9 }) do
      local rank = math.max(1, math.min(n, math.ceil(p / 100 * n))) -- nearest rank
      parts[#parts + 1] = string.format('"p%s":%.3f', string.gsub(tostring(p), "%.", ""), values[rank])
   end
   parts[#parts + 1] = string.format('"max":%.3f', values[n])
   parts[#parts + 1] = string.format('"count":%d', n)
   return "{" .. table.concat(parts, ",") .. "}"
end

-- Every thread's values of the list named `name`, in one list.
local function gathered(name)
   local all = {}
   for _, thread in ipairs(threads) do
      for _, v in ipairs(thread:get(name)) do
         all[#all + 1] = v
      end
   end
   return all
end

function done(summary, latency, requests)
   local counts = {}
   local samples = gathered("error_samples")
   local t_issued, t_wrapped, t_good, t_bad, t_filler, span = 0, 0, 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + count
      end
      t_issued = t_issued + thread:get("issued")
      t_wrapped = t_wrapped + thread:get("wrapped")
      t_good = t_good + thread:get("good")
      t_bad = t_bad + thread:get("bad")
      t_filler = t_filler + thread:get("filler")
      span = math.max(span, thread:get("last_answer") - thread:get("first_sent"))
   end
   local parts = {}
   for status, count in pairs(counts) do
      parts[#parts + 1] = string.format('"%d":%d', status, count)
   end
   local lat = {}
   for _, p in ipairs({ 50, 90, 99, 99.9 }) do
      lat[#lat + 1] = string.format('"p%s":%d', string.gsub(tostring(p), "%.", ""), latency:percentile(p))
   end
   local e = summary.errors
   io.write(
      "BENCH_JSON ",
      string.format(
         '{"requests":%d,"duration_us":%d,"issued":%d,"wrapped":%d,"filler":%d,"good":%d,"bad":%d,"span_us":%d,'
            .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
            .. '"latency_us":{"min":%d,"max":%d,"mean":%.1f,%s},"statuses":{%s},'
            .. '"caja_ms":%s,"merchant_ms":%s,"db_ms":%s,"rest_ms":%s}',
         summary.requests, summary.duration, t_issued, t_wrapped, t_filler, t_good, t_bad, span * 1e6,
         e.connect, e.read, e.write, e.timeout,
         latency.min, latency.max, latency.mean, table.concat(lat, ","), table.concat(parts, ","),
         percentiles(gathered("caja")), percentiles(gathered("merchant")), percentiles(gathered("db")),
         percentiles(gathered("rest"))
      ),
      "\n"
   )
   for _, sample in ipairs(samples) do
      io.write("BENCH_ERROR ", json_string(sample), "\n")
   end
   if keep_own_samples then -- cash_paced.lua: every answer's own time, for a p99 over several runs
      local own = {}
      for i, v in ipairs(gathered("caja")) do
         own[i] = string.format("%.3f", v)
      end
      io.write("BENCH_OWN_MS ", table.concat(own, " "), "\n")
   end
end

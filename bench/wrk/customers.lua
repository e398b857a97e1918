-- wrk script: create or read customers on Caja (Conekta v2) or localstripe (Stripe v1).
--
--   wrk ... -s customers.lua URL -- MODE API KEY [IDS_FILE]
--
--   MODE      create | read
--   API       caja | stripe
--   KEY       the bearer token
--   IDS_FILE  (read) one customer id a line; requests rotate through them
--
-- Every response's status is counted per thread, and done() prints one line,
-- "BENCH_JSON {...}", with the summary, latency percentiles (microseconds) and
-- the status counts, plus "BENCH_ERROR ..." lines with a sample of non-2xx bodies.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

function init(args)
   mode = args[1]
   api = args[2]
   local key = args[3]
   if mode ~= "create" and mode ~= "read" then
      error("MODE must be create or read, not " .. tostring(mode))
   end
   if api ~= "caja" and api ~= "stripe" then
      error("API must be caja or stripe, not " .. tostring(api))
   end
   statuses = {}
   error_samples = {}
   n = 0
   -- Unique per run and thread, so names and emails never repeat across runs.
   prefix = string.format("%x%d", os.time(), tid)
   if api == "caja" then
      base = "/customers"
      post_headers = {
         ["Authorization"] = "Bearer " .. key,
         ["Accept"] = "application/vnd.conekta-v2.3.0+json",
         ["Content-Type"] = "application/json",
      }
      get_headers = {
         ["Authorization"] = "Bearer " .. key,
         ["Accept"] = "application/vnd.conekta-v2.3.0+json",
      }
   else
      base = "/v1/customers"
      post_headers = {
         ["Authorization"] = "Bearer " .. key,
         ["Content-Type"] = "application/x-www-form-urlencoded",
      }
      get_headers = { ["Authorization"] = "Bearer " .. key }
   end
   if mode == "read" then
      ids = {}
      for line in io.lines(args[4]) do
         if #line > 0 then
            ids[#ids + 1] = line
         end
      end
      if #ids == 0 then
         error("no ids in " .. tostring(args[4]))
      end
      -- Threads start at different places in the list.
      n = (tid * 7919) % #ids
   end
end

function request()
   n = n + 1
   if mode == "read" then
      return wrk.format("GET", base .. "/" .. ids[(n % #ids) + 1], get_headers)
   end
   local phone = string.format("+5215%09d", n % 1000000000)
   local body
   if api == "caja" then
      body = string.format(
         '{"name":"Cliente %s %d","email":"cliente.%s.%d@example.com","phone":"%s",'
            .. '"payment_sources":[{"type":"cash_recurrent"}]}',
         prefix, n, prefix, n, phone
      )
   else
      body = string.format(
         "name=Cliente+%s+%d&email=cliente.%s.%d%%40example.com&phone=%%2B%s",
         prefix, n, prefix, n, string.sub(phone, 2)
      )
   end
   return wrk.format("POST", base, post_headers, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status >= 300 and #error_samples < 3 then
      error_samples[#error_samples + 1] = status .. " " .. string.sub(body or "", 1, 400)
   end
end

local function json_string(s)
   s = string.gsub(s, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end)
   return '"' .. s .. '"'
end

function done(summary, latency, requests)
   local counts = {}
   local samples = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + count
      end
      for _, sample in ipairs(thread:get("error_samples")) do
         samples[#samples + 1] = sample
      end
   end
   local parts = {}
   for status, count in pairs(counts) do
      parts[#parts + 1] = string.format('"%d":%d', status, count)
   end
   local percentiles = {}
   for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
      percentiles[#percentiles + 1] = string.format('"p%s":%d', string.gsub(tostring(p), "%.", ""), latency:percentile(p))
   end
   local e = summary.errors
   io.write(
      "BENCH_JSON ",
      string.format(
         '{"requests":%d,"duration_us":%d,"bytes":%d,'
            .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"non_2xx_3xx":%d,'
            .. '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,%s},"statuses":{%s}}',
         summary.requests, summary.duration, summary.bytes,
         e.connect, e.read, e.write, e.timeout, e.status,
         latency.min, latency.max, latency.mean, latency.stdev, table.concat(percentiles, ","),
         table.concat(parts, ",")
      ),
      "\n"
   )
   for _, sample in ipairs(samples) do
      io.write("BENCH_ERROR ", json_string(sample), "\n")
   end
end

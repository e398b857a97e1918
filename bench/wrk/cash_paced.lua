-- wrk script: cash.lua's signed requests, with each connection pausing between its calls the way a
-- store's cashier does (exponential pauses, mean PACE_MS): an offered load below saturation, so
-- the latencies measured are the service's own and not the queue of a closed loop at full speed.
--
--   wrk ... -s cash_paced.lua URL -- KIND FILE PACE_MS
--
-- KIND and FILE as in cash.lua, whose counting and report this script reuses unchanged.

local here = debug.getinfo(1, "S").source:sub(2):match("^(.*/)") or "./"
dofile(here .. "cash.lua")

local base_init = init
-- cash.lua's done() then prints every answer's own time too (BENCH_OWN_MS).
keep_own_samples = true

function init(args)
   base_init(args)
   pace_ms = tonumber(args[3])
   if not pace_ms or pace_ms <= 0 then
      error("PACE_MS must be a positive number of milliseconds, not " .. tostring(args[3]))
   end
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function delay()
   return math.floor(-math.log(1 - math.random()) * pace_ms)
end

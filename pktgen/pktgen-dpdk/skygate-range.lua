-- SPDX-License-Identifier: BSD-3-Clause
--
-- skygate range scenario for Pktgen-DPDK 23.06.x: one class, one remote country, both
-- directions, range mode over the subscriber block and the country's address block.
-- Checks that what port 0 sent arrived on port 1 and back, within SKY_EXPECT.
--
--   SKY_CLASS=bulk SKY_COUNTRY=US SKY_COUNT=100000 SKY_RATE=0.02 SKY_SIZE=64
--   SKY_EXPECT=1.0      received/sent wanted (1.0 = nothing lost, 0 = all dropped)
--   SKY_TOLERANCE=0     allowed deviation of the ratio
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
pcall(require, "Pktgen") -- optional helpers; the pktgen table is built in
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local sg = dofile(here .. "skygate_common.lua")

local class = sg.env("SKY_CLASS", "bulk")
local cc = sg.env("SKY_COUNTRY", "US")

local o = sg.begin("100000")
if o == nil then return sg.finish("range") end
local count, rate, size, expect, tol = o.count, o.rate, o.size, o.expect, o.tol
sg.range_flow(class, cc, size)
sg.log("skygate range: class %s (dscp %d), remote %s, %d packets per port at %g%%, %d B",
       class, sg.classes[class].dscp, cc, count, rate, size)
local r = sg.send(count, rate, 500, 120)
sg.verdict(string.format("up   %s %s", class, cc), r.up_sent, r.up_recv, expect - tol,
           expect + tol)
sg.verdict(string.format("down %s %s", class, cc), r.down_sent, r.down_recv, expect - tol,
           expect + tol)
sg.finish("range")

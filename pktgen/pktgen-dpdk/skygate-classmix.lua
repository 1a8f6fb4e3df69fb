-- SPDX-License-Identifier: BSD-3-Clause
--
-- skygate class-mix scenario for Pktgen-DPDK 23.06.x: sequence mode, SKY_SEQ entries per
-- port (<= 16) laid out exactly by the class mix and the remote country mix; port 0
-- carries the upstream packets, port 1 their downstream mirrors. Checks the forwarded
-- ratio in each direction against SKY_EXPECT.
--
--   SKY_CLASSES=realtime:10,interactive:30,bulk:50,scavenger:10
--   SKY_COUNTRIES=US:40,DE:20,CN:10,RU:10,FR:10,GB:10   SKY_SEQ=10
--   SKY_COUNT=100000 SKY_RATE=0.02 SKY_SIZE=64 SKY_EXPECT=1.0 SKY_TOLERANCE=0
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
pcall(require, "Pktgen") -- optional helpers; the pktgen table is built in
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local sg = dofile(here .. "skygate_common.lua")

local classes = sg.mix(sg.env("SKY_CLASSES", "realtime:10,interactive:30,bulk:50,scavenger:10"))
local countries = sg.mix(sg.env("SKY_COUNTRIES", "US:40,DE:20,CN:10,RU:10,FR:10,GB:10"))
local nseq = tonumber(sg.env("SKY_SEQ", "10"))

local o = sg.begin("100000")
if o == nil then return sg.finish("classmix") end
local count, rate, size, expect, tol = o.count, o.rate, o.size, o.expect, o.tol
local entries = sg.sequence_mix(classes, countries, nseq, size)
for i, e in ipairs(entries) do
    sg.log("  seq %2d: %-12s dscp %2d  remote %s", i - 1, e.class, sg.classes[e.class].dscp, e.cc)
end
local r = sg.send(count, rate, 500, 120)
sg.verdict("up   class mix", r.up_sent, r.up_recv, expect - tol, expect + tol)
sg.verdict("down class mix", r.down_sent, r.down_recv, expect - tol, expect + tol)
sg.finish("classmix")

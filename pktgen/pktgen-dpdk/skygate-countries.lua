-- SPDX-License-Identifier: BSD-3-Clause
--
-- skygate remote-country scenario for Pktgen-DPDK 23.06.x: for each country in
-- SKY_COUNTRIES, range mode from the subscriber block to that country's address block
-- (both directions), then a verdict per country: countries in SKY_BLOCKED must be
-- dropped (ratio 0), the others forwarded whole (ratio 1 - SKY_TOLERANCE .. 1).
-- Pair it with skygate's country_block policy, e.g. blocked_remote_countries: { KP: 1, IR: 1 }.
--
--   SKY_COUNTRIES=US,DE,CN,RU,KP,IR  SKY_BLOCKED=KP,IR  SKY_CLASS=bulk
--   SKY_COUNT=50000 SKY_RATE=0.02 SKY_SIZE=64 SKY_TOLERANCE=0
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
pcall(require, "Pktgen") -- optional helpers; the pktgen table is built in
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local sg = dofile(here .. "skygate_common.lua")

local countries = sg.list(sg.env("SKY_COUNTRIES", "US,DE,CN,RU,KP,IR"))
local blocked = {}
for _, c in ipairs(sg.list(sg.env("SKY_BLOCKED", ""))) do blocked[c] = true end
local class = sg.env("SKY_CLASS", "bulk")

local o = sg.begin("50000")
if o == nil then return sg.finish("countries") end
local count, rate, size, tol = o.count, o.rate, o.size, o.tol
for _, cc in ipairs(countries) do
    sg.range_flow(class, cc, size)
    local r = sg.send(count, rate, 500, 120)
    local lo, hi = 1 - tol, 1
    if blocked[cc] then lo, hi = 0, tol end
    local what = blocked[cc] and "blocked" or "allowed"
    sg.verdict(string.format("up   %s %s", cc, what), r.up_sent, r.up_recv, lo, hi)
    sg.verdict(string.format("down %s %s", cc, what), r.down_sent, r.down_recv, lo, hi)
end
sg.finish("countries")

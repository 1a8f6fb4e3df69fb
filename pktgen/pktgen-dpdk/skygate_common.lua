-- SPDX-License-Identifier: BSD-3-Clause
--
-- Shared tables and helpers for the skygate scripts for Pktgen-DPDK (23.06.x, Lua 5.3).
-- Loaded by the scenario scripts with dofile(); not a scenario itself.
--
-- Port 0 = terminal side (skygate's uplink port), port 1 = internet side (backhaul).
-- Upstream packets leave port 0 and must arrive on port 1; downstream the other way.
--
-- Every knob can be overridden from the environment (SKY_*), see README.md.

local M = {}

local function env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then return default end
    return v
end
M.env = env

M.UP_PORT = tonumber(env("SKY_UP_PORT", "0"))
M.DOWN_PORT = tonumber(env("SKY_DOWN_PORT", "1"))

-- Subscriber block: the addresses skygate-pktgen --gen-subs N writes to its CSV
-- (100.64.0.1 = subscriber id 1, ... ; 1000 subscribers end at 100.64.3.232).
M.SUB_FIRST = env("SKY_SUB_FIRST", "100.64.0.1")
M.SUB_LAST = env("SKY_SUB_LAST", "100.64.3.232")

-- Class -> DSCP and services; the same table as pktgen/pg_opts.c and the demo config.
-- tos = DSCP << 2.
M.classes = {
    realtime    = { dscp = 46, svc = { { "udp", 5060 }, { "udp", 53 } } },
    interactive = { dscp = 0,  svc = { { "tcp", 443 }, { "tcp", 22 } } },
    bulk        = { dscp = 0,  svc = { { "tcp", 80 }, { "udp", 4000 } } },
    scavenger   = { dscp = 8,  svc = { { "udp", 6881 } } },
}
M.class_order = { "realtime", "interactive", "bulk", "scavenger" }

-- Remote prefixes per country, each checked against the libloc database
-- (/usr/share/libloc-location/location.db, 2022-10-29): every sampled address of the
-- block geolocates to the country. Re-check with: location lookup <address>
M.remote = {
    US = { v4 = { "3.13.0.1", "3.13.255.254" },    v6 = "2001:420::1" },
    DE = { v4 = { "3.120.0.1", "3.123.255.254" },  v6 = "2001:658::1" },
    CN = { v4 = { "1.2.16.1", "1.2.31.254" },      v6 = "2001:252:ff00::1" },
    GB = { v4 = { "2.22.144.1", "2.22.159.254" },  v6 = "2001:728::1" },
    FR = { v4 = { "2.2.0.1", "2.2.255.254" },      v6 = "2001:661:4000::1" },
    JP = { v4 = { "1.1.64.1", "1.1.95.254" },      v6 = "2001:200:c000::1" },
    BR = { v4 = { "18.229.0.1", "18.229.255.254" }, v6 = "2001:1284::1" },
    RU = { v4 = { "2.60.64.1", "2.60.95.254" },    v6 = "2001:b08::1" },
    IN = { v4 = { "1.38.0.1", "1.38.127.254" },    v6 = "2001:e48::1" },
    IR = { v4 = { "2.146.0.1", "2.146.255.254" },  v6 = "2001:4188::1" },
    KP = { v4 = { "175.45.176.1", "175.45.176.254" } },
}

function M.log(fmt, ...)
    io.write(string.format(fmt, ...) .. "\n")
    io.flush()
end

-- split "a,b,c"
function M.list(s)
    local t = {}
    for w in string.gmatch(s, "[^,%s]+") do t[#t + 1] = w end
    return t
end

-- "realtime:10,bulk:50" -> { {name, weight}, ... }
function M.mix(s)
    local t = {}
    for name, w in string.gmatch(s, "([%w_]+):?(%d*)") do
        t[#t + 1] = { name, tonumber(w) or 1 }
    end
    return t
end

local function ports_str()
    return string.format("%d,%d", M.UP_PORT, M.DOWN_PORT)
end
M.ports = ports_str

-- Wait until both links are up (memif connects asynchronously). Returns true if up.
function M.wait_links(seconds)
    local deadline = os.time() + seconds
    repeat
        local st = pktgen.linkState(ports_str())
        local up = 0
        for _, p in ipairs({ M.UP_PORT, M.DOWN_PORT }) do
            if st[p] ~= nil and string.find(st[p], "UP", 1, true) then up = up + 1 end
        end
        if up == 2 then return true end
        pktgen.delay(200)
    until os.time() >= deadline
    M.log("skygate: links not up after %d s: port %d %s, port %d %s", seconds, M.UP_PORT,
          tostring(pktgen.linkState(ports_str())[M.UP_PORT]), M.DOWN_PORT,
          tostring(pktgen.linkState(ports_str())[M.DOWN_PORT]))
    return false
end

-- What every scenario starts with: the knobs SKY_COUNT (default_count), SKY_RATE (% of line
-- rate), SKY_SIZE (bytes), SKY_EXPECT and SKY_TOLERANCE (the share of packets that must
-- arrive), then the wait for both links (SKY_WAIT_LINK seconds). Returns the knobs, or nil
-- (one failure counted) when the links stay down.
function M.begin(default_count)
    local o = {
        count = tonumber(env("SKY_COUNT", default_count)),
        rate = tonumber(env("SKY_RATE", "0.02")),
        size = tonumber(env("SKY_SIZE", "64")),
        expect = tonumber(env("SKY_EXPECT", "1.0")),
        tol = tonumber(env("SKY_TOLERANCE", "0")),
    }
    if not M.wait_links(tonumber(env("SKY_WAIT_LINK", "10"))) then
        M.failures = 1
        return nil
    end
    return o
end

-- Range mode for one class and one remote country, both directions:
--   up   (port 0): src = subscriber block, dst = country block, sport ephemeral, dport = service
--   down (port 1): src = country block, dst = subscriber block, sport = service, dport ephemeral
function M.range_flow(class, cc, size)
    local c = M.classes[class]
    local r = M.remote[cc]
    assert(c, "unknown class " .. tostring(class))
    assert(r, "no remote block for country " .. tostring(cc))
    local proto, svc = c.svc[1][1], c.svc[1][2]
    local tos = c.dscp * 4
    local up, dn = tostring(M.UP_PORT), tostring(M.DOWN_PORT)

    -- one range field: start and min at first, then up to last by inc
    local function span(f, p, first, last, inc)
        f(p, "start", first)
        f(p, "min", first)
        f(p, "max", last)
        f(p, "inc", inc)
    end
    for _, p in ipairs({ up, dn }) do
        pktgen.set_type(p, "ipv4")
        pktgen.set_proto(p, proto)
        pktgen.range.ip_proto(p, proto)
        span(pktgen.range.tos, p, tos, tos, 0)
        span(pktgen.range.pkt_size, p, size, size, 0)
    end
    local function addr(p, which, first, last, inc)
        span((which == "src") and pktgen.range.src_ip or pktgen.range.dst_ip, p, first, last, inc)
    end
    local function port(p, which, first, last, inc)
        span((which == "src") and pktgen.range.src_port or pktgen.range.dst_port, p, first, last,
             inc)
    end
    -- subscribers step by one address; remotes step by a prime so pairs keep changing
    addr(up, "src", M.SUB_FIRST, M.SUB_LAST, "0.0.0.1")
    addr(up, "dst", r.v4[1], r.v4[2], "0.0.0.7")
    port(up, "src", 32768, 60999, 1)
    port(up, "dst", svc, svc, 0)
    addr(dn, "src", r.v4[1], r.v4[2], "0.0.0.7")
    addr(dn, "dst", M.SUB_FIRST, M.SUB_LAST, "0.0.0.1")
    port(dn, "src", svc, svc, 0)
    port(dn, "dst", 32768, 60999, 1)
    pktgen.set_range(ports_str(), "on")
end

-- Sequence mode: n entries per port (n <= 16) that follow the class mix and the country
-- mix exactly by largest remainder. Each entry is one subscriber talking to one remote.
local function apportion(mix, n)
    local sum = 0
    for _, e in ipairs(mix) do sum = sum + e[2] end
    local out, given, rem = {}, 0, {}
    for i, e in ipairs(mix) do
        local exact = n * e[2] / sum
        out[i] = math.floor(exact)
        rem[i] = exact - out[i]
        given = given + out[i]
    end
    while given < n do
        local best = 1
        for i = 2, #mix do if rem[i] > rem[best] then best = i end end
        out[best] = out[best] + 1
        rem[best] = -1
        given = given + 1
    end
    local seq = {}
    for i, e in ipairs(mix) do
        for _ = 1, out[i] do seq[#seq + 1] = e[1] end
    end
    return seq
end
M.apportion = apportion

local function ip4_add(a, k)
    local o1, o2, o3, o4 = a:match("(%d+)%.(%d+)%.(%d+)%.(%d+)")
    local v = ((tonumber(o1) * 256 + tonumber(o2)) * 256 + tonumber(o3)) * 256 + tonumber(o4) + k
    return string.format("%d.%d.%d.%d", (v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255)
end
M.ip4_add = ip4_add

function M.sequence_mix(class_mix, country_mix, n, size)
    local classes = apportion(class_mix, n)
    local countries = apportion(country_mix, n)
    -- rotate the countries so a class does not always meet the same country
    local entries = {}
    for i = 1, n do
        local cls = M.classes[classes[i]]
        local cc = countries[((i * 3) % n) + 1]
        local svc = cls.svc[(i % #cls.svc) + 1]
        local sub = ip4_add(M.SUB_FIRST, i - 1)
        local remote = ip4_add(M.remote[cc].v4[1], 16 * i)
        local eph = 40000 + i
        entries[i] = { class = classes[i], cc = cc }
        -- upstream entry on port 0, its mirror downstream on port 1
        pktgen.seqTable(i - 1, tostring(M.UP_PORT), {
            eth_dst_addr = "02:00:00:00:00:02", eth_src_addr = "02:00:00:00:00:01",
            ip_dst_addr = remote, ip_src_addr = sub .. "/32",
            sport = eph, dport = svc[2], ethType = "ipv4", ipProto = svc[1],
            vlanid = 1, pktSize = size, cos = 0, tos = cls.dscp * 4, gtpu_teid = 0,
        })
        pktgen.seqTable(i - 1, tostring(M.DOWN_PORT), {
            eth_dst_addr = "02:00:00:00:00:01", eth_src_addr = "02:00:00:00:00:02",
            ip_dst_addr = sub, ip_src_addr = remote .. "/32",
            sport = svc[2], dport = eph, ethType = "ipv4", ipProto = svc[1],
            vlanid = 1, pktSize = size, cos = 0, tos = cls.dscp * 4, gtpu_teid = 0,
        })
    end
    pktgen.set(ports_str(), "seq_cnt", n)
    return entries
end

local function stats()
    local s = pktgen.portStats(ports_str(), "port")
    return { up_tx = s[M.UP_PORT].opackets, up_rx = s[M.UP_PORT].ipackets,
             dn_tx = s[M.DOWN_PORT].opackets, dn_rx = s[M.DOWN_PORT].ipackets }
end
M.stats = stats

-- Send count packets per port at rate percent, wait for the end plus drain_ms, and return
-- the counter deltas: up sent (port 0 tx) / up received (port 1 rx) and the reverse.
-- Pktgen refreshes its port counters once a second, so reads wait past a refresh.
function M.send(count, rate_pct, drain_ms, max_s)
    local ps = ports_str()
    pktgen.delay(1100)
    local before = stats()
    pktgen.set(ps, "count", count)
    pktgen.set(ps, "rate", rate_pct)
    pktgen.start(ps)
    pktgen.delay(500)
    local deadline = os.time() + max_s
    repeat
        pktgen.delay(250)
        local s = pktgen.isSending(ps)
        local busy = (s[M.UP_PORT] == "y") or (s[M.DOWN_PORT] == "y")
    until (not busy) or os.time() >= deadline
    pktgen.stop(ps)
    pktgen.delay(drain_ms + 1100)
    local after = stats()
    return {
        up_sent = after.up_tx - before.up_tx, up_recv = after.dn_rx - before.dn_rx,
        down_sent = after.dn_tx - before.dn_tx, down_recv = after.up_rx - before.up_rx,
    }
end

-- One verdict line; ratio = received / sent; ok when within [lo, hi].
M.failures = 0
function M.verdict(what, sent, recv, lo, hi)
    local ratio = sent > 0 and recv / sent or 0
    local ok = sent > 0 and ratio >= lo and ratio <= hi
    if not ok then M.failures = M.failures + 1 end
    M.log("%-4s %-40s sent %10d recv %10d ratio %.4f (want %.2f..%.2f)",
          ok and "PASS" or "FAIL", what, sent, recv, ratio, lo, hi)
    return ok
end

function M.finish(name)
    M.log("skygate %s: %s (%d failed checks)", name, M.failures == 0 and "PASS" or "FAIL",
          M.failures)
    if env("SKY_QUIT", "1") == "1" then pktgen.quit() end
end

return M

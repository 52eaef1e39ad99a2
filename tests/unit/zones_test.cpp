// SPDX-License-Identifier: BSD-3-Clause
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "zones/zones.h"

using namespace weir;
using namespace weir::zones;

// "z" + N (written out: GCC 12 warns falsely on the operator+ of a literal and a temporary).
static std::string zname(unsigned long n) {
    std::string s = "z";
    s += std::to_string(n);
    return s;
}

namespace {

packet::Tuple tuple(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport) {
    packet::Tuple t{};
    if (inet_pton(AF_INET, src, t.src) == 1) {
        inet_pton(AF_INET, dst, t.dst);
        t.ip_version = 4;
    } else {
        inet_pton(AF_INET6, src, t.src);
        inet_pton(AF_INET6, dst, t.dst);
        t.ip_version = 6;
    }
    t.proto = proto;
    t.sport = sport;
    t.dport = dport;
    return t;
}

flow::FlowRecord record(const packet::Tuple& t, uint64_t pk, uint64_t by, uint64_t rpk, uint64_t rby,
                        uint64_t t0 = 1000) {
    flow::FlowRecord r{};
    r.tuple = t;
    r.fwd.packets = pk;
    r.fwd.octets = by;
    r.fwd.first_ns = t0;
    r.fwd.last_ns = t0 + 10;
    r.rev.packets = rpk;
    r.rev.octets = rby;
    r.rev.first_ns = rpk ? t0 + 1 : 0;
    r.rev.last_ns = rpk ? t0 + 20 : 0;
    return r;
}

std::vector<ZoneSpec> site() {
    return {{"users", {parse_prefix("10.1.0.0/16"), parse_prefix("2001:db8:1::/48")}},
            {"servers", {parse_prefix("10.2.0.0/24")}},
            {"admin", {parse_prefix("10.1.9.0/24")}},  // inside users: the longer prefix wins
            {"mgmt", {parse_prefix("10.2.0.250/32")}}};
}

const nlohmann::json* cell(const nlohmann::json& m, const std::string& from, const std::string& to,
                           const std::string& proto, int port) {
    for (const auto& c : m["matrix"])
        if (c["from"] == from && c["to"] == to && c["protocol"] == proto &&
            c.value(c.contains("port") ? "port" : "icmp_type", -1) == port)
            return &c;
    return nullptr;
}

}  // namespace

TEST(Zones, PrefixesParseAndBadOnesSayWhy) {
    const Prefix p = parse_prefix("10.2.0.0/24");
    EXPECT_EQ(p.version, 4);
    EXPECT_EQ(p.len, 24);
    EXPECT_EQ(prefix_text(p), "10.2.0.0/24");
    EXPECT_EQ(parse_prefix("2001:db8::1").len, 128);
    EXPECT_EQ(parse_prefix("0.0.0.0/0").len, 0);
    try {
        parse_prefix("10.2.0.1/24");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("did you mean 10.2.0.0/24"), std::string::npos) << e.what();
    }
    EXPECT_THROW(parse_prefix("10.2.0.0/33"), std::invalid_argument);
    EXPECT_THROW(parse_prefix("10.2.0.0/"), std::invalid_argument);
    EXPECT_THROW(parse_prefix("example.com/8"), std::invalid_argument);
    EXPECT_THROW(parse_prefix("2001:db8::/129"), std::invalid_argument);
}

TEST(Zones, LongestPrefixWinsAndUnzonedIsOther) {
    ZoneMap z(site());
    auto zone = [&](const char* a) {
        const packet::Tuple t = tuple(a, a, 6, 1, 1);
        return z.name(z.lookup(t.src, t.ip_version));
    };
    EXPECT_EQ(zone("10.1.3.4"), "users");
    EXPECT_EQ(zone("10.1.9.4"), "admin");
    EXPECT_EQ(zone("10.2.0.7"), "servers");
    EXPECT_EQ(zone("10.2.0.250"), "mgmt");
    EXPECT_EQ(zone("10.3.0.1"), "other");
    EXPECT_EQ(zone("2001:db8:1:5::9"), "users");
    EXPECT_EQ(zone("2001:db8:2::9"), "other");
    EXPECT_THROW(ZoneMap({{"a", {parse_prefix("10.0.0.0/8")}}, {"b", {parse_prefix("10.0.0.0/8")}}}),
                 std::invalid_argument);
    EXPECT_THROW(ZoneMap({{"any", {parse_prefix("10.0.0.0/8")}}}), std::invalid_argument);
    EXPECT_THROW(ZoneMap({{"a", {}}, {"a", {}}}), std::invalid_argument);
}

TEST(Zones, MatrixCountsByClientServerAndService) {
    Matrix m(site(), {}, 1000);
    std::vector<Violation> v;
    const flow::FlowRecord r[] = {
        record(tuple("10.1.3.4", "10.2.0.7", 6, 50000, 443), 10, 1000, 8, 9000),
        record(tuple("10.1.3.5", "10.2.0.8", 6, 50001, 443), 2, 120, 1, 60),
        record(tuple("10.1.3.5", "10.2.0.8", 17, 5353, 53), 1, 70, 1, 200),
        record(tuple("10.1.3.5", "10.2.0.8", 1, 0, 8 << 8), 3, 252, 0, 0),  // echo request
        record(tuple("10.2.0.8", "8.8.8.8", 17, 40000, 53), 1, 60, 1, 90),
    };
    flow::FlowRecord copy = r[0];
    copy.flags = flow::FlowRecord::kOuterCopy;
    m.count(r, 5, v);
    m.count(&copy, 1, v);
    EXPECT_TRUE(v.empty());
    const nlohmann::json j = m.to_json(100);
    EXPECT_EQ(j["cells"], 4);
    EXPECT_EQ(m.stats().records, 5u);
    EXPECT_EQ(m.stats().outer_copies, 1u);
    const auto* https = cell(j, "users", "servers", "tcp", 443);
    ASSERT_NE(https, nullptr);
    EXPECT_EQ((*https)["flows"], 2);
    EXPECT_EQ((*https)["packets"], 21);
    EXPECT_EQ((*https)["bytes"], 10180);
    EXPECT_EQ((*https)["client_bytes"], 1120);
    EXPECT_EQ((*https)["server_packets"], 9);
    ASSERT_NE(cell(j, "users", "servers", "icmp", 8), nullptr);
    ASSERT_NE(cell(j, "servers", "other", "udp", 53), nullptr);
    EXPECT_EQ(j["matrix"][0]["port"], 443);  // heaviest first
    EXPECT_FALSE(j["matrix"][0].contains("allowed"));
    EXPECT_EQ(m.to_json(2)["matrix"].size(), 2u);
    const auto pairs = m.pair_totals();
    ASSERT_EQ(pairs.size(), 2u);
}

TEST(Zones, PolicyFlagsWhatItDoesNotAllow) {
    PolicySpec p;
    p.on = true;
    p.allow = {{"users", "servers", 6, {{443, 443}, {8000, 8080}}},
               {"any", "servers", 17, {{53, 53}}},
               {"admin", "mgmt", 17, {{161, 161}}},
               {"users", "servers", 1, {{8, 8}}}};
    Matrix m(site(), p, 1000);
    std::vector<Violation> v;
    const flow::FlowRecord ok[] = {
        record(tuple("10.1.3.4", "10.2.0.7", 6, 50000, 443), 10, 1000, 8, 9000),
        record(tuple("10.1.3.4", "10.2.0.7", 6, 50002, 8080), 1, 60, 1, 60),
        record(tuple("10.3.3.3", "10.2.0.7", 17, 1234, 53), 1, 60, 1, 60),
        record(tuple("10.1.9.9", "10.2.0.250", 17, 1234, 161), 1, 80, 1, 90),
        record(tuple("10.1.3.4", "10.2.0.7", 1, 0, 8 << 8), 1, 84, 0, 0),
    };
    m.count(ok, 5, v);
    EXPECT_TRUE(v.empty());
    const flow::FlowRecord bad[] = {
        record(tuple("10.1.3.4", "10.2.0.250", 17, 1234, 161), 1, 80, 1, 90),  // SNMP to mgmt from users
        record(tuple("10.1.3.4", "10.2.0.7", 6, 50003, 22), 3, 180, 0, 0),     // SSH not allowed
        record(tuple("10.2.0.7", "10.1.3.4", 6, 443, 50000), 1, 60, 0, 0),     // servers opening to users
        record(tuple("10.1.3.4", "10.2.0.7", 1, 0, 13 << 8), 1, 60, 0, 0),     // ICMP timestamp
    };
    m.count(bad, 4, v);
    ASSERT_EQ(v.size(), 4u);
    EXPECT_EQ(v[0].from, "users");
    EXPECT_EQ(v[0].to, "mgmt");
    EXPECT_EQ(v[0].port, 161);
    EXPECT_EQ(v[1].port, 22);
    EXPECT_EQ(v[1].packets, 3u);
    EXPECT_EQ(v[2].from, "servers");
    EXPECT_EQ(v[3].port, 13);
    EXPECT_EQ(m.stats().violations, 4u);
    // A cell once judged stays judged: the same service again is again a violation.
    m.count(&bad[1], 1, v);
    EXPECT_EQ(v.size(), 5u);
    const nlohmann::json j = m.to_json(100);
    const auto* ssh = cell(j, "users", "servers", "tcp", 22);
    ASSERT_NE(ssh, nullptr);
    EXPECT_EQ((*ssh)["allowed"], false);
    EXPECT_THROW(Matrix(site(), PolicySpec{true, {{"nobody", "servers", -1, {}}}}, 10), std::invalid_argument);
}

TEST(Zones, FullMatrixCountsWhatItCannotHoldAndStillJudges) {
    PolicySpec p;
    p.on = true;
    p.allow = {{"any", "any", 6, {}}};
    Matrix m(site(), p, 16);
    std::vector<Violation> v;
    for (uint16_t port = 1; port <= 40; ++port) {
        const flow::FlowRecord r = record(tuple("10.1.3.4", "10.2.0.7", 6, 50000, port), 1, 60, 1, 60);
        m.count(&r, 1, v);
    }
    const flow::FlowRecord u = record(tuple("10.1.3.4", "10.2.0.7", 17, 5000, 9999), 1, 60, 0, 0);
    m.count(&u, 1, v);
    EXPECT_EQ(m.cells(), 16u);
    EXPECT_EQ(m.stats().records, 16u);
    EXPECT_EQ(m.stats().overflow_records, 25u);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].port, 9999);
}

TEST(Zones, RangeLookupAgreesWithLongestPrefixByBruteForce) {
    std::mt19937_64 rng(3);
    std::vector<ZoneSpec> zs;
    std::vector<std::pair<Prefix, std::string>> all;
    for (int z = 0; z < 12; ++z) {
        ZoneSpec s{zname(z), {}};
        for (int i = 0; i < 40; ++i) {
            Prefix p;
            p.version = rng() % 4 ? 4 : 6;
            p.len = static_cast<uint8_t>(p.version == 4 ? 8 + rng() % 25 : 16 + rng() % 113);
            for (int b = 0; b < (p.version == 4 ? 4 : 16); ++b) p.addr[b] = static_cast<uint8_t>(rng());
            p.addr[0] = p.version == 4 ? 10 : 0x20;  // keep them near each other so they nest
            const unsigned bytes = p.version == 4 ? 4 : 16;
            for (unsigned b = 0; b < bytes; ++b) {
                const unsigned keep = p.len > b * 8 ? std::min(8u, p.len - b * 8) : 0;
                p.addr[b] &= static_cast<uint8_t>(keep ? 0xFF << (8 - keep) : 0);
            }
            bool dup = false;
            for (const auto& [q, n] : all) dup = dup || q == p;
            if (dup) continue;
            s.prefixes.push_back(p);
            all.emplace_back(p, s.name);
        }
        zs.push_back(std::move(s));
    }
    ZoneMap m(zs);
    auto inside = [](const Prefix& p, const uint8_t* a, uint8_t v) {
        if (p.version != v) return false;
        for (unsigned b = 0; b < 16; ++b) {
            const unsigned keep = p.len > b * 8 ? std::min(8u, p.len - b * 8) : 0;
            const auto mask = static_cast<uint8_t>(keep ? 0xFF << (8 - keep) : 0);
            if ((a[b] & mask) != p.addr[b]) return false;
        }
        return true;
    };
    for (int i = 0; i < 20000; ++i) {
        // Half the time an address inside some prefix, near its edges; else anywhere nearby.
        const auto& [p, name] = all[rng() % all.size()];
        uint8_t a[16] = {};
        const uint8_t v = p.version;
        std::memcpy(a, p.addr, 16);
        if (rng() % 2) {
            for (unsigned b = 0; b < (v == 4 ? 4u : 16u); ++b)
                if (b * 8 + 8 > p.len) a[b] = static_cast<uint8_t>(a[b] | (rng() % 3 == 0 ? 0xFF : rng()));
        } else {
            for (unsigned b = 1; b < (v == 4 ? 4u : 16u); ++b) a[b] = static_cast<uint8_t>(rng());
        }
        if (v == 4) std::memset(a + 4, 0, 12);
        std::string want = "other";
        int best = -1;
        for (const auto& [q, n] : all)
            if (inside(q, a, v) && q.len > best) best = q.len, want = n;
        ASSERT_EQ(m.name(m.lookup(a, v)), want) << i;
    }
}

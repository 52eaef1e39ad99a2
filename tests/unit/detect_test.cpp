// SPDX-License-Identifier: BSD-3-Clause
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "detect/detector.h"
#include "detect/hll.h"
#include "detect/keymap.h"
#include "detect/observer.h"
#include "packet/layer_v4.h"

using namespace weir;
using namespace weir::detect;

namespace {

constexpr uint64_t kSec = 1'000'000'000ull;
constexpr uint64_t kT0 = 1'700'000'000ull * kSec;

packet::Layer v4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t sport, uint16_t dport, uint8_t flags = 0,
                 uint32_t len = 60) {
    return packet::ipv4_layer(src, dst, proto, sport, dport, flags, len);
}

constexpr Seen kNew{true, true, false, false};
constexpr Seen kAnswer{false, false, true, false};
constexpr Seen kMid{true, false, false, false};
constexpr Seen kComplete{true, false, false, true};

ObserverConfig small_config() {
    ObserverConfig c;
    c.sources = 1024;
    c.pairs = 1024;
    c.destinations = 256;
    for (uint16_t p : {53, 123, 161, 1900, 11211}) c.amplifiers.set(p);
    return c;
}

// Drives observers and a detector through packet time the way workers and the control loop do.
struct Rig {
    explicit Rig(unsigned workers, Thresholds th = {}, ObserverConfig c = small_config()) {
        for (unsigned i = 0; i < workers; ++i) obs.push_back(std::make_unique<Observer>(c));
        std::vector<Observer*> p;
        for (auto& o : obs) p.push_back(o.get());
        det = std::make_unique<Detector>(th, p);
    }
    void at(unsigned w, uint64_t ts) {
        obs[w]->roll(ts);
        det->poll(events);
    }
    // As a worker does: the packet first (it ends an interval itself), the loop's roll after.
    void send(unsigned w, const packet::Layer& l, const Seen& s, uint64_t ts) {
        obs[w]->packet(l, s, ts);
        det->poll(events);
        at(w, ts);
    }
    void tick_all(uint64_t ts) {
        for (unsigned w = 0; w < obs.size(); ++w) at(w, ts);
    }
    void end() {
        for (auto& o : obs) o->finish();
        det->finish(events);
    }
    std::vector<nlohmann::json> of(const std::string& kind, const std::string& phase = "start") const {
        std::vector<nlohmann::json> r;
        for (const auto& e : events)
            if (e["kind"] == kind && e["phase"] == phase) r.push_back(e);
        return r;
    }
    std::vector<std::unique_ptr<Observer>> obs;
    std::unique_ptr<Detector> det;
    std::vector<nlohmann::json> events;
};

}  // namespace

TEST(Hll, EstimatesDistinctValuesAndMerges) {
    Hll a{}, b{}, u{};
    for (uint64_t i = 0; i < 1000; ++i) {
        (i % 2 ? a : b).add(mix64(i));
        u.add(mix64(i));
        u.add(mix64(i));  // repeats add nothing
    }
    EXPECT_NEAR(u.estimate(), 1000, 300);
    a.merge(b);
    EXPECT_EQ(std::memcmp(a.r, u.r, sizeof a.r), 0);
    Hll few{};
    for (uint64_t i = 0; i < 7; ++i) few.add(mix64(i * 77));
    EXPECT_NEAR(few.estimate(), 7, 1.5);
    Hll none{};
    EXPECT_EQ(none.estimate(), 0);
}

TEST(KeyMap, FindsGrowsErasesAndTakesPlacesAgain) {
    // Keys of three lengths, as the detector makes them; values that own memory (ASan sees a leak
    // or a double destruction).
    auto key = [](uint32_t i) {
        Key k;
        const uint8_t len = i % 3 == 0 ? 5 : i % 3 == 1 ? 18 : 34;
        for (uint8_t b = 0; b < len; ++b) k.push(static_cast<uint8_t>((i >> (8 * (b % 4))) + b));
        return k;
    };
    KeyMap<std::string> m;
    constexpr uint32_t kN = 50000;  // several chunks, several index sizes
    for (uint32_t i = 0; i < kN; ++i) {
        bool created = false;
        m.get(key(i), created) = std::to_string(i) + std::string(40, 'x');
        ASSERT_TRUE(created) << i;
    }
    EXPECT_EQ(m.size(), kN);
    bool created = true;
    EXPECT_EQ(m.get(key(7), created).substr(0, 2), "7x");
    EXPECT_FALSE(created);
    m.erase_if([](const Key& k, const std::string& v) { return k.size() == 18 || v[0] == '9'; });
    uint32_t left = 0;
    for (uint32_t i = 0; i < kN; ++i) {
        const std::string* v = m.find(key(i));
        const bool gone = i % 3 == 1 || std::to_string(i)[0] == '9';
        EXPECT_EQ(v == nullptr, gone) << i;
        if (v) {
            EXPECT_EQ(*v, std::to_string(i) + std::string(40, 'x'));
        }
        left += !gone;
    }
    EXPECT_EQ(m.size(), left);
    size_t seen = 0;
    m.each([&](const Key& k, std::string& v) {
        ++seen;
        EXPECT_NE(k.size(), 18);
        EXPECT_NE(v[0], '9');
    });
    EXPECT_EQ(seen, left);
    // Erased places are taken again; the erased keys come back as new.
    for (uint32_t i = 1; i < kN; i += 3) {
        m.get(key(i), created) = "again";
        EXPECT_TRUE(created);
    }
    EXPECT_EQ(*m.find(key(4)), "again");
    KeyMap<std::string> moved = std::move(m);
    EXPECT_EQ(*moved.find(key(4)), "again");
    moved.clear();
    EXPECT_EQ(moved.size(), 0u);
    EXPECT_EQ(moved.find(key(4)), nullptr);
    moved[key(4)] = "after clear";
    EXPECT_EQ(*moved.find(key(4)), "after clear");
    // A key past 39 bytes is refused whole.
    Key k;
    uint8_t big[40] = {};
    EXPECT_FALSE(k.append(big, 40));
    EXPECT_TRUE(k.append(big, 39));
    EXPECT_EQ(k.size(), 39);
}

TEST(Detect, VerticalScanSpreadOverTwoWorkersIsOneEvent) {
    Rig r(2);
    const uint32_t scanner = 0x0A000001, target = 0x0A000002;
    for (uint16_t p = 1; p <= 600; ++p) {
        const uint64_t ts = kT0 + p * 10'000'000ull;  // 100 ports per second, 6 s
        r.send(p % 2, v4(scanner, target, 6, 40000, p, 0x02), kNew, ts);
        if (p % 50 == 0)  // the few open ports answer
            r.send(p % 2, v4(target, scanner, 6, p, 40000, 0x12), kAnswer, ts + 1000);
    }
    r.end();
    const auto v = r.of("vertical_scan");
    ASSERT_EQ(v.size(), 1u) << nlohmann::json(r.events).dump();
    EXPECT_EQ(v[0]["attacker"], "10.0.0.1");
    EXPECT_EQ(v[0]["victim"], "10.0.0.2");
    EXPECT_EQ(v[0]["protocol"], "tcp");
    EXPECT_EQ(v[0]["start_ns"].get<uint64_t>(), kT0 + 10'000'000ull);
    EXPECT_EQ(r.of("vertical_scan", "end").size(), 1u);
    const auto end = r.of("vertical_scan", "end")[0];
    EXPECT_NEAR(end["counts"]["ports_estimate"].get<double>(), 600, 150);
    EXPECT_EQ(end["counts"]["probes"].get<double>(), 600);
    EXPECT_EQ(end["counts"]["answered"].get<double>(), 12);
    EXPECT_TRUE(r.of("syn_flood").empty());
    EXPECT_TRUE(r.of("horizontal_scan").empty());
}

TEST(Detect, AnsweredConversationsAreNotScans) {
    Rig r(1);
    // A client opening many connections to one server's ports, each answered (passive FTP data).
    for (uint16_t p = 0; p < 300; ++p) {
        const uint64_t ts = kT0 + p * 5'000'000ull;
        r.send(0, v4(0x0A000001, 0x0A000002, 6, 50000 + p, 30000 + p, 0x02), kNew, ts);
        r.send(0, v4(0x0A000002, 0x0A000001, 6, 30000 + p, 50000 + p, 0x12), kAnswer, ts + 1000);
    }
    // A resolver asking 300 servers, each answering.
    for (uint32_t h = 0; h < 300; ++h) {
        const uint64_t ts = kT0 + h * 5'000'000ull;
        r.send(0, v4(0x0A000035, 0xC0000000 + h, 17, 40000 + h, 53), kNew, ts);
        r.send(0, v4(0xC0000000 + h, 0x0A000035, 17, 53, 40000 + h), kAnswer, ts + 1000);
    }
    r.end();
    EXPECT_TRUE(r.events.empty()) << nlohmann::json(r.events).dump();
}

TEST(Detect, HorizontalScanIcmpSweepAndAckSweep) {
    Rig r(2);
    for (uint32_t h = 0; h < 200; ++h) {
        const uint64_t ts = kT0 + h * 20'000'000ull;
        r.send(h % 2, v4(0xC0A80001, 0x0A010000 + h, 6, 33333, 445, 0x02), kNew, ts);
        r.send(h % 2, v4(0xC0A80002, 0x0A020000 + h, 1, 0, 8 << 8), kNew, ts);
        r.send(h % 2, v4(0xC0A80003, 0x0A030000 + h, 6, 44444, 80, 0x10), kNew, ts);
        r.send(h % 2, v4(0x0A030000 + h, 0xC0A80003, 6, 80, 44444, 0x04), kAnswer, ts + 1);  // RST: alive
    }
    r.end();
    const auto hs = r.of("horizontal_scan");
    ASSERT_EQ(hs.size(), 1u) << nlohmann::json(r.events).dump();
    EXPECT_EQ(hs[0]["attacker"], "192.168.0.1");
    EXPECT_EQ(hs[0]["victim"], "many");
    EXPECT_EQ(hs[0]["port"], 445);
    const auto sw = r.of("icmp_sweep");
    ASSERT_EQ(sw.size(), 1u);
    EXPECT_EQ(sw[0]["attacker"], "192.168.0.2");
    const auto ack = r.of("ack_sweep");
    ASSERT_EQ(ack.size(), 1u);
    EXPECT_EQ(ack[0]["attacker"], "192.168.0.3");
    EXPECT_EQ(ack[0]["port"], 80);
}

TEST(Detect, SynFloodFromSpoofedSourcesButNotABusyServer) {
    Rig r(2);
    std::mt19937 rng(7);
    for (uint32_t i = 0; i < 3000; ++i) {
        const uint64_t ts = kT0 + i * 1'000'000ull;  // 1000 SYN/s for 3 s
        r.send(i % 2, v4(rng(), 0x0A0000FE, 6, 1024 + i % 60000, 80, 0x02), kNew, ts);
        // A busy server next door: 1000 handshakes a second, all completed.
        r.send(i % 2, v4(0x0B000000 + i, 0x0A0000FD, 6, 2000, 443, 0x02), kNew, ts);
        r.send(i % 2, v4(0x0A0000FD, 0x0B000000 + i, 6, 443, 2000, 0x12), kAnswer, ts + 10);
        r.send(i % 2, v4(0x0B000000 + i, 0x0A0000FD, 6, 2000, 443, 0x10), kComplete, ts + 20);
    }
    r.end();
    const auto f = r.of("syn_flood");
    ASSERT_EQ(f.size(), 1u) << nlohmann::json(r.events).dump();
    EXPECT_EQ(f[0]["victim"], "10.0.0.254");
    EXPECT_EQ(f[0]["attacker"], "many");
    EXPECT_FALSE(f[0].contains("port"));
    const auto end = r.of("syn_flood", "end")[0];
    EXPECT_GT(end["counts"]["syns"].get<uint64_t>(), 2500u);  // less what each worker saw before it tracked the victim
    EXPECT_EQ(end["counts"]["completed"].get<uint64_t>(), 0u);
    EXPECT_GT(end["counts"]["sources_estimate"].get<double>(), 600);  // the most in one interval
}

TEST(Detect, AmplificationAndTcpReflection) {
    Rig r(1);
    for (uint32_t i = 0; i < 3000; ++i) {
        const uint64_t ts = kT0 + i * 100'000ull;
        r.send(0, v4(0x50000000 + i % 300, 0x0A0000AA, 17, 123, 40000 + i % 1000, 0, 468), kNew, ts);
        r.send(0, v4(0x60000000 + i % 50, 0x0A0000BB, 6, 80, 40000 + i % 1000, 0x12), kNew, ts);
    }
    // Answers to our own queries are not reflection.
    for (uint32_t i = 0; i < 3000; ++i) {
        const uint64_t ts = kT0 + i * 100'000ull;
        r.send(0, v4(0x0A0000CC, 0x70000000 + i, 17, 5000 + i, 123), kNew, ts);
        r.send(0, v4(0x70000000 + i, 0x0A0000CC, 17, 123, 5000 + i, 0, 468), kAnswer, ts + 1);
    }
    r.end();
    const auto a = r.of("amplification");
    ASSERT_EQ(a.size(), 2u) << nlohmann::json(r.events).dump();
    for (const auto& e : a) {
        if (e["victim"] == "10.0.0.170") {
            EXPECT_EQ(e["port"], 123);
            EXPECT_EQ(e["protocol"], "udp");
            EXPECT_NEAR(e["counts"]["reflectors_estimate"].get<double>(), 300, 90);
        } else {
            EXPECT_EQ(e["victim"], "10.0.0.187");
            EXPECT_EQ(e["protocol"], "tcp");
            EXPECT_TRUE(e["evidence"]["amplifier_ports"].contains("tcp-syn-ack"));
        }
    }
}

TEST(Detect, FloodByRateAndDnsTunnelHint) {
    Thresholds th;
    th.flood_pps = 5000;
    Rig r(1, th);
    for (uint32_t i = 0; i < 20000; ++i) {
        const uint64_t ts = kT0 + i * 100'000ull;  // 10 kpps of UDP for 2 s, one source
        r.send(0, v4(0x0C000001, 0x0A0000DD, 17, 9999, 9999, 0, 1200), i ? kMid : kNew, ts);
    }
    for (uint32_t i = 0; i < 800; ++i) {
        const uint64_t ts = kT0 + i * 10'000'000ull;
        r.send(0, v4(0x0A000077, 0x08080808, 17, 10000 + i, 53, 0, i % 4 ? 200 : 70), kNew, ts);
        r.send(0, v4(0x08080808, 0x0A000077, 17, 53, 10000 + i, 0, 100), kAnswer, ts + 1);
    }
    r.end();
    const auto f = r.of("flood");
    ASSERT_EQ(f.size(), 1u) << nlohmann::json(r.events).dump();
    EXPECT_EQ(f[0]["victim"], "10.0.0.221");
    EXPECT_EQ(f[0]["attacker"], "12.0.0.1");
    EXPECT_EQ(f[0]["protocol"], "udp");
    // Ordinary packets of a tracked destination are sampled one in eight and scaled: the count
    // stays near what was sent (all but the packets before the destination stood out).
    const auto fe = r.of("flood", "end");
    ASSERT_EQ(fe.size(), 1u);
    const double pk = fe[0]["counts"]["packets"].get<double>();
    EXPECT_GT(pk, 0.95 * 20000) << fe[0].dump();
    EXPECT_LT(pk, 1.05 * 20000) << fe[0].dump();
    EXPECT_NEAR(fe[0]["counts"]["bytes"].get<double>(), pk * 1200, pk * 1200 * 0.001);
    const auto d = r.of("dns_tunnel");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0]["attacker"], "10.0.0.119");
}

TEST(Detect, HoldDownKeepsOneAttackOneEvent) {
    Thresholds th;
    th.hold_down_s = 5;
    Rig r(1, th);
    auto burst = [&](uint64_t start) {
        for (uint32_t i = 0; i < 500; ++i)
            r.send(0, v4(0x01000000 + i * 7919, 0x0A000001, 6, 1000, 80, 0x02), kNew, start + i * 1'000'000ull);
    };
    burst(kT0);
    burst(kT0 + 3 * kSec);   // 2.5 s later: within the hold-down
    burst(kT0 + 20 * kSec);  // long after: a new event
    r.end();
    EXPECT_EQ(r.of("syn_flood").size(), 2u) << nlohmann::json(r.events).dump();
    EXPECT_EQ(r.of("syn_flood", "end").size(), 2u);
    EXPECT_EQ(r.det->stats().events[static_cast<unsigned>(Kind::kSynFlood)], 2u);
}

TEST(Detect, FullTablesAreCountedAndLateControlLosesNothing) {
    ObserverConfig c = small_config();
    c.sources = 64;
    c.pairs = 64;
    Observer o(c);
    for (uint32_t i = 0; i < 1000; ++i) o.packet(v4(i + 1, 0x0A000001, 6, 1000, 80, 0x02), kNew, kT0 + i);
    o.roll(kT0 + kSec);  // published
    const Bank* b = o.take();
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->sources.size() + b->overflow_sources, 1000u);
    EXPECT_LE(b->sources.size(), 64u);
    const uint64_t overflowed = b->overflow_sources;
    EXPECT_EQ(o.stats().overflow_sources, overflowed);
    // The control side still holds the bank: the worker keeps writing the other one.
    o.packet(v4(5, 6, 6, 1, 2, 0x02), kNew, kT0 + kSec + 1);
    o.roll(kT0 + 2 * kSec);
    EXPECT_EQ(o.stats().late, 1u);
    EXPECT_EQ(o.through(), kT0 / kSec + 1);  // the held interval is not complete yet
    o.give();
    o.packet(v4(5, 6, 6, 1, 3, 0x02), kNew, kT0 + 2 * kSec + 1);
    o.roll(kT0 + 3 * kSec);
    b = o.take();
    ASSERT_NE(b, nullptr);
    uint32_t probes = 0;
    b->pairs.each([&](const PairEntry& e) { probes += e.probes; });
    EXPECT_EQ(probes, 2u);  // both intervals' probes in the one bank
    EXPECT_EQ(o.stats().intervals, 2u);
}

TEST(Detect, ASlowAttackStaysOneEventAcrossWindows) {
    Thresholds th;
    th.amp_responses = 20;
    th.amp_sources = 2;
    Rig r(1, th);
    for (uint32_t i = 0; i < 400; ++i)  // one reflected SYN-ACK every 1.5 s for 10 minutes
        r.send(0, v4(0x60000000 + i % 3, 0x0A0000BB, 6, 80, 40000 + i % 7, 0x12), i < 21 ? kNew : kMid,
               kT0 + i * 1'500'000'000ull);
    r.end();
    EXPECT_EQ(r.of("amplification").size(), 1u) << nlohmann::json(r.events).dump();
}

TEST(Detect, PolicyViolationsAreOneEventPerClientAndServiceWhileTheyLast) {
    Thresholds th;
    th.hold_down_s = 5;
    Rig r(1, th);
    auto violation = [&](uint32_t client, uint32_t server, uint16_t port, uint64_t ts) {
        const packet::Layer l = v4(client, server, 17, 40000, port);
        PolicyViolation v{};
        std::memcpy(v.client, l.tuple.src, 16);
        std::memcpy(v.server, l.tuple.dst, 16);
        v.version = 4;
        v.proto = 17;
        v.port = port;
        v.from = "users";
        v.to = "mgmt";
        v.first_ns = ts;
        v.last_ns = ts + 1000;
        v.packets = 2;
        v.bytes = 150;
        r.det->violation(v, r.events);
    };
    r.tick_all(kT0);
    violation(0x0A010304, 0x0A0200FA, 161, kT0);
    violation(0x0A010304, 0x0A0200FB, 161, kT0 + kSec / 2);  // another device, same service: same event
    violation(0x0A010305, 0x0A0200FA, 161, kT0 + kSec / 2);  // another client: its own
    violation(0x0A010304, 0x0A0200FA, 22, kT0 + kSec / 2);   // another service: the same event
    ASSERT_EQ(r.of("out_of_policy").size(), 2u) << nlohmann::json(r.events).dump();
    const auto first = r.of("out_of_policy")[0];
    EXPECT_EQ(first["attacker"], "10.1.3.4");
    EXPECT_EQ(first["victim"], "10.2.0.250");
    EXPECT_EQ(first["port"], 161);
    EXPECT_EQ(first["protocol"], "udp");
    EXPECT_EQ(first["evidence"]["from_zone"], "users");
    EXPECT_EQ(first["evidence"]["to_zone"], "mgmt");
    for (uint64_t s = 1; s <= 20; ++s) r.tick_all(kT0 + s * kSec);  // past the hold-down
    EXPECT_EQ(r.of("out_of_policy", "end").size(), 2u);
    nlohmann::json end;
    for (const auto& e : r.of("out_of_policy", "end"))
        if (e["id"] == first["id"]) end = e;
    EXPECT_EQ(end["counts"]["flows"], 3);
    EXPECT_EQ(end["counts"]["packets"], 6);
    EXPECT_EQ(end["evidence"]["sample_services"], nlohmann::json({"udp/161", "udp/22"}));
    EXPECT_FALSE(end.contains("port"));  // several services
    EXPECT_EQ(end["victim"], "many");
    EXPECT_EQ(end["evidence"]["sample_servers"].size(), 2u);
    violation(0x0A010304, 0x0A0200FA, 161, kT0 + 21 * kSec);  // again, after it ended: a new event
    EXPECT_EQ(r.of("out_of_policy").size(), 3u);
    EXPECT_EQ(r.det->stats().events[static_cast<unsigned>(Kind::kOutOfPolicy)], 3u);
}

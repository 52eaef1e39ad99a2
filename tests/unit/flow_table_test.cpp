// SPDX-License-Identifier: BSD-3-Clause
// Flow table: both directions in one entry, each way a flow ends, eviction when full.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "flow/flow_record.h"
#include "flow/flow_table.h"

using namespace weir;
using flow::EndReason;
using flow::FlowEntry;
using flow::FlowTable;

namespace {

constexpr uint64_t kSec = 1'000'000'000ull;

struct Ended {
    FlowEntry e;
    EndReason why;
};

struct Sink {
    std::vector<Ended> ended;
    void on_created(const FlowEntry&) noexcept {}
    void on_expired(const FlowEntry& e, EndReason why) noexcept { ended.push_back({e, why}); }
};

packet::PacketInfo pkt(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto = 6,
                       uint8_t flags = 0x10, uint32_t octets = 100, uint8_t ttl = 64) {
    packet::PacketInfo p{};
    p.tuple.ip_version = 4;
    p.tuple.proto = proto;
    for (int i = 0; i < 4; ++i) {
        p.tuple.src[i] = static_cast<uint8_t>(src >> (24 - 8 * i));
        p.tuple.dst[i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
    }
    p.tuple.sport = sport;
    p.tuple.dport = dport;
    p.tcp_flags = proto == 6 ? flags : 0;
    p.ip_octets = octets;
    p.ttl = ttl;
    return p;
}

struct Fixture {
    flow::TableConfig cfg;
    std::unique_ptr<FlowTable> t;
    Sink sink;
    explicit Fixture(uint32_t cap = 1024, uint64_t idle = 15 * kSec, uint64_t active = 60 * kSec,
                     uint64_t tcp_end = 1 * kSec) {
        cfg.capacity = cap;
        cfg.idle_ns = idle;
        cfg.active_ns = active;
        cfg.tcp_end_ns = tcp_end;
        t = std::make_unique<FlowTable>(cfg);
    }
    void feed(const packet::PacketInfo& p, uint64_t ts, uint16_t port = 0) {
        FlowTable::Prepared pk;
        t->prepare(p, pk);
        t->update(pk, p, ts, port, sink);
    }
};

const uint64_t T0 = 1'700'000'000ull * kSec;

}  // namespace

TEST(FlowTable, BothDirectionsShareOneEntry) {
    Fixture f;
    f.feed(pkt(0x0A000002, 0x0A000001, 40000, 80, 6, 0x02, 60, 60), T0);         // SYN from .2
    f.feed(pkt(0x0A000001, 0x0A000002, 80, 40000, 6, 0x12, 60, 50), T0 + 1000);  // SYN-ACK
    f.feed(pkt(0x0A000002, 0x0A000001, 40000, 80, 6, 0x10, 52, 61), T0 + 2000);  // ACK
    EXPECT_EQ(f.t->size(), 1u);
    f.t->flush(f.sink);
    ASSERT_EQ(f.sink.ended.size(), 1u);
    const FlowEntry& e = f.sink.ended[0].e;
    EXPECT_EQ(f.sink.ended[0].why, EndReason::kForced);
    // dir[0] is the initiator: 10.0.0.2:40000 -> 10.0.0.1:80.
    const packet::Tuple fwd = e.tuple(0);
    EXPECT_EQ(fwd.src[3], 2);
    EXPECT_EQ(fwd.sport, 40000);
    EXPECT_EQ(e.dir(0).packets, 2u);
    EXPECT_EQ(e.dir(0).octets, 112u);
    EXPECT_EQ(e.dir(0).tcp_flags, 0x12);
    EXPECT_EQ(e.dir(0).ttl_min, 60);
    EXPECT_EQ(e.dir(0).ttl_max, 61);
    EXPECT_EQ(e.dir(0).first_ns, T0);
    EXPECT_EQ(e.dir(0).last_ns, T0 + 2000);
    const packet::Tuple rev = e.tuple(1);
    EXPECT_EQ(rev.src[3], 1);
    EXPECT_EQ(rev.sport, 80);
    EXPECT_EQ(e.dir(1).packets, 1u);
    EXPECT_EQ(e.dir(1).tcp_flags, 0x12);
    EXPECT_EQ(e.dir(1).ttl_min, 50);
    EXPECT_EQ(f.t->size(), 0u);
}

TEST(FlowTable, IdleTimeout) {
    Fixture f;
    f.feed(pkt(1, 2, 3, 4, 17), T0);
    f.feed(pkt(1, 2, 3, 4, 17), T0 + 5 * kSec);
    f.t->expire(T0 + 19 * kSec, 1000, f.sink);
    EXPECT_TRUE(f.sink.ended.empty()) << "last packet was 14 s ago";
    f.t->expire(T0 + 20 * kSec + kSec / 2, 1000, f.sink);
    ASSERT_EQ(f.sink.ended.size(), 1u);
    EXPECT_EQ(f.sink.ended[0].why, EndReason::kIdle);
    EXPECT_EQ(f.sink.ended[0].e.dir(0).packets, 2u);
    EXPECT_EQ(f.t->stats().expired[static_cast<int>(EndReason::kIdle)].get(), 1u);
}

TEST(FlowTable, ActiveTimeoutSplitsALongFlow) {
    Fixture f(1024, 15 * kSec, 60 * kSec);
    uint64_t ts = T0;
    for (int i = 0; i < 100; ++i, ts += kSec) {
        f.feed(pkt(1, 2, 3, 4, 17), ts);
        f.t->expire(ts, 1000, f.sink);
    }
    // 100 packets one second apart: one record at 60 s, the rest still active.
    ASSERT_EQ(f.sink.ended.size(), 1u);
    EXPECT_EQ(f.sink.ended[0].why, EndReason::kActive);
    EXPECT_EQ(f.sink.ended[0].e.dir(0).packets, 60u);
    f.t->flush(f.sink);
    ASSERT_EQ(f.sink.ended.size(), 2u);
    EXPECT_EQ(f.sink.ended[1].e.dir(0).packets, 40u);
}

TEST(FlowTable, PacketAfterIdleGapStartsANewFlowEvenBeforeExpiryRuns) {
    Fixture f;
    f.feed(pkt(1, 2, 3, 4, 17), T0);
    f.feed(pkt(1, 2, 3, 4, 17), T0 + 30 * kSec);  // no expire() in between
    ASSERT_EQ(f.sink.ended.size(), 1u);
    EXPECT_EQ(f.sink.ended[0].why, EndReason::kIdle);
    EXPECT_EQ(f.sink.ended[0].e.dir(0).packets, 1u);
    EXPECT_EQ(f.t->size(), 1u);
}

TEST(FlowTable, FinBothWaysEndsTheFlowAfterGrace) {
    Fixture f;
    f.feed(pkt(1, 2, 1000, 80, 6, 0x02), T0);
    f.feed(pkt(2, 1, 80, 1000, 6, 0x12), T0 + 1);
    f.feed(pkt(1, 2, 1000, 80, 6, 0x11), T0 + 2 * kSec);  // FIN from the client
    f.t->expire(T0 + 5 * kSec, 1000, f.sink);
    EXPECT_TRUE(f.sink.ended.empty()) << "half-closed connections wait for idle timeout";
    f.feed(pkt(2, 1, 80, 1000, 6, 0x11), T0 + 6 * kSec);        // FIN from the server
    f.feed(pkt(1, 2, 1000, 80, 6, 0x10), T0 + 6 * kSec + 100);  // last ACK joins the same flow
    f.t->expire(T0 + 7 * kSec, 1000, f.sink);
    EXPECT_TRUE(f.sink.ended.empty()) << "the grace runs from the last packet";
    f.t->expire(T0 + 7 * kSec + kSec / 2, 1000, f.sink);
    ASSERT_EQ(f.sink.ended.size(), 1u);
    EXPECT_EQ(f.sink.ended[0].why, EndReason::kEndOfFlow);
    EXPECT_EQ(f.sink.ended[0].e.dir(0).packets, 3u);
    EXPECT_EQ(f.sink.ended[0].e.dir(1).packets, 2u);
}

TEST(FlowTable, RstEndsTheFlow) {
    Fixture f;
    f.feed(pkt(1, 2, 1000, 80, 6, 0x02), T0);
    f.feed(pkt(2, 1, 80, 1000, 6, 0x14), T0 + 1000);  // RST-ACK
    f.t->expire(T0 + 2 * kSec, 1000, f.sink);
    ASSERT_EQ(f.sink.ended.size(), 1u);
    EXPECT_EQ(f.sink.ended[0].why, EndReason::kEndOfFlow);
}

TEST(FlowTable, FullTableEvictsTheOldestAndCountsIt) {
    Fixture f(64);
    for (uint32_t i = 0; i < 64; ++i) f.feed(pkt(1, 2, static_cast<uint16_t>(i), 9, 17), T0 + i * kSec / 10);
    EXPECT_EQ(f.t->size(), 64u);
    EXPECT_TRUE(f.sink.ended.empty());
    f.feed(pkt(1, 2, 999, 9, 17), T0 + 7 * kSec);
    EXPECT_EQ(f.t->size(), 64u);
    ASSERT_EQ(f.sink.ended.size(), 1u);
    EXPECT_EQ(f.sink.ended[0].why, EndReason::kLackOfResources);
    EXPECT_LT(f.sink.ended[0].e.key.tuple.sport, 8) << "one of the oldest flows goes";
    EXPECT_EQ(f.t->stats().evicted_table_full.get() + f.t->stats().evicted_bucket_full.get(), 1u);
}

TEST(FlowTable, SynFloodKeepsEveryPacketAccounted) {
    // Far more flows than capacity: each packet is in exactly one ended or live flow.
    Fixture f(1024);
    uint64_t packets = 0;
    for (uint32_t i = 0; i < 50000; ++i) {
        f.feed(pkt(0x0B000000 + i, 0x0A000001, static_cast<uint16_t>(i * 7), 80, 6, 0x02), T0 + i * 1000);
        ++packets;
    }
    f.t->flush(f.sink);
    uint64_t seen = 0;
    for (const auto& x : f.sink.ended) seen += x.e.dir(0).packets + x.e.dir(1).packets;
    EXPECT_EQ(seen, packets);
    EXPECT_EQ(f.t->stats().created.get(), 50000u);
    EXPECT_EQ(f.t->size(), 0u);
}

TEST(FlowTable, ExpiryWorkIsBoundedPerCall) {
    Fixture f;
    for (uint32_t i = 0; i < 500; ++i) f.feed(pkt(i, 2, 3, 4, 17), T0);
    f.t->expire(T0 + 100 * kSec, 100, f.sink);
    EXPECT_EQ(f.sink.ended.size(), 100u);
    f.t->expire(T0 + 100 * kSec, 1000, f.sink);
    EXPECT_EQ(f.sink.ended.size(), 500u);
}

TEST(FlowTable, LongTimeJumpExpiresEverything) {
    Fixture f;
    for (uint32_t i = 0; i < 10; ++i) f.feed(pkt(i, 2, 3, 4, 17), T0);
    f.t->expire(T0 + 86400 * kSec, 1000, f.sink);  // a capture with a day-long gap
    EXPECT_EQ(f.sink.ended.size(), 10u);
}

TEST(FlowTable, VlanSeparatesFlows) {
    Fixture f;
    auto a = pkt(1, 2, 3, 4, 17);
    auto b = a;
    b.tuple.vlan = 7;
    f.feed(a, T0);
    f.feed(b, T0);
    EXPECT_EQ(f.t->size(), 2u);
}

TEST(FlowTable, RejectsSillyCapacity) {
    flow::TableConfig c;
    c.capacity = 3;
    EXPECT_THROW(FlowTable t(c), std::invalid_argument);
}

TEST(FlowTable, StagedBurstsMatchOnePacketAtATime) {
    // prepare/locate for a whole burst before any update: hints go stale when an earlier packet
    // of the burst inserts or evicts (table far too small), and results must not change.
    Fixture staged(64), single(64);
    std::mt19937 rng(7);
    uint64_t ts = T0;
    for (int burst = 0; burst < 2000; ++burst) {
        packet::PacketInfo ps[32];
        FlowTable::Prepared pk[32];
        for (auto& p : ps) {
            const uint32_t f = rng() % 200;
            p = (rng() & 1) ? pkt(f, 1000 + f % 7, 40000, 80, 6, 0x10) : pkt(1000 + f % 7, f, 80, 40000, 6, 0x10);
        }
        for (int i = 0; i < 32; ++i) staged.t->prepare(ps[i], pk[i]);
        for (auto& p : pk) staged.t->locate(p);
        for (int i = 0; i < 32; ++i) staged.t->update(pk[i], ps[i], ts + i, 0, staged.sink);
        for (int i = 0; i < 32; ++i) single.feed(ps[i], ts + i);
        ts += 1000;
    }
    staged.t->flush(staged.sink);
    single.t->flush(single.sink);
    ASSERT_EQ(staged.sink.ended.size(), single.sink.ended.size());
    for (size_t i = 0; i < staged.sink.ended.size(); ++i) {
        const auto& a = staged.sink.ended[i];
        const auto& b = single.sink.ended[i];
        ASSERT_TRUE(flow::key_equal(a.e.key, b.e.key)) << i;
        ASSERT_EQ(a.e.dir(0).packets, b.e.dir(0).packets) << i;
        ASSERT_EQ(a.e.dir(1).packets, b.e.dir(1).packets) << i;
        ASSERT_EQ(a.why, b.why) << i;
    }
    uint64_t total = 0;
    for (const auto& x : staged.sink.ended) total += x.e.dir(0).packets + x.e.dir(1).packets;
    EXPECT_EQ(total, 2000u * 32);
    EXPECT_GT(staged.t->stats().evicted_table_full.get(), 0u);
}

// ---- tunnels in the key -------------------------------------------------------------------

#include "flow/flow_record.h"
#include "flow/tunnel_table.h"

namespace {

flow::TunnelKey tkey(uint32_t id, uint8_t a, uint8_t b) {
    packet::TunnelInfo t{};
    t.type = packet::TunnelType::kVxlan;
    t.id = id;
    t.depth = 1;
    t.ip_version = 4;
    t.src[0] = 10, t.src[3] = a;
    t.dst[0] = 10, t.dst[3] = b;
    flow::TunnelKey k;
    flow::make_tunnel_key(t, k);
    return k;
}

}  // namespace

TEST(TunnelTable, InternIsDirectionFreeAndCounted) {
    flow::TunnelTable t(8);
    packet::TunnelInfo ab{}, ba{};
    ab.type = ba.type = packet::TunnelType::kGeneve;
    ab.id = ba.id = 5;
    ab.ip_version = ba.ip_version = 4;
    ab.src[3] = 1, ab.dst[3] = 2;
    ba.src[3] = 2, ba.dst[3] = 1;
    flow::TunnelKey k1, k2;
    const bool hi1 = flow::make_tunnel_key(ab, k1), hi2 = flow::make_tunnel_key(ba, k2);
    EXPECT_NE(hi1, hi2);
    EXPECT_EQ(std::memcmp(&k1, &k2, sizeof(k1)), 0);
    const uint32_t r1 = t.intern(k1, flow::tunnel_hash(k1));
    const uint32_t r2 = t.intern(k2, flow::tunnel_hash(k2));
    EXPECT_EQ(r1, r2);
    EXPECT_EQ(t.refs(r1), 2u);
    EXPECT_EQ(t.size(), 1u);
    t.release(r1);
    t.release(r2);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.stats().active.get(), 0u);
}

TEST(TunnelTable, FullTableSaysSoAndRecovers) {
    flow::TunnelTable t(4);
    std::vector<uint32_t> refs;
    for (uint32_t i = 0; i < 4; ++i) {
        const auto k = tkey(i, 1, 2);
        refs.push_back(t.intern(k, flow::tunnel_hash(k)));
        EXPECT_NE(refs.back(), 0u);
    }
    const auto k = tkey(99, 1, 2);
    EXPECT_EQ(t.intern(k, flow::tunnel_hash(k)), 0u);
    EXPECT_EQ(t.stats().full.get(), 1u);
    t.release(refs[2]);
    EXPECT_NE(t.intern(k, flow::tunnel_hash(k)), 0u);
}

TEST(TunnelTable, MatchesAModelUnderChurn) {
    // Random intern/release against a map: lookups stay right through backward-shift deletions,
    // with hashes forced to collide often.
    flow::TunnelTable t(64);
    std::map<uint32_t, std::pair<uint32_t, uint32_t>> model;  // id -> (ref, count)
    std::mt19937 rng(7);
    for (int step = 0; step < 20000; ++step) {
        const uint32_t id = rng() % 80;
        const auto k = tkey(id, 1, 2);
        const uint64_t h = id % 5;  // few distinct hashes: long probe runs
        auto it = model.find(id);
        if (rng() % 2 && it != model.end()) {
            t.release(it->second.first);
            if (--it->second.second == 0) model.erase(it);
        } else {
            const uint32_t ref = t.intern(k, h);
            if (ref == 0) {
                EXPECT_EQ(model.size(), 64u);
                continue;
            }
            if (it != model.end()) {
                EXPECT_EQ(ref, it->second.first);
                ++it->second.second;
            } else {
                model[id] = {ref, 1};
            }
            EXPECT_EQ(t.key(ref).id, id);
        }
        ASSERT_EQ(t.size(), model.size());
    }
}

TEST(FlowTable, TunnelsAndCustomerVlansKeepTenantsApart) {
    Fixture f;
    // The same tenant addresses in two tunnels, in one tunnel under two customer VLANs, and as
    // the outer copy of a tunnel in mode both: five flows.
    packet::PacketInfo p = pkt(0x0A000001, 0x0A000002, 1000, 80);
    for (uint32_t tunnel : {1u, 2u}) {
        FlowTable::Prepared pk;
        f.t->prepare(p, tunnel, flow::kViewPrimary, pk);
        f.t->update(pk, p, T0, 0, f.sink);
    }
    p.cvlan = 7;
    FlowTable::Prepared pk;
    f.t->prepare(p, 1, flow::kViewPrimary, pk);
    f.t->update(pk, p, T0, 0, f.sink);
    p.cvlan = 0;
    f.t->prepare(p, 0, flow::kViewOuterCopy, pk);
    f.t->update(pk, p, T0, 0, f.sink);
    f.feed(p, T0);
    EXPECT_EQ(f.t->size(), 5u);
    // The reverse direction of tunnel 1 finds its flow.
    packet::PacketInfo r = pkt(0x0A000002, 0x0A000001, 80, 1000);
    f.t->prepare(r, 1, flow::kViewPrimary, pk);
    f.t->update(pk, r, T0 + 5, 0, f.sink);
    EXPECT_EQ(f.t->size(), 5u);
}

TEST(FlowTable, RecordCarriesTheTunnelInTheInitiatorsDirection) {
    flow::TableConfig cfg;
    cfg.capacity = 64;
    cfg.macs = true;
    FlowTable t(cfg);
    const flow::TunnelKey k = tkey(77, 1, 9);  // lo = 10.0.0.1, hi = 10.0.0.9
    struct RecordSink {
        const FlowTable* t;
        const flow::TunnelKey* k;
        std::vector<flow::FlowRecord> out;
        void on_created(const FlowEntry&) noexcept {}
        void on_expired(const FlowEntry& e, EndReason why) noexcept {
            out.emplace_back();
            flow::make_record(e, why, k, t->side(e), out.back());  // the entry as it is in the table
        }
    } sink{&t, &k, {}};
    packet::PacketInfo p = pkt(0x0A000001, 0x0A000002, 1000, 80);
    const uint8_t macs[16] = {1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2};  // and no MPLS entry
    FlowTable::Prepared pk;
    t.prepare(p, 3, flow::kViewPrimary, pk);
    pk.tunnel_src_hi = true;
    t.update(pk, p, T0, 4, sink, macs);
    t.flush(sink);
    ASSERT_EQ(sink.out.size(), 1u);
    const flow::FlowRecord& rec = sink.out[0];
    EXPECT_EQ(rec.tunnel_type, static_cast<uint8_t>(packet::TunnelType::kVxlan));
    EXPECT_EQ(rec.tunnel_id, 77u);
    EXPECT_EQ(rec.tunnel_src[3], 9);  // the initiator's packets came from the `hi` end
    EXPECT_EQ(rec.tunnel_dst[3], 1);
    EXPECT_EQ(rec.tunnel_depth, 1);
    EXPECT_EQ(rec.tunnel_ip_version, 4);
    EXPECT_EQ(rec.dst_mac[0], 1);
    EXPECT_EQ(rec.src_mac[0], 2);
    EXPECT_EQ(rec.in_port, 4);
    EXPECT_FALSE(rec.outer_copy());
}

namespace {

struct RecordSink {
    const FlowTable* t;
    std::vector<flow::FlowRecord> out;
    void on_created(const FlowEntry&) noexcept {}
    void on_expired(const FlowEntry& e, EndReason why) noexcept {
        out.emplace_back();
        flow::make_record(e, why, nullptr, t->side(e), out.back());
    }
};

}  // namespace

TEST(FlowTable, SizeBinsFollowTheirBounds) {
    const std::pair<uint32_t, uint32_t> cases[] = {{20, 0},   {64, 0},   {65, 1},   {128, 1},  {129, 2},
                                                   {512, 3},  {1024, 4}, {1025, 5}, {1500, 5}, {1501, 6},
                                                   {9000, 6}, {9001, 7}, {65535, 7}};
    for (const auto& [len, bin] : cases) EXPECT_EQ(flow::size_bin(len), bin) << len;
    for (uint32_t b = 0; b + 1 < flow::kSizeBins; ++b) {
        EXPECT_EQ(flow::size_bin(flow::kSizeBinTop[b]), b);
        EXPECT_EQ(flow::size_bin(flow::kSizeBinTop[b] + 1), b + 1);
    }
}

TEST(FlowTable, HandshakeTimesAndSizesReachTheRecord) {
    flow::TableConfig cfg;
    cfg.capacity = 64;
    cfg.rtt = true;
    cfg.sizes = true;
    cfg.mpls = true;
    FlowTable t(cfg);
    RecordSink sink{&t, {}};
    auto feed = [&](const packet::PacketInfo& p, uint64_t ts, const uint8_t* l2 = nullptr) {
        FlowTable::Prepared pk;
        t.prepare(p, pk);
        t.update(pk, p, ts, 0, sink, l2);
    };
    uint8_t l2[16] = {};
    packet::set_mpls(l2, 1u << 24 | 100u << 4 | 1);
    // Client 10.0.0.2 retransmits its SYN; the server answers 300 us after the first SYN; the
    // client's ACK follows 40 us later, then data both ways.
    feed(pkt(0x0A000002, 0x0A000001, 40000, 443, 6, 0x02, 60), T0, l2);
    feed(pkt(0x0A000002, 0x0A000001, 40000, 443, 6, 0x02, 60), T0 + 100'000);
    feed(pkt(0x0A000001, 0x0A000002, 443, 40000, 6, 0x12, 60), T0 + 300'000);
    feed(pkt(0x0A000002, 0x0A000001, 40000, 443, 6, 0x10, 52), T0 + 340'000);
    feed(pkt(0x0A000002, 0x0A000001, 40000, 443, 6, 0x18, 600), T0 + 400'000);
    feed(pkt(0x0A000001, 0x0A000002, 443, 40000, 6, 0x10, 1500), T0 + 500'000);
    feed(pkt(0x0A000001, 0x0A000002, 443, 40000, 6, 0x10, 9000), T0 + 510'000);
    feed(pkt(0x0A000002, 0x0A000001, 40000, 443, 6, 0x10, 52), T0 + 600'000);  // a later ACK changes nothing
    // A flow that did not begin with a SYN (its start was before the capture): not measured.
    feed(pkt(0x0A000003, 0x0A000001, 40001, 443, 6, 0x10, 52), T0);
    feed(pkt(0x0A000001, 0x0A000003, 443, 40001, 6, 0x12, 52), T0 + 1000);
    feed(pkt(0x0A000003, 0x0A000001, 40001, 443, 6, 0x10, 52), T0 + 2000);
    // UDP: no handshake.
    feed(pkt(0x0A000004, 0x0A000001, 5000, 53, 17, 0, 70), T0);
    t.flush(sink);
    ASSERT_EQ(sink.out.size(), 3u);
    std::map<uint8_t, flow::FlowRecord> by_client;
    for (const auto& r : sink.out) by_client[r.tuple.src[3]] = r;

    const flow::FlowRecord& a = by_client.at(2);
    ASSERT_TRUE(a.flags & flow::FlowRecord::kRttServer);
    ASSERT_TRUE(a.flags & flow::FlowRecord::kRttClient);
    EXPECT_EQ(a.rev.rtt_us, 300u);  // first SYN to SYN-ACK
    EXPECT_EQ(a.fwd.rtt_us, 40u);   // SYN-ACK to ACK
    ASSERT_TRUE(a.flags & flow::FlowRecord::kHasSizes);
    const uint32_t fwd[flow::kSizeBins] = {4, 0, 0, 0, 0, 0, 0, 0};  // 60, 60, 52, 52
    const uint32_t fwd_600[flow::kSizeBins] = {0, 0, 0, 0, 1, 0, 0, 0};
    for (uint32_t b = 0; b < flow::kSizeBins; ++b) EXPECT_EQ(a.sizes[0][b], fwd[b] + fwd_600[b]) << b;
    const uint32_t rev[flow::kSizeBins] = {1, 0, 0, 0, 0, 1, 1, 0};  // 60, 1500, 9000
    for (uint32_t b = 0; b < flow::kSizeBins; ++b) EXPECT_EQ(a.sizes[1][b], rev[b]) << b;
    EXPECT_EQ(a.mpls_top(), 100 << 4 | 1);

    const flow::FlowRecord& b = by_client.at(3);
    EXPECT_FALSE(b.flags & (flow::FlowRecord::kRttServer | flow::FlowRecord::kRttClient));
    EXPECT_EQ(b.mpls_top(), -1);  // its first packet had none
    const flow::FlowRecord& u = by_client.at(4);
    EXPECT_FALSE(u.flags & (flow::FlowRecord::kRttServer | flow::FlowRecord::kRttClient));
    EXPECT_EQ(u.sizes[0][1], 1u);
    EXPECT_EQ(u.packets(), 1u);
}

// Handshakes that cannot be timed: a server that answers the SYN with a RST; one side of an
// asymmetric path, where the client's ACK goes on without a SYN-ACK seen (given up at once: no
// time from a SYN-ACK that arrives later, out of order); a flow that began with data.
TEST(FlowTable, HandshakeNotSeenWholeIsNotTimed) {
    flow::TableConfig cfg;
    cfg.capacity = 64;
    cfg.rtt = true;
    FlowTable t(cfg);
    RecordSink sink{&t, {}};
    FlowTable::Prepared pk;
    auto send = [&](packet::PacketInfo p, uint64_t at) {
        t.prepare(p, pk);
        t.update(pk, p, at, 0, sink);
    };
    send(pkt(0x0A000004, 0x0A000001, 40002, 22, 6, 0x02, 60), T0);            // SYN
    send(pkt(0x0A000001, 0x0A000004, 22, 40002, 6, 0x14, 40), T0 + 1000);     // RST-ACK
    send(pkt(0x0A000002, 0x0A000001, 40000, 22, 6, 0x02, 60), T0);            // SYN
    send(pkt(0x0A000002, 0x0A000001, 40000, 22, 6, 0x10, 40), T0 + 900'000);  // ACK
    send(pkt(0x0A000001, 0x0A000002, 22, 40000, 6, 0x12, 60), T0 + 950'000);  // SYN-ACK, late
    send(pkt(0x0A000002, 0x0A000001, 40000, 22, 6, 0x10, 40), T0 + 990'000);  // ACK
    send(pkt(0x0A000003, 0x0A000001, 40001, 22, 6, 0x18, 100), T0);           // data first
    send(pkt(0x0A000001, 0x0A000003, 22, 40001, 6, 0x12, 60), T0 + 10'000);   // SYN-ACK
    send(pkt(0x0A000003, 0x0A000001, 40001, 22, 6, 0x10, 40), T0 + 20'000);   // ACK
    t.flush(sink);
    ASSERT_EQ(sink.out.size(), 3u);
    for (const auto& r : sink.out) {
        EXPECT_FALSE(r.flags & (flow::FlowRecord::kRttServer | flow::FlowRecord::kRttClient)) << r.tuple.sport;
        EXPECT_FALSE(r.flags & flow::FlowRecord::kHasSizes);  // not kept
    }
}

// Keys of every kind (IPv4, IPv6, VLANs, tunnels, views) are found again and come back whole.
TEST(FlowTable, KeysComeBackExactly) {
    constexpr uint32_t kMaxTunnel = 1u << 24;  // TunnelTable's largest reference
    Fixture f(1 << 14);
    std::mt19937_64 rng(7);
    std::map<std::pair<uint64_t, uint64_t>, int> want;  // key hash, packets
    std::vector<std::pair<packet::PacketInfo, std::pair<uint32_t, uint8_t>>> sent;
    for (int n = 0; n < 4000; ++n) {
        packet::PacketInfo p{};
        const bool v6 = n % 2;
        p.tuple.ip_version = v6 ? 6 : 4;
        for (int i = 0; i < (v6 ? 16 : 4); ++i) {
            p.tuple.src[i] = static_cast<uint8_t>(rng());
            p.tuple.dst[i] = static_cast<uint8_t>(rng());
        }
        if (n % 7 == 0) std::memcpy(p.tuple.dst, p.tuple.src, 16);  // same address both ends: ports decide
        p.tuple.sport = static_cast<uint16_t>(rng());
        p.tuple.dport = static_cast<uint16_t>(rng());
        p.tuple.vlan = static_cast<uint16_t>(rng() & 0xFFF);
        p.tuple.proto = static_cast<uint8_t>(rng());
        p.cvlan = static_cast<uint16_t>(rng() & 0xFFF);
        p.ip_octets = 100;
        const uint32_t tunnel = n % 3 ? static_cast<uint32_t>(rng() % kMaxTunnel) + 1 : 0;
        const uint8_t view = n % 5 == 0 ? flow::kViewOuterCopy : flow::kViewPrimary;
        if (n == 1) p.tuple.vlan = 0xFFF, p.cvlan = 0xFFF, p.tuple.proto = 255;
        sent.push_back({p, {n == 1 ? kMaxTunnel : tunnel, view}});
    }
    for (int round = 0; round < 2; ++round)
        for (auto& [p, ctx] : sent) {
            FlowTable::Prepared pk;
            f.t->prepare(p, ctx.first, ctx.second, pk);
            if (round == 0) want[{pk.hash, 0}] = 0;
            ++want[{pk.hash, 0}];
            f.t->update(pk, p, T0, 0, f.sink);
        }
    EXPECT_EQ(f.t->size(), sent.size());
    size_t seen = 0;
    f.t->for_each([&](const FlowEntry& e) {
        const uint64_t h = flow::key_hash(e.key);
        ASSERT_EQ(want.count({h, 0}), 1u);
        EXPECT_EQ(e.packets(), 2u);
        ++seen;
    });
    EXPECT_EQ(seen, sent.size());
    // And each key is the canonical key of what was sent.
    for (auto& [p, ctx] : sent) {
        FlowTable::Prepared pk;
        f.t->prepare(p, ctx.first, ctx.second, pk);
        bool found = false;
        f.t->for_each([&](const FlowEntry& e) {
            if (!found && std::memcmp(&e.key, &pk.key, sizeof(flow::FlowKey)) == 0) found = true;
        });
        ASSERT_TRUE(found);
        if (&p - &sent[0].first > 200) break;  // a sample: the walk is quadratic
    }
    f.t->flush(f.sink);
    EXPECT_EQ(f.sink.ended.size(), sent.size());
}

// A record carries 64-bit totals and exact nanosecond times, for long and large flows too.
TEST(FlowTable, CountersAndTimesKeepTheirFullWidth) {
    Fixture f(1024, 15 * kSec, 600 * kSec);
    const auto a = pkt(0x0A000002, 0x0A000001, 40000, 80, 6, 0x10, 65535, 64);
    const auto b = pkt(0x0A000001, 0x0A000002, 80, 40000, 6, 0x10, 40, 60);
    constexpr int kPackets = 70000;                                           // 70000 * 65535 bytes: past 2^32
    for (uint64_t i = 0; i < kPackets; ++i) f.feed(a, T0 + 7 + i * 150'000);  // 10.5 s in all
    f.feed(b, T0 + 3 * kSec + 1);
    f.feed(b, T0 + 299 * kSec + 123);  // 4.9 minutes in: past 2^32 ns (and idle after 15 s: a new flow)
    f.t->flush(f.sink);
    ASSERT_EQ(f.sink.ended.size(), 2u);
    const FlowEntry& e = f.sink.ended[0].e;
    EXPECT_EQ(e.c[0].packets, uint64_t{kPackets});
    EXPECT_EQ(e.c[0].octets, uint64_t{kPackets} * 65535);
    EXPECT_EQ(e.c[0].first_ns, T0 + 7);
    EXPECT_EQ(e.c[0].last_ns, T0 + 7 + uint64_t{kPackets - 1} * 150'000);
    EXPECT_EQ(e.c[1].packets, 1u);
    EXPECT_EQ(e.c[1].first_ns, T0 + 3 * kSec + 1);
    EXPECT_EQ(e.c[1].last_ns, T0 + 3 * kSec + 1);
    EXPECT_EQ(e.a[1].ttl_min, 60);
    EXPECT_EQ(e.a[1].ttl_max, 60);
    EXPECT_EQ(f.sink.ended[1].e.c[0].first_ns, T0 + 299 * kSec + 123);

    // A flow 25 minutes long under a 30-minute active timeout.
    Fixture g(1024, 3600 * kSec, 1800 * kSec);
    g.feed(a, T0 + 5);
    g.feed(b, T0 + 1200 * kSec + 9);
    g.feed(a, T0 + 1500 * kSec + 11);
    g.t->flush(g.sink);
    ASSERT_EQ(g.sink.ended.size(), 1u);
    EXPECT_EQ(g.sink.ended[0].e.c[0].last_ns, T0 + 1500 * kSec + 11);
    EXPECT_EQ(g.sink.ended[0].e.c[1].first_ns, T0 + 1200 * kSec + 9);
}

// Packets out of time order (merged captures, several queues): each direction keeps its own
// first and last.
TEST(FlowTable, OutOfOrderTimesAreKeptPerDirection) {
    Fixture f;
    const auto a = pkt(0x0A000002, 0x0A000001, 40000, 80, 6, 0x10, 100, 64);
    const auto b = pkt(0x0A000001, 0x0A000002, 80, 40000, 6, 0x10, 100, 60);
    f.feed(a, T0 + 5000);
    f.feed(b, T0 + 1000);  // the answer, earlier than the question
    f.feed(a, T0 + 3000);  // earlier than the initiator's first
    f.feed(b, T0 + 800);
    f.feed(a, T0 + 9000);
    f.t->flush(f.sink);
    ASSERT_EQ(f.sink.ended.size(), 1u);
    const FlowEntry& e = f.sink.ended[0].e;
    EXPECT_EQ(e.c[0].packets, 3u);
    EXPECT_EQ(e.c[0].first_ns, T0 + 3000);
    EXPECT_EQ(e.c[0].last_ns, T0 + 9000);
    EXPECT_EQ(e.c[1].packets, 2u);
    EXPECT_EQ(e.c[1].first_ns, T0 + 800);
    EXPECT_EQ(e.c[1].last_ns, T0 + 1000);
}

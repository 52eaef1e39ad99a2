// SPDX-License-Identifier: BSD-3-Clause
// Export round-trip fuzz target: the bytes become a few ended conversations (any addresses,
// ports, protocol, counters, times, tunnel, MPLS label, handshake times, size bins, flags) and
// an exporter's choices (uniflow or biflow, time unit, tunnel mode, which opt-in elements). They
// are encoded as IPFIX into messages of a size the bytes pick, and read back by the test reader
// written apart from the encoder (tests/unit/ipfix_reader.cpp); and written as JSON lines, read
// back by nlohmann::json. Every message must parse, hold as many records as the layout says,
// and carry each direction's packets, octets, protocol and times unchanged; every JSON line must
// be one valid object with the same packets and bytes.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../unit/ipfix_reader.h"
#include "export/exporter.h"
#include "flow/flow_record.h"
#include "ipfix/ipfix.h"
#include "ipfix/netflow.h"

namespace {

using namespace weir;

constexpr uint32_t kReversePen = 29305;

void fill(FuzzedDataProvider& in, flow::DirStats& d, bool must) {
    d.packets = in.ConsumeIntegralInRange<uint64_t>(must ? 1 : 0, 1ull << 40);
    d.octets = in.ConsumeIntegral<uint64_t>() >> in.ConsumeIntegralInRange(0, 63);
    d.first_ns = in.ConsumeIntegralInRange<uint64_t>(1'000'000'000ull, 4'000'000'000ull * 1'000'000'000ull);
    d.last_ns = d.first_ns + in.ConsumeIntegralInRange<uint64_t>(0, 86'400ull * 1'000'000'000ull);
    d.tcp_flags = in.ConsumeIntegral<uint8_t>();
    d.ttl_min = in.ConsumeIntegral<uint8_t>();
    d.ttl_max = in.ConsumeIntegral<uint8_t>();
    d.tos = in.ConsumeIntegral<uint8_t>();
    d.rtt_us = in.ConsumeIntegral<uint32_t>();
}

flow::FlowRecord record(FuzzedDataProvider& in) {
    flow::FlowRecord r;
    std::memset(&r, 0, sizeof(r));
    r.tuple.ip_version = in.ConsumeBool() ? 6 : 4;
    in.ConsumeData(r.tuple.src, r.tuple.ip_version == 6 ? 16 : 4);
    in.ConsumeData(r.tuple.dst, r.tuple.ip_version == 6 ? 16 : 4);
    r.tuple.sport = in.ConsumeIntegral<uint16_t>();
    r.tuple.dport = in.ConsumeIntegral<uint16_t>();
    r.tuple.vlan = in.ConsumeIntegralInRange<uint16_t>(0, 4095);
    r.tuple.proto = in.ConsumeIntegral<uint8_t>();
    fill(in, r.fwd, true);
    fill(in, r.rev, false);
    r.in_port = in.ConsumeIntegralInRange<uint16_t>(0, 3);
    r.end_reason = in.ConsumeIntegralInRange<uint8_t>(1, 5);
    r.flags = in.ConsumeIntegral<uint8_t>() &
        static_cast<uint8_t>(~flow::FlowRecord::kHasSizes);  // sizes only with bins that add up, below
    r.cvlan = in.ConsumeIntegralInRange<uint16_t>(0, 4095);
    r.tunnel_type = in.ConsumeIntegralInRange<uint8_t>(0, 11);
    if (r.tunnel_type) {
        r.tunnel_depth = in.ConsumeIntegralInRange<uint8_t>(1, 8);
        r.tunnel_id = in.ConsumeIntegral<uint32_t>();
        r.tunnel_vlan = in.ConsumeIntegralInRange<uint16_t>(0, 4095);
        r.tunnel_ip_version = in.ConsumeBool() ? 6 : 4;
        in.ConsumeData(r.tunnel_src, r.tunnel_ip_version == 6 ? 16 : 4);
        in.ConsumeData(r.tunnel_dst, r.tunnel_ip_version == 6 ? 16 : 4);
    }
    in.ConsumeData(r.dst_mac, 6);
    in.ConsumeData(r.src_mac, 6);
    r.mpls = in.ConsumeBool() ? (1u << 24) | in.ConsumeIntegralInRange<uint32_t>(0, 0xFFFFFF) : 0;
    if (in.ConsumeBool()) {  // size bins: each direction's packets spread over the bins
        r.flags |= flow::FlowRecord::kHasSizes;
        for (int d = 0; d < 2; ++d) {
            uint64_t left = d ? r.rev.packets : r.fwd.packets;
            for (uint32_t b = 0; b + 1 < flow::kSizeBins; ++b) {
                const uint64_t take = std::min<uint64_t>(left, in.ConsumeIntegral<uint16_t>());
                r.sizes[d][b] = static_cast<uint32_t>(take);
                left -= take;
            }
            r.sizes[d][flow::kSizeBins - 1] = static_cast<uint32_t>(std::min<uint64_t>(left, UINT32_MAX));
        }
    }
    return r;
}

uint64_t u(const test::Record& rec, uint32_t pen, uint16_t ie) { return pen ? rec.u(pen, ie) : rec.u(ie); }

uint64_t be(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = v << 8 | p[i];
    return v;
}

// A NetFlow v9 reader written here, apart from the encoder: templates from flowset 0, data
// flowsets decoded field by field. Adds each data record's IN_PKTS, IN_BYTES and PROTOCOL;
// aborts on anything malformed.
struct V9Reader {
    std::map<uint16_t, std::vector<std::pair<uint16_t, uint16_t>>> templates;
    uint64_t records = 0, packets = 0, octets = 0;
    void parse(const uint8_t* p, size_t n) {
        if (n < 20 || be(p, 2) != 9) std::abort();
        const uint64_t count = be(p + 2, 2);
        uint64_t seen = 0;
        size_t off = 20;
        while (off + 4 <= n) {
            const uint16_t id = static_cast<uint16_t>(be(p + off, 2)), len = static_cast<uint16_t>(be(p + off + 2, 2));
            if (len < 4 || off + len > n) std::abort();
            const uint8_t* b = p + off + 4;
            const size_t blen = len - 4u;
            if (id == 0) {
                size_t o = 0;
                while (o + 4 <= blen) {
                    const uint16_t tid = static_cast<uint16_t>(be(b + o, 2)),
                                   fields = static_cast<uint16_t>(be(b + o + 2, 2));
                    o += 4;
                    if (o + 4u * fields > blen) std::abort();
                    auto& t = templates[tid];
                    t.clear();
                    for (uint16_t f = 0; f < fields; ++f, o += 4)
                        t.emplace_back(static_cast<uint16_t>(be(b + o, 2)), static_cast<uint16_t>(be(b + o + 2, 2)));
                    ++seen;
                }
            } else if (id == 1) {
                seen += 1;  // options template (sampling)
            } else if (id >= 256) {
                auto it = templates.find(id);
                if (it == templates.end()) {
                    seen += 1;  // options data (sampling): one record
                } else {
                    size_t rl = 0;
                    for (const auto& [t, l] : it->second) rl += l;
                    if (rl == 0) std::abort();
                    for (size_t o = 0; o + rl <= blen; o += rl) {
                        size_t q = o;
                        for (const auto& [t, l] : it->second) {
                            if (t == 2) packets += be(b + q, l);
                            if (t == 1) octets += be(b + q, l);
                            q += l;
                        }
                        ++records;
                        ++seen;
                    }
                }
            }
            off += len;
        }
        if (off != n || seen != count) std::abort();
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    ipfix::Options o;
    o.biflow = in.ConsumeBool();
    o.time = static_cast<ipfix::TimeUnit>(in.ConsumeIntegralInRange(0, 2));
    o.tunnels = static_cast<ipfix::Tunnels>(in.ConsumeIntegralInRange(0, 2));
    o.macs = in.ConsumeBool();
    o.mpls = in.ConsumeBool();
    o.rtt = in.ConsumeBool();
    o.sizes = in.ConsumeBool();
    if (in.ConsumeBool()) o.direction = {0, 1, 0xFF};
    const uint32_t mtu = in.ConsumeIntegralInRange<uint32_t>(ipfix::kMinMessage, 9000);
    std::vector<flow::FlowRecord> recs;
    const int n = in.ConsumeIntegralInRange(1, 6);
    for (int i = 0; i < n; ++i) recs.push_back(record(in));

    // IPFIX, read back record by record.
    const ipfix::Layout layout(o);
    std::vector<uint8_t> tmpl(65535), buf(mtu);
    int next = 0;
    test::Reader reader;
    while (next < ipfix::Layout::kVariants) {
        const size_t len = layout.write_templates(tmpl.data() + ipfix::kHeaderLen, mtu - ipfix::kHeaderLen, next);
        if (!len) std::abort();  // one template always fits the smallest message
        ipfix::write_header(tmpl.data(), static_cast<uint16_t>(ipfix::kHeaderLen + len), 0, 0, 7);
        reader.parse(tmpl.data(), ipfix::kHeaderLen + len);
    }
    std::vector<test::Record> got;
    ipfix::MessageEncoder enc(7, mtu, layout);
    auto flush = [&] {
        const uint32_t records = enc.records();
        const uint32_t len = enc.finish();
        if (len > mtu) std::abort();
        const test::Message m = reader.parse(buf.data(), len);  // throws (a finding) when malformed
        if (m.records.size() != records) std::abort();
        got.insert(got.end(), m.records.begin(), m.records.end());
    };
    enc.start(buf.data());
    for (const auto& r : recs) {
        if (enc.add(r)) continue;
        flush();
        enc.start(buf.data());
        if (!enc.add(r)) std::abort();  // any conversation fits an empty message
    }
    if (enc.records()) flush();
    size_t k = 0;
    for (const auto& r : recs) {
        const uint32_t want = layout.records_for(r);
        for (uint32_t j = 0; j < want; ++j, ++k) {
            if (k >= got.size()) std::abort();
            const test::Record& g = got[k];
            const flow::DirStats& d = j ? r.rev : r.fwd;
            if (u(g, 0, 2) != d.packets || u(g, 0, 1) != d.octets) std::abort();
            if (u(g, 0, 4) != r.tuple.proto) std::abort();
            const uint16_t start = o.time == ipfix::TimeUnit::kMilliseconds ? 152
                : o.time == ipfix::TimeUnit::kMicroseconds                  ? 154
                                                                            : 156;
            if (o.time == ipfix::TimeUnit::kMilliseconds &&
                (u(g, 0, start) != d.first_ns / 1'000'000 || u(g, 0, start + 1) != d.last_ns / 1'000'000))
                std::abort();
            if (o.time != ipfix::TimeUnit::kMilliseconds && u(g, 0, start) > u(g, 0, start + 1)) std::abort();
            if (o.biflow && (u(g, kReversePen, 2) != r.rev.packets || u(g, kReversePen, 1) != r.rev.octets))
                std::abort();
        }
    }
    if (k != got.size()) std::abort();

    // JSON lines, one object each, read back.
    config::Exporter ex;
    ex.format = config::Format::kJsonl;
    ex.mode = o.biflow ? config::Mode::kBiflow : config::Mode::kUniflow;
    ex.time_unit = static_cast<config::TimeUnit>(o.time);
    ex.macs = o.macs;
    ex.mpls = o.mpls;
    ex.rtt = o.rtt;
    ex.sizes = o.sizes;
    ex.direction = !o.direction.empty();
    exporter::ExportContext ctx;
    ctx.direction = o.direction;
    std::string out;
    uint64_t records = 0, packets = 0;
    exporter::json_rows(out, recs.data(), static_cast<uint32_t>(recs.size()), 7, ex, &ctx, "fuzz\"probe", false,
                        records, packets);
    uint64_t want_packets = 0, lines = 0, json_packets = 0;
    for (const auto& r : recs) want_packets += r.packets();
    size_t pos = 0;
    while (pos < out.size()) {
        const size_t end = out.find('\n', pos);
        if (end == std::string::npos) std::abort();  // every row ends its line
        const auto j = nlohmann::json::parse(out.begin() + static_cast<long>(pos), out.begin() + static_cast<long>(end),
                                             nullptr, false);
        if (j.is_discarded() || !j.is_object() || j.value("probe", "") != "fuzz\"probe") std::abort();
        json_packets += j.at("packets").get<uint64_t>() + (o.biflow ? j.at("rev_packets").get<uint64_t>() : 0);
        ++lines;
        pos = end + 1;
    }
    if (lines != records || packets != want_packets || json_packets != want_packets) std::abort();

    // NetFlow v9 (uniflow: a record per direction that has packets) and v5 (IPv4 only, 32-bit
    // counters), read back.
    netflow::NetflowClock clock;
    for (const auto& r : recs) clock.observe(r);
    V9Reader v9;
    const bool macs = o.macs;
    netflow::v9::Encoder first(buf.data(), mtu, macs);
    if (!first.add_templates()) std::abort();
    v9.parse(buf.data(), first.finish(clock, 0, 7));
    uint64_t v9_want = 0, v9_records = 0;
    std::vector<uint8_t> nbuf(mtu);
    auto v9_enc = std::make_unique<netflow::v9::Encoder>(nbuf.data(), mtu, macs);
    for (const auto& r : recs) {
        v9_want += r.packets();
        v9_records += r.rev.packets ? 2 : 1;
        if (v9_enc->add(r, clock)) continue;
        v9.parse(nbuf.data(), v9_enc->finish(clock, 1, 7));
        v9_enc = std::make_unique<netflow::v9::Encoder>(nbuf.data(), mtu, macs);
        if (!v9_enc->add(r, clock)) std::abort();
    }
    if (v9_enc->data_records()) v9.parse(nbuf.data(), v9_enc->finish(clock, 2, 7));
    if (v9.records != v9_records || v9.packets != v9_want) std::abort();

    uint64_t v5_records = 0, v5_packets = 0, v5_want = 0, v5_sent = 0;
    netflow::v5::Encoder v5(nbuf.data(), mtu);
    auto v5_read = [&](uint32_t len) {
        if (len < netflow::v5::kHeaderLen || be(nbuf.data(), 2) != 5) std::abort();
        const uint64_t count = be(nbuf.data() + 2, 2);
        if (len != netflow::v5::kHeaderLen + count * netflow::v5::kRecordLen) std::abort();
        for (uint64_t i = 0; i < count; ++i)
            v5_packets += be(nbuf.data() + netflow::v5::kHeaderLen + i * netflow::v5::kRecordLen + 16, 4);
        v5_records += count;
    };
    netflow::v5::Encoder* cur = &v5;
    std::unique_ptr<netflow::v5::Encoder> next5;
    for (const auto& r : recs) {
        if (!netflow::v5::Encoder::can_encode(r)) continue;
        for (const auto* d : {&r.fwd, &r.rev})
            if (d->packets) v5_want += std::min<uint64_t>(d->packets, UINT32_MAX);
        v5_sent += r.rev.packets ? 2 : 1;
        if (cur->add(r, clock)) continue;
        v5_read(cur->finish(clock, 0, 7));
        next5 = std::make_unique<netflow::v5::Encoder>(nbuf.data(), mtu);
        cur = next5.get();
        if (!cur->add(r, clock)) std::abort();
    }
    if (cur->records()) v5_read(cur->finish(clock, 0, 7));
    if (v5_records != v5_sent || v5_packets != v5_want) std::abort();
    return 0;
}

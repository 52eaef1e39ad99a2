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
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../unit/ipfix_reader.h"
#include "export/exporter.h"
#include "flow/flow_record.h"
#include "ipfix/ipfix.h"

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
    return 0;
}

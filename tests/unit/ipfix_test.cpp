// SPDX-License-Identifier: BSD-3-Clause
// IPFIX encoder: byte-exact messages against golden bytes, and everything read back with the
// independent reader in ipfix_reader.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "ipfix/ipfix.h"
#include "ipfix/netflow.h"
#include "ipfix_reader.h"

using namespace weir;

namespace {

std::vector<uint8_t> unhex(const std::string& s) {
    std::vector<uint8_t> v;
    for (size_t i = 0; i + 1 < s.size(); i += 2)
        v.push_back(static_cast<uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
    return v;
}

void set_dir(flow::FlowEntry& e, int d, const flow::DirStats& s) {
    e.c[d] = {s.packets, s.octets, s.first_ns, s.last_ns};
    e.a[d] = {s.tcp_flags, s.ttl_min, s.ttl_max, s.tos};
}

flow::FlowEntry tcp_entry() {
    flow::FlowEntry e{};
    packet::Tuple t{};
    t.ip_version = 4;
    t.proto = 6;
    t.vlan = 100;
    const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
    std::memcpy(t.src, a, 4);
    std::memcpy(t.dst, b, 4);
    t.sport = 1234;
    t.dport = 80;
    e.init_reversed = flow::canonicalize(t, 0, 200, flow::kViewPrimary, e.key);  // QinQ customer VLAN 200
    e.in_port = 2;
    set_dir(e, 0, {3, 180, 1700000000123000000ull, 1700000001456000000ull, 0x1b, 60, 64, 0, 0});
    set_dir(e, 1, {2, 120, 1700000000623000000ull, 1700000001456000000ull, 0x12, 50, 50, 0, 0});
    return e;
}

flow::FlowRecord rec(const flow::FlowEntry& e, flow::EndReason why) {
    flow::FlowRecord r{};
    flow::make_record(e, why, r);
    return r;
}

// One message holding `r` in the layout's plain template, read back with its templates.
test::Message encode_and_read(const ipfix::Layout& layout, const flow::FlowRecord& r) {
    std::vector<uint8_t> tmpl(2048), buf(1452);
    const size_t set = layout.write_template_set(tmpl.data() + 16, tmpl.size() - 16);
    EXPECT_GT(set, 0u);
    ipfix::write_header(tmpl.data(), static_cast<uint16_t>(16 + set), 0, 0, 1);
    ipfix::MessageEncoder enc(1, 1452, layout);
    enc.start(buf.data());
    EXPECT_TRUE(enc.add(r));
    const uint32_t len = enc.finish();
    test::Reader rd;
    rd.parse(tmpl.data(), 16 + set);
    return rd.parse(buf.data(), len);
}

}  // namespace

TEST(Ipfix, GoldenTwoWayTcpMessage) {
    // Built independently with struct.pack from RFC 7011 section 3 and the IANA element list.
    const auto golden = unhex(
        "000a008e0000000000000000000000070100007e0000018bcfe5687b0000018bcfe56db00000000000000003000000"
        "00000000b40a0000010a0000020000000204d200500000006400c8001b06003c40030000018bcfe56a6f0000018bcf"
        "e56db0000000000000000200000000000000780a0000020a00000100000002005004d20000006400c800120600323203");
    std::vector<uint8_t> buf(1452);
    ipfix::MessageEncoder enc(7, 1452);
    enc.start(buf.data());
    ASSERT_TRUE(enc.add(rec(tcp_entry(), flow::EndReason::kEndOfFlow)));
    EXPECT_EQ(enc.records(), 2u);
    EXPECT_EQ(enc.packets(), 5u);
    const uint32_t len = enc.finish();
    ASSERT_EQ(len, golden.size());
    EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + len), golden);
}

TEST(Ipfix, TemplatesAndRecordsReadBack) {
    std::vector<uint8_t> tmpl(512);
    const size_t set = ipfix::write_template_set(tmpl.data() + 16, tmpl.size() - 16);
    ASSERT_GT(set, 0u);
    ipfix::write_header(tmpl.data(), static_cast<uint16_t>(16 + set), 1700000000, 0, 9);
    test::Reader rd;
    const auto tm = rd.parse(tmpl.data(), 16 + set);
    EXPECT_EQ(tm.template_count, 2);

    // One IPv6 ICMPv6 flow after one IPv4 flow: two data sets in one message.
    flow::FlowEntry v6{};
    packet::Tuple t{};
    t.ip_version = 6;
    t.proto = 58;
    t.src[0] = 0xfe;
    t.src[1] = 0x80;
    t.src[15] = 1;
    t.dst[0] = 0xff;
    t.dst[1] = 0x02;
    t.dst[15] = 0x16;
    t.dport = 143 << 8;
    v6.init_reversed = flow::canonicalize(t, 0, 0, flow::kViewPrimary, v6.key);
    set_dir(v6, 0, {2, 152, 5'000'000'000ull, 6'000'000'000ull, 0, 1, 1, 0, 0});
    std::vector<uint8_t> buf(1452);
    ipfix::MessageEncoder enc(9, 1452);
    enc.start(buf.data());
    ASSERT_TRUE(enc.add(rec(tcp_entry(), flow::EndReason::kIdle)));
    ASSERT_TRUE(enc.add(rec(v6, flow::EndReason::kForced)));
    const uint32_t len = enc.finish();
    ipfix::set_header_fields(buf.data(), 1700000001, 42);
    const auto m = rd.parse(buf.data(), len);
    EXPECT_EQ(m.sequence, 42u);
    EXPECT_EQ(m.export_time, 1700000001u);
    EXPECT_EQ(m.domain, 9u);
    ASSERT_EQ(m.records.size(), 3u);
    const auto& r0 = m.records[0];
    EXPECT_EQ(r0.template_id, ipfix::kTemplateIdV4);
    EXPECT_EQ(r0.u(ipfix::kSourceTransportPort), 1234u);
    EXPECT_EQ(r0.u(ipfix::kPacketDeltaCount), 3u);
    EXPECT_EQ(r0.u(ipfix::kFlowEndReason), 1u);
    EXPECT_EQ(r0.u(ipfix::kVlanId), 100u);
    EXPECT_EQ(r0.u(ipfix::kFlowStartMilliseconds), 1700000000123u);
    EXPECT_EQ(m.records[1].u(ipfix::kSourceTransportPort), 80u);
    EXPECT_EQ(m.records[1].u(ipfix::kPacketDeltaCount), 2u);
    const auto& r2 = m.records[2];
    EXPECT_EQ(r2.template_id, ipfix::kTemplateIdV6);
    EXPECT_EQ(r2.u(ipfix::kIcmpTypeCodeIPv6), 143u << 8);
    EXPECT_EQ(r2.u(ipfix::kDestinationTransportPort), 0u);
    EXPECT_EQ(r2.u(ipfix::kOctetDeltaCount), 152u);
    EXPECT_EQ(r2.bytes(ipfix::kSourceIPv6Address)[0], 0xfe);
    EXPECT_EQ(r2.bytes(ipfix::kDestinationIPv6Address)[15], 0x16);
    EXPECT_EQ(r2.u(ipfix::kFlowEndMilliseconds), 6000u);
}

TEST(Ipfix, MessagesNeverExceedTheLimit) {
    const uint32_t limit = 1500 - 48;
    std::vector<uint8_t> buf(limit);
    ipfix::MessageEncoder enc(1, limit);
    enc.start(buf.data());
    int added = 0;
    while (enc.add(rec(tcp_entry(), flow::EndReason::kIdle))) ++added;
    const uint32_t len = enc.finish();
    EXPECT_LE(len, limit);
    EXPECT_EQ(added, static_cast<int>((limit - 16 - 4) / (2 * 61)));
    test::Reader rd;
    std::vector<uint8_t> tmpl(512);
    const size_t set = ipfix::write_template_set(tmpl.data() + 16, 496);
    ipfix::write_header(tmpl.data(), static_cast<uint16_t>(16 + set), 0, 0, 1);
    rd.parse(tmpl.data(), 16 + set);
    EXPECT_EQ(rd.parse(buf.data(), len).records.size(), static_cast<size_t>(2 * added));
}

TEST(Ipfix, TemplateLengthsMatchRecordLengths) {
    for (bool v6 : {false, true}) {
        uint32_t sum = 0;
        for (const auto& f : ipfix::template_fields(v6)) sum += f.length;
        EXPECT_EQ(sum, ipfix::record_length(v6));
    }
}

TEST(Ipfix, MicroAndNanosecondTimesRoundTrip) {
    // NTP timestamps (RFC 7011 6.1.9): a reader truncating to ns, or rounding to us, gets the
    // packet time back exactly.
    auto decode_ns = [](uint64_t ntp) {
        const uint64_t secs = (ntp >> 32) - 2208988800ull;
        return secs * 1'000'000'000ull + (((ntp & 0xFFFFFFFFull) * 1'000'000'000ull) >> 32);
    };
    for (uint64_t ns : {1308930694548963546ull, 1700000000000000000ull, 1700000000999999999ull, 1700000000000000001ull,
                        1700000000123456789ull}) {
        flow::FlowEntry e = tcp_entry();
        e.c[0].first_ns = e.c[0].last_ns = ns;
        set_dir(e, 1, flow::DirStats{});
        for (auto unit : {ipfix::TimeUnit::kNanoseconds, ipfix::TimeUnit::kMicroseconds}) {
            const auto m = encode_and_read(ipfix::Layout({false, unit}), rec(e, flow::EndReason::kIdle));
            ASSERT_EQ(m.records.size(), 1u);
            if (unit == ipfix::TimeUnit::kNanoseconds) {
                EXPECT_EQ(decode_ns(m.records[0].u(ipfix::kFlowStartNanoseconds)), ns);
            } else {
                const uint64_t ntp = m.records[0].u(ipfix::kFlowStartMicroseconds);
                EXPECT_EQ(ntp & 0x7FF, 0u) << "low 11 bits of a microsecond time are zero";
                EXPECT_EQ((decode_ns(ntp) + 500) / 1000, ns / 1000);
            }
        }
    }
}

TEST(Ipfix, BiflowTemplateUsesReverseElements) {
    const ipfix::Layout bi({true, ipfix::TimeUnit::kMilliseconds});
    int reverse = 0;
    for (const auto& f : bi.fields(false)) reverse += f.pen == ipfix::kReversePen;
    EXPECT_EQ(reverse, 7);  // start, end, packets, octets, tcp flags, min and max TTL
    std::vector<uint8_t> tmpl(1024), buf(1452);
    const size_t set = bi.write_template_set(tmpl.data() + 16, 1000);
    ipfix::write_header(tmpl.data(), static_cast<uint16_t>(16 + set), 0, 0, 1);
    ipfix::MessageEncoder enc(1, 1452, bi);
    enc.start(buf.data());
    ASSERT_TRUE(enc.add(rec(tcp_entry(), flow::EndReason::kIdle)));
    EXPECT_EQ(enc.records(), 1u) << "one record for both directions";
    const uint32_t len = enc.finish();
    EXPECT_EQ(len, 16u + 4u + bi.record_length(false));
}

TEST(Ipfix, OptInElementsReadBack) {
    // A conversation with an MPLS label, a measured handshake and size histograms, through the
    // uniflow and the biflow layout with every opt-in element, read by the independent reader.
    flow::FlowEntry e = tcp_entry();
    uint8_t l2[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    packet::set_mpls(l2, 1u << 24 | 299776u << 4 | 3u << 1 | 1);
    const flow::Handshake hs{e.c[0].first_ns + 250'400, e.c[0].first_ns + 250'400 + 31'000};
    uint32_t sizes[2][flow::kSizeBins] = {{1, 2, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 1, 1, 0}};
    flow::FlowRecord r{};
    flow::make_record(e, flow::EndReason::kIdle, nullptr, flow::EntrySide{l2, &hs, &sizes[0][0]}, r);
    const uint32_t pen = ipfix::kWeirPenDefault;
    for (bool biflow : {false, true}) {
        ipfix::Options o{biflow, ipfix::TimeUnit::kMilliseconds};
        o.mpls = o.rtt = o.sizes = true;
        o.direction = {0xFF, 0xFF, 1};  // port 2 captures egress traffic
        const ipfix::Layout layout(o);
        EXPECT_GE(layout.template_id(false), 1024) << "ids apart from the layouts without the extras";
        const auto m = encode_and_read(layout, r);
        ASSERT_EQ(m.records.size(), biflow ? 1u : 2u);
        for (size_t i = 0; i < m.records.size(); ++i) {
            const auto& x = m.records[i];
            EXPECT_EQ(x.u(ipfix::kMplsTopLabelStackSection), 299776u << 4 | 3u << 1 | 1);
            EXPECT_EQ(x.u(ipfix::kFlowDirection), 1u);
            EXPECT_EQ(x.u(pen, ipfix::kHandshakeServerRttMicroseconds), 250u);
            EXPECT_EQ(x.u(pen, ipfix::kHandshakeClientRttMicroseconds), 31u);
            const auto h = x.bytes(pen, ipfix::kPacketSizeHistogram);
            ASSERT_EQ(h.size(), 32u);
            const int d = biflow ? 0 : static_cast<int>(i);  // uniflow: each direction its own
            for (uint32_t b = 0; b < flow::kSizeBins; ++b)
                EXPECT_EQ(static_cast<uint32_t>(h[4 * b] << 24 | h[4 * b + 1] << 16 | h[4 * b + 2] << 8 | h[4 * b + 3]),
                          sizes[d][b]);
            if (biflow) {
                const auto rh = x.bytes(pen, ipfix::kReversePacketSizeHistogram);
                EXPECT_EQ(rh[4 * 5 + 3], 1);
                EXPECT_EQ(rh[4 * 6 + 3], 1);
            }
        }
    }
    // Not measured: all ones.
    flow::FlowRecord plain = rec(tcp_entry(), flow::EndReason::kIdle);
    ipfix::Options o;
    o.rtt = true;
    const auto m = encode_and_read(ipfix::Layout(o), plain);
    ASSERT_EQ(m.records.size(), 2u);  // uniflow: a record per direction
    EXPECT_EQ(m.records[0].u(pen, ipfix::kHandshakeServerRttMicroseconds), 0xFFFFFFFFu);
}

TEST(Netflow, V5PacketsFitTheBuffer) {
    // 30 records need 1464 bytes; a 1452-byte limit (1500 MTU over IPv6) holds 29.
    for (const auto& [limit, want] : std::vector<std::pair<size_t, uint16_t>>{{1452, 29}, {1464, 30}, {9000, 30}}) {
        std::vector<uint8_t> buf(limit);
        netflow::NetflowClock clock;
        flow::FlowRecord r = rec(tcp_entry(), flow::EndReason::kIdle);
        r.rev = flow::DirStats{};
        clock.observe(r);
        netflow::v5::Encoder enc(buf.data(), limit);
        uint16_t n = 0;
        while (enc.add(r, clock)) ++n;
        EXPECT_EQ(n, want) << limit;
        EXPECT_LE(enc.finish(clock, 0, 1), limit);
    }
}

// IPv4 and IPv6 records alternate, so every record opens a flowset and closes the previous one
// with its padding: at every limit the packet stays inside it (the export fuzzer found a v9
// packet written up to 3 bytes past its buffer when the closing padding was not counted).
TEST(Netflow, V9SwitchingFlowsetsNeverPassTheLimit) {
    netflow::NetflowClock clock;
    flow::FlowRecord v4 = rec(tcp_entry(), flow::EndReason::kIdle);
    flow::FlowRecord v6 = v4;
    v6.tuple.ip_version = 6;
    v4.rev = v6.rev = flow::DirStats{};
    clock.observe(v4);
    for (uint32_t limit = 100; limit <= 600; ++limit) {
        std::vector<uint8_t> buf(limit);  // exactly: ASan sees a byte past it
        netflow::v9::Encoder enc(buf.data(), limit);
        int n = 0;
        while (enc.add(n % 2 ? v6 : v4, clock)) ++n;
        const uint32_t len = enc.finish(clock, 0, 1);
        ASSERT_LE(len, limit) << n << " records";
        EXPECT_EQ(len % 4, 0u);
    }
}

TEST(Netflow, V9PacketsNeverExceedTheLimit) {
    std::vector<uint8_t> buf(1452);
    netflow::NetflowClock clock;
    const flow::FlowRecord r = rec(tcp_entry(), flow::EndReason::kIdle);
    clock.observe(r);
    netflow::v9::Encoder enc(buf.data(), 1452);
    ASSERT_TRUE(enc.add_templates());
    int n = 0;
    while (enc.add(r, clock)) ++n;
    EXPECT_GT(n, 10);
    const uint32_t len = enc.finish(clock, 7, 1);
    EXPECT_LE(len, 1452u);
    EXPECT_EQ(len % 4, 0u) << "flowsets end on 32-bit boundaries";
    // Header: version 9, count = 2 templates + data records, unix secs at a whole second.
    EXPECT_EQ(buf[0] << 8 | buf[1], 9);
    EXPECT_EQ(buf[2] << 8 | buf[3], 2 + 2 * n);
    const uint64_t unix_secs = static_cast<uint64_t>(buf[8]) << 24 | buf[9] << 16 | buf[10] << 8 | buf[11];
    const uint64_t uptime = static_cast<uint64_t>(buf[4]) << 24 | buf[5] << 16 | buf[6] << 8 | buf[7];
    EXPECT_EQ(unix_secs * 1000 - uptime, clock.boot_ms()) << "collectors recover boot exactly";
}

// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target: arbitrary bytes as the payload packets of a few flows (split into segments,
// both directions, TCP and UDP, several ports), scanned by the shipped application rules in
// Hyperscan stream mode with small pools, so contexts and name slots run dry and come back; every
// flow then ends into a record that is encoded as IPFIX with its variable-length fields. Also the
// server-name parsers on the whole input. Must never read out of bounds, crash or leak a slot.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "inspect/inspector.h"
#include "inspect/ipfix_names.h"
#include "inspect/names.h"
#include "inspect/rules.h"
#include "ipfix/ipfix.h"

namespace {

using namespace weir;

struct State {
    static constexpr uint32_t kFlows = 16;
    inspect::InspectConfig cfg = [] {
        inspect::InspectConfig c;
        c.depth = 600;
        c.packets = 6;
        c.streams = 5;
        c.names = 3;
        return c;
    }();
    std::shared_ptr<const inspect::Ruleset> rules =
        inspect::Ruleset::compile(inspect::load_rules_file(WEIR_RULES_FILE), cfg.depth, WEIR_RULES_FILE);
    inspect::Engine engine{rules, cfg.streams};
    inspect::Inspector insp{cfg, kFlows};
    inspect::RegistryNames names;
    ipfix::Layout layout{[this] {
        ipfix::Options o;
        o.biflow = true;
        o.names = &names;
        return o;
    }()};
    std::vector<uint8_t> buf = std::vector<uint8_t>(1452);
    State() { insp.attach(&engine); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static State s;
    const inspect::FoundName f = inspect::find_name(data, size);
    if (f.kind != inspect::NameKind::kNone && (f.data < data || f.data + f.len > data + size)) std::abort();
    if (size < 2) return 0;
    // Byte 0: flow count and protocol; then segments, each led by a byte: length, direction, flow.
    const uint32_t flows = 1 + data[0] % State::kFlows;
    const uint8_t proto = data[0] & 0x80 ? 17 : 6;
    static const uint16_t kPorts[] = {80, 443, 22, 53, 25, 445, 3389, 1194, 5432, 40000};
    bool live[State::kFlows] = {};
    size_t i = 1;
    while (i < size) {
        const uint8_t h = data[i++];
        const uint32_t flow = (h >> 1) % flows;
        const int dir = h & 1;
        size_t len = 1 + (h * 7u) % 200;
        if (len > size - i) len = size - i;
        if (!live[flow]) {
            s.insp.start(flow);
            live[flow] = true;
        }
        s.insp.scan(flow, dir, proto, 40000 + static_cast<uint16_t>(flow), kPorts[flow % 10], data + i,
                    static_cast<uint32_t>(len));
        i += len;
    }
    ipfix::MessageEncoder enc(1, static_cast<uint32_t>(s.buf.size()), s.layout);
    enc.start(s.buf.data());
    for (uint32_t e = 0; e < flows; ++e) {
        if (!live[e]) continue;
        flow::FlowRecord r{};
        flow::Findings found{};
        r.tuple.ip_version = 4;
        r.tuple.proto = proto;
        r.tuple.sport = static_cast<uint16_t>(40000 + e);
        r.tuple.dport = kPorts[e % 10];
        r.fwd.packets = 1;
        s.insp.finish(e, r, found);
        if (!enc.add(r)) {
            enc.finish();
            enc.start(s.buf.data());
            if (!enc.add(r)) std::abort();
        }
    }
    enc.finish();
    if (s.insp.stats().in_use.get() != 0) std::abort();  // every context back in the pool
    return 0;
}

// What a worker hands to the exporters for each conversation that ends: fixed length (128 B),
// both directions, so every format (uniflow or biflow IPFIX, NetFlow, JSON) is encoded on the
// control side from the same bytes.
#pragma once

#include <cstdint>

#include "flow/flow_table.h"

namespace weir::flow {

struct FlowRecord {
    packet::Tuple tuple;  // the initiator's direction (the first packet seen)
    DirStats fwd;         // initiator -> responder
    DirStats rev;         // responder -> initiator; packets == 0 when it never answered
    uint16_t in_port;
    uint8_t end_reason;   // EndReason
    uint8_t reserved[5];

    uint64_t packets() const noexcept { return fwd.packets + rev.packets; }
    packet::Tuple reverse_tuple() const noexcept {
        packet::Tuple t = tuple;
        for (int i = 0; i < 16; ++i) t.src[i] = tuple.dst[i], t.dst[i] = tuple.src[i];
        t.sport = tuple.dport;
        t.dport = tuple.sport;
        return t;
    }
};
static_assert(sizeof(FlowRecord) == 128);

inline void make_record(const FlowEntry& e, EndReason why, FlowRecord& r) noexcept {
    r.tuple = e.tuple(0);
    r.fwd = e.dir[0];
    r.rev = e.dir[1];
    r.in_port = e.in_port;
    r.end_reason = static_cast<uint8_t>(why);
}

}  // namespace weir::flow

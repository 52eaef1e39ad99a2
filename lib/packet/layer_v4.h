// SPDX-License-Identifier: BSD-3-Clause
// A decoded IPv4 layer made from numbers (addresses in host order), as the decoder would give it
// for such a packet: for feeding the flow table and detection's observers without frames (unit
// tests, benchmarks).
#pragma once

#include <cstdint>
#include <cstring>

#include "packet/decode.h"

namespace weir::packet {

inline Layer ipv4_layer(uint32_t src, uint32_t dst, uint8_t proto, uint16_t sport, uint16_t dport,
                        uint8_t tcp_flags = 0, uint32_t ip_octets = 60) {
    Layer l{};
    const uint32_t s = __builtin_bswap32(src), d = __builtin_bswap32(dst);
    std::memcpy(l.tuple.src, &s, 4);
    std::memcpy(l.tuple.dst, &d, 4);
    l.tuple.proto = proto;
    l.tuple.sport = sport;
    l.tuple.dport = dport;
    l.tuple.ip_version = 4;
    l.tcp_flags = tcp_flags;
    l.ip_octets = ip_octets;
    return l;
}

}  // namespace weir::packet

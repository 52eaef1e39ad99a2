// SPDX-License-Identifier: BSD-3-Clause
// Flow identity: the canonical (direction-independent) form of a packet's Tuple, the context that
// keeps tunnels and QinQ customers apart, and the hash. Both directions of a conversation map to
// one key, so one lookup serves both and the table keeps one entry per conversation. Used by the
// worker's flow table on every packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "packet/decode.h"

namespace weir::flow {

// What a flow's key says about the packets in it, beside their addresses.
enum View : uint8_t {
    kViewPrimary = 0,    // every packet is accounted once in a flow of this view
    kViewOuterCopy = 1,  // the tunnel's own (outer) flow in the both mode: its packets are also in tenant flows
};

struct FlowKey {
    packet::Tuple tuple;  // canonical: the smaller address first
    uint32_t tunnel;      // the worker's TunnelTable reference of the tunnel carrying the flow; 0: none
    uint16_t cvlan;       // QinQ customer VLAN of the frame carrying the IP header
    uint8_t view;         // View
    uint8_t reserved;
};
static_assert(sizeof(FlowKey) == 48);
static_assert(offsetof(FlowKey, tunnel) == 40 && offsetof(FlowKey, cvlan) == 44 && offsetof(FlowKey, view) == 46);

// Writes the canonical form of `t` into `key` and returns true when `t` runs from the key's
// destination to its source (the reverse of canonical order).
inline bool canonicalize(const packet::Tuple& t, uint32_t tunnel, uint16_t cvlan, uint8_t view, FlowKey& key) noexcept {
    // Any total order works; comparing the addresses as two native 64-bit words is cheapest.
    uint64_t s[2], d[2];
    std::memcpy(s, t.src, 16);
    std::memcpy(d, t.dst, 16);
    const bool swap = s[1] != d[1] ? s[1] > d[1] : s[0] != d[0] ? s[0] > d[0] : t.sport > t.dport;
    key.tuple = t;
    if (swap) {
        std::memcpy(key.tuple.src, t.dst, 16);
        std::memcpy(key.tuple.dst, t.src, 16);
        key.tuple.sport = t.dport;
        key.tuple.dport = t.sport;
    }
    // The context word in one store: tunnel, customer VLAN, view, and the reserved byte zeroed.
    const uint64_t ctx =
        static_cast<uint64_t>(tunnel) | static_cast<uint64_t>(cvlan) << 32 | static_cast<uint64_t>(view) << 48;
    std::memcpy(&key.tunnel, &ctx, 8);
    return swap;
}

inline bool key_equal(const FlowKey& a, const FlowKey& b) noexcept {
    uint64_t x[6], y[6];
    std::memcpy(x, &a, 48);
    std::memcpy(y, &b, 48);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]) | (x[5] ^ y[5])) == 0;
}

// 64-bit hash of `n` 64-bit words: multiply-xorshift per word, then a final avalanche.
inline uint64_t hash_words(const uint64_t* w, int n, uint64_t seed = 0x243F6A8885A308D3ull) noexcept {
    constexpr uint64_t m = 0x9E3779B97F4A7C15ull;
    uint64_t h = seed;
    for (int i = 0; i < n; ++i) {
        uint64_t x = w[i] * m;
        x ^= x >> 29;
        h = (h ^ x) * 0xBF58476D1CE4E5B9ull;
    }
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 32;
    return h;
}

// Two chains of three words each, side by side (half the serial multiplies of one chain of six),
// joined by a final avalanche.
inline uint64_t key_hash(const FlowKey& k) noexcept {
    uint64_t w[6];
    std::memcpy(w, &k, 48);
    constexpr uint64_t m = 0x9E3779B97F4A7C15ull;
    uint64_t h0 = 0x243F6A8885A308D3ull, h1 = 0x13198A2E03707344ull;
    for (int i = 0; i < 6; i += 2) {
        uint64_t x0 = w[i] * m, x1 = w[i + 1] * m;
        x0 ^= x0 >> 29;
        x1 ^= x1 >> 29;
        h0 = (h0 ^ x0) * 0xBF58476D1CE4E5B9ull;
        h1 = (h1 ^ x1) * 0x94D049BB133111EBull;
    }
    uint64_t h = h0 ^ (h1 << 32 | h1 >> 32);
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 32;
    return h;
}

}  // namespace weir::flow

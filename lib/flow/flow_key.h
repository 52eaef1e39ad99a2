// Flow identity: the canonical (direction-independent) form of a packet's Tuple and its hash.
// Both directions of a conversation map to one key, so one lookup serves both and the table
// keeps one entry per conversation. Used by the worker's flow table on every packet.
#pragma once

#include <cstdint>
#include <cstring>

#include "packet/decode.h"

namespace weir::flow {

using FlowKey = packet::Tuple;

// Writes the canonical form of `t` into `key` and returns true when `t` runs from the key's
// destination to its source (the reverse of canonical order).
inline bool canonicalize(const packet::Tuple& t, FlowKey& key) noexcept {
    // Any total order works; comparing the addresses as two native 64-bit words is cheapest.
    uint64_t s[2], d[2];
    std::memcpy(s, t.src, 16);
    std::memcpy(d, t.dst, 16);
    const bool swap = s[1] != d[1] ? s[1] > d[1] : s[0] != d[0] ? s[0] > d[0] : t.sport > t.dport;
    key = t;
    if (swap) {
        std::memcpy(key.src, t.dst, 16);
        std::memcpy(key.dst, t.src, 16);
        key.sport = t.dport;
        key.dport = t.sport;
    }
    return swap;
}

inline bool key_equal(const FlowKey& a, const FlowKey& b) noexcept {
    uint64_t x[5], y[5];
    std::memcpy(x, &a, 40);
    std::memcpy(y, &b, 40);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

// 64-bit hash of the 40 key bytes: multiply-xorshift per word, then a final avalanche.
inline uint64_t key_hash(const FlowKey& k) noexcept {
    uint64_t w[5];
    std::memcpy(w, &k, 40);
    constexpr uint64_t m = 0x9E3779B97F4A7C15ull;
    uint64_t h = 0x243F6A8885A308D3ull;
    for (uint64_t x : w) {
        x *= m;
        x ^= x >> 29;
        h = (h ^ x) * 0xBF58476D1CE4E5B9ull;
    }
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 32;
    return h;
}

}  // namespace weir::flow

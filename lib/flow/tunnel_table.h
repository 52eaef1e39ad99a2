// SPDX-License-Identifier: BSD-3-Clause
// One worker's table of the tunnels its flows ride in: each distinct (type, id, delivery end
// points, VLAN) gets a small reference that goes into the flow key in place of 40 bytes of outer
// headers. A tunnel lives as long as a flow (or a packet being processed) refers to it. Owned by
// one worker; sized at start-up, nothing allocated after.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

#include "common/counter.h"
#include "flow/flow_key.h"
#include "packet/decode.h"

namespace weir::flow {

// The direction-independent identity of a tunnel: its end points in canonical order.
struct TunnelKey {
    uint8_t lo[16];  // the smaller delivery address
    uint8_t hi[16];
    uint32_t id;            // VNI, key, session, label
    uint16_t vlan;          // VLAN of the delivery header's frame
    uint8_t type;           // packet::TunnelType
    uint8_t version_depth;  // delivery IP version << 4 | tunnels opened (depth)
};
static_assert(sizeof(TunnelKey) == 40);

// Fills `k` from a decoded packet's tunnel; returns true when the packet's delivery source is
// the key's `hi` end (it runs hi -> lo).
inline bool make_tunnel_key(const packet::TunnelInfo& t, TunnelKey& k) noexcept {
    const bool swap = std::memcmp(t.src, t.dst, 16) > 0;
    std::memcpy(k.lo, swap ? t.dst : t.src, 16);
    std::memcpy(k.hi, swap ? t.src : t.dst, 16);
    k.id = t.id;
    k.vlan = t.vlan;
    k.type = static_cast<uint8_t>(t.type);
    k.version_depth = static_cast<uint8_t>(t.ip_version << 4 | (t.depth & 0x0F));
    return swap;
}

inline uint64_t tunnel_hash(const TunnelKey& k) noexcept {
    uint64_t w[5];
    std::memcpy(w, &k, 40);
    return hash_words(w, 5, 0x452821E638D01377ull);
}

struct TunnelTableStats {
    Counter full;    // a new tunnel found no free context: its packets were keyed on the outer headers
    Counter active;  // contexts in use (a gauge)
};

class TunnelTable {
public:
    explicit TunnelTable(uint32_t capacity);  // throws std::bad_alloc / std::invalid_argument

    // The reference of `k` (hash from tunnel_hash), created if new, and pinned: it stays valid
    // until release(). 0 when the table is full.
    uint32_t intern(const TunnelKey& k, uint64_t hash) noexcept;
    void acquire(uint32_t ref) noexcept { ++slots_[ref - 1].refs; }
    void release(uint32_t ref) noexcept {
        if (--slots_[ref - 1].refs == 0) erase(ref);
    }
    const TunnelKey& key(uint32_t ref) const noexcept { return slots_[ref - 1].key; }
    uint32_t refs(uint32_t ref) const noexcept { return slots_[ref - 1].refs; }

    uint32_t capacity() const noexcept { return capacity_; }
    uint32_t size() const noexcept { return capacity_ - free_top_; }
    size_t memory_bytes() const noexcept;
    const TunnelTableStats& stats() const noexcept { return stats_; }

private:
    struct Slot {
        TunnelKey key;
        uint32_t refs;
        uint32_t hash;
    };
    void erase(uint32_t ref) noexcept;

    uint32_t capacity_;
    uint32_t mask_;                      // index size - 1
    std::unique_ptr<Slot[]> slots_;      // stable: a reference is slot + 1
    std::unique_ptr<uint32_t[]> index_;  // open addressing, linear probing: reference or 0
    std::unique_ptr<uint32_t[]> free_;   // free slot numbers
    uint32_t free_top_;
    TunnelTableStats stats_;
};

}  // namespace weir::flow

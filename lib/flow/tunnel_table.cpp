// SPDX-License-Identifier: BSD-3-Clause
#include "flow/tunnel_table.h"

#include <stdexcept>

namespace weir::flow {

TunnelTable::TunnelTable(uint32_t capacity) : capacity_(capacity) {
    if (capacity_ < 1 || capacity_ > (1u << 24)) throw std::invalid_argument("tunnel contexts must be 1 .. 16777216");
    uint32_t n = 2;
    while (n < 2 * capacity_) n <<= 1;  // load factor at most one half
    mask_ = n - 1;
    slots_ = std::make_unique<Slot[]>(capacity_);
    index_ = std::make_unique<uint32_t[]>(n);
    free_ = std::make_unique<uint32_t[]>(capacity_);
    for (uint32_t i = 0; i < n; ++i) index_[i] = 0;
    for (uint32_t i = 0; i < capacity_; ++i) {
        slots_[i].refs = 0;
        free_[i] = capacity_ - 1 - i;
    }
    free_top_ = capacity_;
}

size_t TunnelTable::memory_bytes() const noexcept {
    return sizeof(Slot) * capacity_ + sizeof(uint32_t) * (mask_ + 1) + sizeof(uint32_t) * capacity_;
}

uint32_t TunnelTable::intern(const TunnelKey& k, uint64_t hash) noexcept {
    const uint32_t h = static_cast<uint32_t>(hash);
    for (uint32_t i = h & mask_;; i = (i + 1) & mask_) {
        const uint32_t ref = index_[i];
        if (ref == 0) {
            if (free_top_ == 0) {
                stats_.full.add();
                return 0;
            }
            const uint32_t s = free_[--free_top_];
            slots_[s].key = k;
            slots_[s].refs = 1;
            slots_[s].hash = h;
            index_[i] = s + 1;
            stats_.active.add();
            return s + 1;
        }
        Slot& slot = slots_[ref - 1];
        if (slot.hash == h && std::memcmp(&slot.key, &k, sizeof(TunnelKey)) == 0) {
            ++slot.refs;
            return ref;
        }
    }
}

// Linear probing with backward-shift deletion: no tombstones, so lookups stay short.
void TunnelTable::erase(uint32_t ref) noexcept {
    uint32_t i = slots_[ref - 1].hash & mask_;
    while (index_[i] != ref) i = (i + 1) & mask_;
    for (uint32_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
        const uint32_t r = index_[j];
        if (r == 0) break;
        const uint32_t home = slots_[r - 1].hash & mask_;
        // Move r into the hole at i when its home is not in the cyclic range (i, j].
        if (((j - home) & mask_) >= ((j - i) & mask_)) {
            index_[i] = r;
            i = j;
        }
    }
    index_[i] = 0;
    free_[free_top_++] = ref - 1;
    stats_.active.sub();
}

}  // namespace weir::flow

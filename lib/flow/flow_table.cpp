// SPDX-License-Identifier: BSD-3-Clause
#include "flow/flow_table.h"

#include <sys/mman.h>

#include <cstring>
#include <new>
#include <stdexcept>

namespace weir::flow {

const char* end_reason_name(EndReason r) noexcept {
    switch (r) {
        case EndReason::kIdle: return "idle";
        case EndReason::kActive: return "active";
        case EndReason::kEndOfFlow: return "end_of_flow";
        case EndReason::kForced: return "forced";
        case EndReason::kLackOfResources: return "evicted";
    }
    return "unknown";
}

packet::Tuple FlowEntry::tuple(int d) const noexcept {
    packet::Tuple t = key.tuple;
    if ((d != 0) != (init_reversed != 0)) {
        std::memcpy(t.src, key.tuple.dst, 16);
        std::memcpy(t.dst, key.tuple.src, 16);
        t.sport = key.tuple.dport;
        t.dport = key.tuple.sport;
    }
    return t;
}

namespace {
size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
}  // namespace

FlowTable::FlowTable(const TableConfig& cfg) : cfg_(cfg), capacity_(cfg.capacity) {
    if (capacity_ < 16 || capacity_ > (1u << 28))
        throw std::invalid_argument("flow table capacity must be 16 .. 268435456");
    // Twice as many ways as entries: candidate buckets stay below half full on average.
    uint32_t nb = 2;
    while (static_cast<uint64_t>(nb) * kWays < 2ull * capacity_) nb <<= 1;
    bucket_mask_ = nb - 1;

    const size_t b_bytes = round_up(sizeof(Bucket) * nb, 4096);
    const size_t e_bytes = round_up(sizeof(FlowEntry) * capacity_, 4096);
    const size_t l_bytes = round_up(sizeof(Link) * (capacity_ + kSlots), 4096);
    const size_t f_bytes = round_up(sizeof(uint32_t) * capacity_, 4096);
    const size_t m_bytes = cfg.macs || cfg.mpls ? round_up(16ull * capacity_, 4096) : 0;
    const size_t h_bytes = cfg.rtt ? round_up(sizeof(Handshake) * capacity_, 4096) : 0;
    const size_t z_bytes = cfg.sizes ? round_up(sizeof(uint32_t) * 2 * kSizeBins * capacity_, 4096) : 0;
    bytes_ = b_bytes + e_bytes + l_bytes + f_bytes + m_bytes + h_bytes + z_bytes;
    void* m = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    madvise(m, bytes_, MADV_HUGEPAGE);  // fewer TLB misses; a hint only
    mem_ = m;
    auto* p = static_cast<uint8_t*>(m);
    buckets_ = reinterpret_cast<Bucket*>(p);
    entries_ = reinterpret_cast<FlowEntry*>(p + b_bytes);
    links_ = reinterpret_cast<Link*>(p + b_bytes + e_bytes);
    free_ = reinterpret_cast<uint32_t*>(p + b_bytes + e_bytes + l_bytes);
    uint8_t* side = p + b_bytes + e_bytes + l_bytes + f_bytes;
    if (m_bytes) macs_ = side;
    if (h_bytes) handshake_ = reinterpret_cast<Handshake*>(side + m_bytes);
    if (z_bytes) sizes_ = reinterpret_cast<uint32_t*>(side + m_bytes + h_bytes);

    prefault_ = cfg.prefault;
    if (!cfg.defer_init) initialize();
}

void FlowTable::initialize() noexcept {
    if (initialized_) return;
    // Touch every page now (unless TableConfig::prefault is off), so no page fault waits for a
    // packet; the thread that does this decides the NUMA node the memory lands on (first touch).
    // The mapping is zero already: entries are handed out in index order the first time, so an
    // entry past fresh_ is never read.
    if (prefault_) std::memset(mem_, 0, bytes_);
    for (uint32_t s = 0; s < kSlots; ++s) links_[capacity_ + s] = Link{capacity_ + s, capacity_ + s};
    free_top_ = 0;
    fresh_ = 0;
    initialized_ = true;
}

FlowTable::~FlowTable() {
    if (mem_) munmap(mem_, bytes_);
}

}  // namespace weir::flow

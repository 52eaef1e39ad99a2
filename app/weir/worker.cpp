#include "worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace weir {

Worker::Worker(const WorkerConfig& cfg, std::vector<RxQueueRef> queues, int ts_offset, uint64_t ts_flag,
               uint64_t tsc_hz, uint64_t wall_ns0, uint64_t tsc0)
    : cfg_(cfg),
      queues_(std::move(queues)),
      qstats_(new QueueStats[queues_.size()]),
      table_(std::make_unique<flow::FlowTable>(cfg.table)),
      ts_offset_(ts_offset),
      ts_flag_(ts_flag),
      tsc_hz_(tsc_hz),
      wall_ns0_(wall_ns0),
      tsc0_(tsc0) {
    uint32_t ring_size = 1;
    while (ring_size < cfg.buffers + 1) ring_size <<= 1;
    const std::string base = "weir_w" + std::to_string(cfg.index);
    full_ = rte_ring_create((base + "_full").c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    free_ = rte_ring_create((base + "_free").c_str(), ring_size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!full_ || !free_) throw std::runtime_error("worker " + std::to_string(cfg.index) + ": cannot create rings");
    top_heap_.reserve(kTopMax);
    top_result_.reserve(kTopMax);
    pool_records_.reset(new flow::FlowRecord[static_cast<size_t>(cfg.buffers) * cfg.batch_records]);
    pool_.resize(cfg.buffers);
    for (uint32_t i = 0; i < cfg.buffers; ++i) {
        pool_[i] = RecordBatch{0, cfg.domain, 0, pool_records_.get() + static_cast<size_t>(i) * cfg.batch_records};
        RecordBatch* p = &pool_[i];
        rte_ring_sp_enqueue(free_, p);
    }
}

Worker::~Worker() {
    rte_ring_free(full_);
    rte_ring_free(free_);
}

int Worker::lcore_main(void* self) noexcept {
    static_cast<Worker*>(self)->run();
    return 0;
}

uint64_t Worker::tsc_to_ns(uint64_t tsc) const noexcept {
    const unsigned __int128 d = static_cast<unsigned __int128>(tsc - tsc0_) * 1'000'000'000u;
    return wall_ns0_ + static_cast<uint64_t>(d / tsc_hz_);
}

bool Worker::acquire_buffer() noexcept {
    void* p = nullptr;
    while (rte_ring_sc_dequeue(free_, &p) != 0) {
        // Live traffic never waits for the exporters: the records are counted as dropped.
        // A replay or the final flush waits, since nothing more arrives to be lost meanwhile.
        if (!cfg_.replay && !final_flush_) return false;
        rte_pause();
    }
    current_ = static_cast<RecordBatch*>(p);
    current_->count = 0;
    current_->packets = 0;
    return true;
}

void Worker::hand_off() noexcept {
    RecordBatch* b = current_;
    current_ = nullptr;
    while (rte_ring_sp_enqueue(full_, b) != 0) {
        if (!cfg_.replay && !final_flush_) {
            stats_.dropped_records.add(b->count);
            stats_.dropped_packets.add(b->packets);
            current_ = b;  // reuse the batch
            b->count = 0;
            b->packets = 0;
            return;
        }
        rte_pause();
    }
    stats_.messages.add();
}

void Worker::on_expired(const flow::FlowEntry& e, flow::EndReason why) noexcept {
    if (!current_ && !acquire_buffer()) {
        stats_.dropped_records.add();
        stats_.dropped_packets.add(e.dir[0].packets + e.dir[1].packets);
        return;
    }
    RecordBatch& b = *current_;
    if (b.count == 0) current_since_ = rte_rdtsc();
    flow::make_record(e, why, b.records[b.count]);
    b.packets += e.dir[0].packets + e.dir[1].packets;
    stats_.records.add();
    if (++b.count == cfg_.batch_records) hand_off();
}

void Worker::process_burst(const RxQueueRef& q, QueueStats& qs, rte_mbuf** pkts, uint16_t n, uint64_t now_ns) noexcept {
    packet::PacketInfo info[64];
    flow::FlowTable::Prepared prep[64];
    uint64_t ts[64];
    bool ok[64];
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        bytes += m->pkt_len;
        const packet::Drop d = packet::decode(rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, q.linktype, info[i]);
        ok[i] = d == packet::Drop::kNone;
        if (!ok[i]) {
            stats_.drops[static_cast<size_t>(d)].add();
            continue;
        }
        if (info[i].l4_truncated) stats_.l4_truncated.add();
        uint64_t t = now_ns;
        if (q.ts_ns_per_unit && (m->ol_flags & ts_flag_))
            t = *RTE_MBUF_DYNFIELD(m, ts_offset_, uint64_t*) * q.ts_ns_per_unit;
        ts[i] = t;
        if (t > clock_ns_) clock_ns_ = t;
        table_->prepare(info[i], prep[i]);
    }
    for (uint16_t i = 0; i < n; ++i)
        if (ok[i]) table_->locate(prep[i]);
    for (uint16_t i = 0; i < n; ++i)
        if (ok[i]) table_->update(prep[i], info[i], ts[i], q.port, *this);
    qs.packets.add(n);
    qs.bytes.add(bytes);
    stats_.rx_packets.add(n);
    stats_.rx_bytes.add(bytes);
}

void Worker::run() noexcept {
    table_->initialize();  // first touch on this lcore: the table lives on this worker's node
    ready_.store(true, std::memory_order_release);
    rte_mbuf* pkts[64];
    const uint16_t burst = static_cast<uint16_t>(cfg_.burst > 64 ? 64 : cfg_.burst);
    while (!stop_.load(std::memory_order_acquire)) {
        const uint64_t t0 = rte_rdtsc();
        const uint64_t now_ns = tsc_to_ns(t0);
        bool any = false;
        for (size_t i = 0; i < queues_.size(); ++i) {
            const RxQueueRef& q = queues_[i];
            const uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, burst);
            if (n == 0) continue;
            any = true;
            process_burst(q, qstats_[i], pkts, n, now_ns);
            rte_pktmbuf_free_bulk(pkts, n);
        }
        housekeeping(now_ns, t0);
        const uint64_t t1 = rte_rdtsc();
        stats_.total_cycles.add(t1 - t0);
        if (any) stats_.busy_cycles.add(t1 - t0);
    }
    finish();
    done_.store(true, std::memory_order_release);
}

uint32_t Worker::request_top(bool by_packets, uint32_t n) noexcept {
    top_by_packets_ = by_packets;
    top_n_ = n < 1 ? 1 : n > kTopMax ? kTopMax : n;
    return top_req_.fetch_add(1, std::memory_order_acq_rel) + 1;
}

void Worker::set_timeouts(uint64_t idle_ns, uint64_t active_ns, uint64_t tcp_end_ns) noexcept {
    new_idle_ns_.store(idle_ns, std::memory_order_relaxed);
    new_active_ns_.store(active_ns, std::memory_order_relaxed);
    new_tcp_end_ns_.store(tcp_end_ns, std::memory_order_relaxed);
    timeouts_gen_.fetch_add(1, std::memory_order_release);
}

uint32_t Worker::ring_occupancy() const noexcept { return rte_ring_count(full_); }

// One slice of a top-flows walk: 4096 entries per loop iteration, a min-heap of size n
// (no allocation: both vectors were reserved at start).
void Worker::top_step() noexcept {
    if (top_scanning_ == 0) {
        const uint32_t req = top_req_.load(std::memory_order_acquire);
        if (req == top_done_.load(std::memory_order_relaxed)) return;
        top_scanning_ = req;
        top_pos_ = 0;
        top_heap_.clear();
    }
    const bool by_packets = top_by_packets_;
    auto weight = [by_packets](const TopFlow& f) { return by_packets ? f.packets : f.octets; };
    auto lighter = [&](const TopFlow& a, const TopFlow& b) { return weight(a) > weight(b); };
    top_pos_ = table_->scan(top_pos_, 4096, [&](const flow::FlowEntry& e) {
        for (int d = 0; d < 2; ++d) {
            if (!e.dir[d].packets) continue;
            const TopFlow f{e.tuple(d), e.dir[d].packets, e.dir[d].octets, e.dir[d].first_ns, e.dir[d].last_ns};
            if (top_heap_.size() < top_n_) {
                top_heap_.push_back(f);
                std::push_heap(top_heap_.begin(), top_heap_.end(), lighter);
            } else if (weight(f) > weight(top_heap_.front())) {
                std::pop_heap(top_heap_.begin(), top_heap_.end(), lighter);
                top_heap_.back() = f;
                std::push_heap(top_heap_.begin(), top_heap_.end(), lighter);
            }
        }
    });
    if (top_pos_ >= table_->capacity()) {
        top_result_.assign(top_heap_.begin(), top_heap_.end());
        top_done_.store(top_scanning_, std::memory_order_release);
        top_scanning_ = 0;
    }
}

void Worker::housekeeping(uint64_t now_ns, uint64_t now_tsc) noexcept {
    if (timeouts_gen_.load(std::memory_order_acquire) != timeouts_applied_) [[unlikely]] {
        timeouts_applied_ = timeouts_gen_.load(std::memory_order_acquire);
        table_->set_timeouts(new_idle_ns_.load(std::memory_order_relaxed), new_active_ns_.load(std::memory_order_relaxed),
                             new_tcp_end_ns_.load(std::memory_order_relaxed));
    }
    if (top_scanning_ || top_req_.load(std::memory_order_relaxed) != top_done_.load(std::memory_order_relaxed))
        [[unlikely]] top_step();
    // Live ports: time moves on without packets too, so idle flows expire.
    if (!cfg_.replay && now_ns > clock_ns_) clock_ns_ = now_ns;
    table_->expire(clock_ns_, 256, *this);
    if (current_ && current_->count && now_tsc - current_since_ > cfg_.max_delay_cycles) hand_off();
}

void Worker::finish() noexcept {
    final_flush_ = true;
    table_->flush(*this);
    if (current_ && current_->count) hand_off();
}

}  // namespace weir
